"""Store writing: round trips bit for bit, atomic replacement, and builds killed midway."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nasbench import _cli
from nasbench.errors import StoreError
from nasbench.store.reader import Store
from nasbench_builder import source, synthetic, verify, writer


def _assert_same(store: Store, data) -> None:
    np.testing.assert_array_equal(store.hashes, data.hashes)
    np.testing.assert_array_equal(store.keys, data.keys)
    np.testing.assert_array_equal(store.representatives, data.representatives)
    np.testing.assert_array_equal(store.parameters, data.parameters)
    assert store.metrics.tobytes() == np.ascontiguousarray(data.metrics).tobytes()  # bit for bit
    assert store.epochs == data.epochs


def test_synth_build_read_back_is_bit_identical(small_store: Path, small_synthetic) -> None:
    """synth -> TFRecord -> build -> store equals what synth generated, row order included."""
    store = Store.open(small_store, verify=True)
    try:
        _assert_same(store, small_synthetic.dataset)
        assert store.manifest["source"]["records"] == small_synthetic.dataset.cells * 4 * 3
    finally:
        store.close()


def test_parallel_build_equals_single_worker(tiny_tfrecord: Path, tiny_synthetic) -> None:
    """Two workers over many small pieces give exactly the dataset one worker gives."""
    one = source.read_dataset(tiny_tfrecord, workers=1)
    many = source.read_dataset(tiny_tfrecord, workers=2, piece_size=8 << 10)
    for name in ("hashes", "keys", "representatives", "parameters", "metrics"):
        np.testing.assert_array_equal(getattr(one, name), getattr(many, name))
        np.testing.assert_array_equal(getattr(one, name), getattr(tiny_synthetic.dataset, name))
    assert one.source == many.source


def test_lookups(small_store: Path, small_synthetic) -> None:
    data = small_synthetic.dataset
    store = Store.open(small_store)
    try:
        rows = np.arange(data.cells)
        np.testing.assert_array_equal(store.rows_of_keys(data.keys), rows)
        assert all(store.row_of_key(int(k)) == r for r, k in enumerate(data.keys[:300].tolist()))
        assert all(store.row_of_hash(data.hashes[r].tobytes()) == r for r in range(0, data.cells, 7))
        assert store.row_of_hash(b"\x00" * 16) == -1 and store.row_of_hash(b"short") == -1
        assert store.row_of_key(0) == -1 and store.row_of_key(2**63) == -1
        assert store.rows_of_keys(np.array([0, data.keys[5]], dtype=np.uint64)).tolist() == [-1, 5]
    finally:
        store.close()


def test_existing_store_is_never_overwritten_without_force(tiny_synthetic, tmp_path: Path) -> None:
    path = tmp_path / "s.lmdb"
    writer.write_store(tiny_synthetic.dataset, path)
    before = path.read_bytes()
    with pytest.raises(StoreError, match="already exists"):
        writer.write_store(tiny_synthetic.dataset, path)
    assert path.read_bytes() == before
    writer.write_store(tiny_synthetic.dataset, path, overwrite=True)
    verify.verify_store(path)


def test_build_cli_force_and_refusal(tiny_tfrecord: Path, tmp_path: Path, capsys) -> None:
    store = tmp_path / "s.lmdb"
    assert _cli.main(["build", str(tiny_tfrecord), str(store)]) == 0
    assert _cli.main(["build", str(tiny_tfrecord), str(store)]) == 2
    assert "already exists; pass --force" in capsys.readouterr().err
    assert _cli.main(["build", str(tiny_tfrecord), str(store), "--force"]) == 0
    assert _cli.main(["verify", str(store)]) == 0
    out = capsys.readouterr().out
    assert "OK (schema 1" in out and "cells: 91" in out


def test_killed_build_leaves_no_store_and_no_blocking_debris(tmp_path: Path) -> None:
    """Kill a build (SIGKILL) while it writes the store: no store appears; the next build succeeds and removes
    the dead build's temporary file."""
    data = synthetic.synthesize(epochs=(108,), max_vertices=6, seed=1)
    record_file = tmp_path / "medium.tfrecord"
    synthetic.write_tfrecord(data, record_file)
    store = tmp_path / "medium.lmdb"
    process = subprocess.Popen(
        [sys.executable, "-m", "nasbench._cli", "build", str(record_file), str(store), "--workers", "1"],
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".medium.lmdb.building-*")) and process.poll() is None:
        assert time.monotonic() < deadline, "the build never started writing"
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.wait()
    if store.exists():  # the kill came after the rename: then the store must be whole
        verify.verify_store(store)
        store.unlink()
    else:
        assert list(tmp_path.glob(".medium.lmdb.building-*")), "the killed build left its temporary file"
    assert _cli.main(["build", str(record_file), str(store), "--workers", "1"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["medium.lmdb", "medium.tfrecord"]
    verify.verify_store(store)


def test_interrupted_build_cleans_up(tiny_synthetic, tmp_path: Path, monkeypatch) -> None:
    """An exception while writing (Ctrl-C, disk full) removes the temporary file and leaves no store."""

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(KeyboardInterrupt):
        writer.write_store(tiny_synthetic.dataset, tmp_path / "s.lmdb")
    assert list(tmp_path.iterdir()) == []
