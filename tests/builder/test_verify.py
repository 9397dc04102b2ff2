"""verify: checksums, invariants, schema versions, and files that are not stores."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import lmdb
import numpy as np
import pytest

from nasbench import _cli
from nasbench._store import layout
from nasbench._store.reader import Store
from nasbench.errors import StoreCorruptError, StoreNotFoundError, StoreSchemaError
from nasbench_builder import verify, writer


def _copy(small_store: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy.lmdb"
    shutil.copyfile(small_store, copy)
    return copy


def _rewrite(path: Path, db: bytes, key: bytes, change) -> None:
    env = lmdb.open(str(path), subdir=False, max_dbs=2, lock=False)
    try:
        handle = env.open_db(db)
        with env.begin(write=True) as txn:
            txn.put(key, change(bytes(txn.get(key, db=handle))), db=handle)
    finally:
        env.close()


def test_verify_passes_and_prints_manifest(small_store: Path, capsys) -> None:
    manifest = verify.verify_store(small_store)
    assert manifest["cells"] == 2532 and manifest["epochs"] == [4, 12, 36, 108]
    assert manifest["cells_per_vertices"] == {"2": 1, "3": 6, "4": 84, "5": 2441}
    assert _cli.main(["verify", str(small_store), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["checksum"] == manifest["checksum"]


def _flip_byte(path: Path, position: int) -> None:
    data = bytearray(path.read_bytes())
    data[position] ^= 0x01
    path.write_bytes(bytes(data))


def test_every_array_has_a_checksum_and_its_own_bytes(small_store: Path) -> None:
    """Each array lives in its own byte range, even where two arrays are equal (keys and representatives)."""
    store = Store.open(small_store)
    arrays = store.manifest["arrays"]
    store.close()
    assert sorted(arrays) == sorted(ARRAYS)
    spans = sorted(
        (spec["offset"], spec["offset"] + int(np.prod(spec["shape"])) * np.dtype(spec["dtype"]).itemsize)
        for spec in arrays.values()
    )
    assert all(end <= start for (_, end), (start, _) in itertools.pairwise(spans)), spans


ARRAYS = [
    "hashes",
    "keys",
    "representatives",
    "parameters",
    "num_vertices",
    "num_edges",
    "metrics",
    "key_order",
    "hash_order",
    "sorted_hash_prefix",
    "structure_codes",
    "structure_rows",
]


@pytest.mark.parametrize("array", ARRAYS)
def test_flipped_byte_fails_the_checksum(small_store: Path, tmp_path: Path, array: str) -> None:
    """A byte flipped inside an array after the store verified once: the changed file is verified again when
    opened (never served), and verification names the array."""
    copy = _copy(small_store, tmp_path)
    store = Store.open(copy)
    spec = store.manifest["arrays"][array]
    store.close()
    _flip_byte(copy, spec["offset"] + 5)
    with pytest.raises(StoreCorruptError, match=f"checksum mismatch in array '{array}'"):
        Store.open(copy)
    with pytest.raises(StoreCorruptError, match=f"checksum mismatch in array '{array}'"):
        verify.verify_store(copy)
    with pytest.raises(StoreCorruptError, match=f"checksum mismatch in array '{array}'"):
        Store.open(copy, verify=True)


def test_unknown_schema_is_refused(small_store: Path, tmp_path: Path, capsys) -> None:
    copy = _copy(small_store, tmp_path)

    def bump(raw: bytes) -> bytes:
        manifest = json.loads(raw)
        manifest["schema_version"] = 99
        return json.dumps(manifest).encode()

    _rewrite(copy, layout.META_DB, layout.MANIFEST_KEY, bump)
    with pytest.raises(StoreSchemaError, match="schema 99"):
        Store.open(copy)
    assert _cli.main(["verify", str(copy)]) == 2
    assert "Rebuild the store" in capsys.readouterr().err


def test_truncated_file_is_detected(small_store: Path, tmp_path: Path) -> None:
    copy = _copy(small_store, tmp_path)
    last = max(spec["offset"] for spec in Store.open(copy).manifest["arrays"].values())
    with open(copy, "r+b") as handle:
        handle.truncate(last + 8)
    with pytest.raises(StoreCorruptError, match="is truncated"):
        Store.open(copy)


def test_manifest_with_a_wrong_shape_is_detected(small_store: Path, tmp_path: Path) -> None:
    copy = _copy(small_store, tmp_path)

    def shrink(raw: bytes) -> bytes:
        manifest = json.loads(raw)
        manifest["arrays"]["keys"]["shape"] = [3]
        return json.dumps(manifest).encode()

    _rewrite(copy, layout.META_DB, layout.MANIFEST_KEY, shrink)
    with pytest.raises(StoreCorruptError, match="array 'keys' is missing or does not match"):
        Store.open(copy)


def test_open_twice_and_after_close(small_store: Path, small_synthetic) -> None:
    """A process may open one store many times; views taken before close stay valid and hold the data the
    builder was given (not merely what another view of the same file says)."""
    expected = small_synthetic.dataset.metrics[3]
    first, second = Store.open(small_store), Store.open(small_store)
    view = second.metrics[3]
    second.close()
    np.testing.assert_array_equal(view, expected)
    np.testing.assert_array_equal(first.metrics[3], expected)
    first.close()


def test_two_different_stores_in_one_process(small_store: Path, tiny_synthetic, tmp_path: Path) -> None:
    """Stores of different data opened side by side answer each with its own data."""
    other = tmp_path / "tiny.lmdb"
    writer.write_store(tiny_synthetic.dataset, other)
    small, tiny = Store.open(small_store), Store.open(other)
    try:
        assert (small.cells, tiny.cells) == (2532, 91)
        key = int(tiny_synthetic.dataset.keys[40])
        row_small, row_tiny = small.row_of_key(key), tiny.row_of_key(key)
        assert row_tiny == 40 and row_small >= 0
        np.testing.assert_array_equal(tiny.metrics[row_tiny], tiny_synthetic.dataset.metrics[40])
        assert not np.array_equal(small.metrics[row_small], tiny.metrics[row_tiny])  # seeds 3 and 7 differ
    finally:
        small.close()
        tiny.close()


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        pytest.param(None, StoreNotFoundError, "no store at", id="missing"),
        pytest.param(b"hello, not lmdb" * 100, StoreCorruptError, "not an LMDB store", id="garbage"),
    ],
)
def test_not_a_store(tmp_path: Path, content: bytes | None, error: type, message: str) -> None:
    path = tmp_path / "x.lmdb"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(error, match=message):
        Store.open(path)


def test_a_folder_is_not_a_store(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="is a folder"):
        Store.open(tmp_path)


def test_verify_rereads_a_file_whose_verification_was_recorded(
    small_store: Path, tmp_path: Path, monkeypatch, space_table
) -> None:
    """Opening skips the checksums of an unchanged file verified before; ``nasbench verify`` never does."""
    from nasbench._store import integrity

    monkeypatch.setenv("NASBENCH_CACHE_DIR", str(tmp_path / "cache"))
    copy = _copy(small_store, tmp_path)
    Store.open(copy).close()  # verified and recorded
    calls = []
    real = integrity.verify_arrays
    monkeypatch.setattr(integrity, "verify_arrays", lambda *args: calls.append(args[2]) or real(*args))
    Store.open(copy).close()
    assert calls == []
    verify.verify_store(copy, table=space_table)  # the table given: the private cache folder has none
    assert calls == [copy]
