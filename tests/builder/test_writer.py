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
from nasbench._store.reader import Store
from nasbench.errors import StoreError
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


# --- what the writer writes, checked on stores written here (the session's stores may come from a cache) -----


def test_manifest_fields(tiny_synthetic, tmp_path: Path) -> None:
    import datetime

    import xxhash

    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    manifest = writer.write_store(tiny_synthetic.dataset, tmp_path / "s.lmdb")
    created = datetime.datetime.fromisoformat(manifest["created"])
    assert manifest["created"].endswith("+00:00") and before <= created <= datetime.datetime.now(datetime.timezone.utc)
    assert manifest["cells_per_vertices"] == {"2": 1, "3": 6, "4": 84}
    structures = len({key >> 10 for key in tiny_synthetic.dataset.keys.tolist()})  # distinct (vertices, edge set)
    assert (manifest["cells"], manifest["structures"], manifest["epochs"], manifest["repeats"]) == (
        91,
        structures,
        [4, 12, 36, 108],
        3,
    )
    assert manifest["metric_fields"] == [
        "halfway_training_time",
        "halfway_train_accuracy",
        "halfway_validation_accuracy",
        "halfway_test_accuracy",
        "final_training_time",
        "final_train_accuracy",
        "final_validation_accuracy",
        "final_test_accuracy",
    ]
    arrays = manifest["arrays"]
    # the overall checksum: xxh3-128 of "name:checksum;" for every array, by name
    joined = "".join(f"{name}:{arrays[name]['xxh3_128']};" for name in sorted(arrays))
    assert manifest["checksum"] == xxhash.xxh3_128_hexdigest(joined.encode())
    store = Store.open(tmp_path / "s.lmdb")
    for name, spec in arrays.items():
        column = getattr(store, name)
        assert spec["xxh3_128"] == xxhash.xxh3_128_hexdigest(column.tobytes()), name
    assert store.manifest == manifest
    store.close()


def test_the_same_data_gives_the_same_checksums(tiny_synthetic, tmp_path: Path) -> None:
    first = writer.write_store(tiny_synthetic.dataset, tmp_path / "a.lmdb")
    second = writer.write_store(tiny_synthetic.dataset, tmp_path / "b.lmdb")
    assert first["checksum"] == second["checksum"]
    metrics = tiny_synthetic.dataset.metrics.copy()
    metrics[90, 3, 2, 7] += 2**-20
    import dataclasses

    third = writer.write_store(dataclasses.replace(tiny_synthetic.dataset, metrics=metrics), tmp_path / "c.lmdb")
    assert third["checksum"] != first["checksum"]
    assert {name for name in first["arrays"] if first["arrays"][name] != third["arrays"][name]} == {"metrics"}


def test_inputs_of_any_integer_and_float_types_are_stored_in_the_layouts_types(tiny_synthetic, tmp_path: Path) -> None:
    """The writer converts: int64 keys and parameters, int32 hashes, float32 metrics in, the layout's dtypes out."""
    import dataclasses

    data = tiny_synthetic.dataset
    loose = dataclasses.replace(
        data,
        hashes=data.hashes.astype(np.int32),
        keys=data.keys.astype(np.int64),
        representatives=data.representatives.astype(np.int64),
        parameters=data.parameters.astype(np.int64),
        metrics=data.metrics.astype(np.float32),
    )
    writer.write_store(loose, tmp_path / "loose.lmdb")
    store = Store.open(tmp_path / "loose.lmdb", verify=True)
    try:
        assert (store.hashes.dtype, store.keys.dtype, store.parameters.dtype, store.metrics.dtype) == (
            np.uint8,
            np.dtype("<u8"),
            np.dtype("<i4"),
            np.dtype("<f8"),
        )
        assert store.representatives.dtype == np.dtype("<u8")
        np.testing.assert_array_equal(store.hashes, data.hashes)
        np.testing.assert_array_equal(store.keys, data.keys)
        np.testing.assert_array_equal(store.metrics, data.metrics.astype(np.float32).astype(np.float64))
        assert store.row_of_hash(data.hashes[7].tobytes()) == 7 and store.row_of_key(int(data.keys[8])) == 8
    finally:
        store.close()


def test_the_lmdb_databases_hold_the_arrays_and_the_manifest(tiny_synthetic, tmp_path: Path) -> None:
    """The layout's two named databases (store/layout.py): ``arrays`` holds each array's bytes (small ones padded
    to a page), ``meta`` the manifest; nothing else is in the file."""
    import json

    import lmdb

    from nasbench._store import layout

    path = tmp_path / "s.lmdb"
    manifest = writer.write_store(tiny_synthetic.dataset, path)
    env = lmdb.open(str(path), subdir=False, readonly=True, lock=False, max_dbs=2)
    try:
        arrays_db, meta_db = env.open_db(b"arrays", create=False), env.open_db(b"meta", create=False)
        with env.begin() as txn:
            assert sorted(key for key, _ in txn.cursor()) == [b"arrays", b"meta"]
            arrays = {key.decode(): bytes(value) for key, value in txn.cursor(db=arrays_db)}
            meta = {key: bytes(value) for key, value in txn.cursor(db=meta_db)}
    finally:
        env.close()
    assert list(meta) == [b"manifest"] and json.loads(meta[b"manifest"]) == manifest
    assert sorted(arrays) == sorted(layout.COLUMNS)
    store = Store.open(path)
    for name, value in arrays.items():
        column = getattr(store, name).tobytes()
        assert len(value) == max(len(column), layout.MIN_VALUE_SIZE), name
        assert value[: len(column)] == column and not value[len(column) :].strip(b"\x00"), name
    store.close()


def test_a_mid_size_store(tmp_path: Path, space_table) -> None:
    """Arrays beyond LMDB's default 10 MB map (48 MB of metrics): the map is sized from the data."""
    data = synthetic.synthesize(epochs=(4, 12, 36, 108), max_vertices=6, seed=2, table=space_table).dataset
    writer.write_store(data, tmp_path / "mid.lmdb")
    store = Store.open(tmp_path / "mid.lmdb", verify=True)
    try:
        assert store.cells == 64_542 and store.metrics.nbytes > 40 << 20
        np.testing.assert_array_equal(store.metrics[-1], data.metrics[-1])
    finally:
        store.close()


def test_errors_before_the_temporary_file_exists_propagate(tiny_synthetic, tmp_path: Path, monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(writer, "_environment", refuse)
    with pytest.raises(KeyboardInterrupt):
        writer.write_store(tiny_synthetic.dataset, tmp_path / "s.lmdb")
    assert list(tmp_path.iterdir()) == []


def test_a_missing_folder_is_named(tiny_synthetic, tmp_path: Path) -> None:
    target = tmp_path / "absent" / "s.lmdb"
    with pytest.raises(StoreError) as info:
        writer.write_store(tiny_synthetic.dataset, target)
    assert str(info.value) == f"cannot write {target}: folder {target.parent} does not exist"


def test_a_dataset_without_cells_is_refused_by_name(tiny_synthetic, tmp_path: Path) -> None:
    data = tiny_synthetic.dataset
    empty = type(data)(
        data.hashes[:0], data.keys[:0], data.representatives[:0], data.parameters[:0], data.metrics[:0], data.epochs
    )
    target = tmp_path / "s.lmdb"
    with pytest.raises(StoreError) as info:
        writer.write_store(empty, target)
    assert str(info.value) == f"cannot write {target}: the dataset has no cell"
    assert list(tmp_path.iterdir()) == []


def test_stale_temporaries_of_dead_builds_are_removed(tmp_path: Path) -> None:
    """Temporary files of builds whose process is gone (or of this very process) go; those of live processes,
    of other targets, and without a process id stay."""
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])  # a build still at work
    target = tmp_path / "s.lmdb"
    names = {
        "dead": f".s.lmdb.building-{finished.pid}",
        "this-process": f".s.lmdb.building-{os.getpid()}",
        "alive": f".s.lmdb.building-{running.pid}",
        "no-pid": ".s.lmdb.building-x12",
        "other-target": f".t.lmdb.building-{finished.pid}",
        "nested-mark": f".s.lmdb.building-{running.pid}.building-{finished.pid}",
    }
    for name in names.values():
        (tmp_path / name).write_bytes(b"debris")
    try:
        removed = writer.remove_stale_temporaries(target)
        assert running.poll() is None, "asking whether a process lives must not signal it"
    finally:
        running.kill()
        running.wait()
    expected = [tmp_path / names[key] for key in ("dead", "this-process", "nested-mark")]
    assert sorted(removed) == sorted(expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        names[key] for key in ("alive", "no-pid", "other-target")
    )
