"""The store reader's lookups and the layout's helpers, against values computed here: keys beyond every stored
key, hashes sharing their first 8 bytes, the base-3 slot of every label code, the epochs axis."""

from __future__ import annotations

import dataclasses
import itertools
import os
from pathlib import Path

import numpy as np
import pytest

from nasbench._store import layout
from nasbench._store.reader import Store
from nasbench_builder import writer


def test_base3_slot_of_every_label_code() -> None:
    """A label code holds up to five interior labels in base 4 (two bits each); its slot reads the same digits
    in base 3, so the 243 labellings of 0..2 fill slots 0..242 exactly once."""
    table = layout._base3_of_label_codes()
    assert table.shape == (1024,) and table.dtype == np.int64
    slots = []
    for digits in itertools.product(range(3), repeat=5):  # digits[j] is the label in bits 2j, 2j+1
        code = sum(digit << (2 * j) for j, digit in enumerate(digits))
        slot = sum(digit * 3**j for j, digit in enumerate(digits))
        assert table[code] == slot
        slots.append(slot)
    assert sorted(slots) == list(range(243))
    assert table[0b11] == -1 and table[0b11 << 8] == -1  # a digit 3 (never in a key): no slot, not a wrong one
    np.testing.assert_array_equal(layout.BASE3_OF_LABELS, table)


def test_hash_prefix_sorts_like_the_bytes() -> None:
    digests = np.array([[0xFF] + [0] * 15, [0x01, 0x02] + [0xFF] * 14, [0] * 16], dtype=np.uint8)
    prefixes = layout.hash_prefix(digests)
    assert prefixes.dtype == np.dtype("<u8")
    assert prefixes.tolist() == [0xFF << 56, (0x01 << 56) | (0x02 << 48) | 0xFFFFFFFFFFFF, 0]


def test_column_shapes() -> None:
    assert layout.column_shape("metrics", 10, 4, 3) == (10, 4, 3, 8)
    assert layout.column_shape("structure_rows", 10, 4, 3) == (3, 243)
    assert layout.column_shape("hashes", 10, 4, 3) == (10, 16)
    assert layout.column_shape("keys", 7, 1, 1) == (7,)


def test_epochs_axis_and_repr(tiny_store: Path) -> None:
    store = Store.open(tiny_store)
    try:
        assert [store.epoch_index(epochs) for epochs in (4, 12, 36, 108, 107, 0)] == [0, 1, 2, 3, -1, -1]
        assert repr(store) == f"Store({str(tiny_store)!r}, cells=91, epochs=[4, 12, 36, 108])"
    finally:
        store.close()


def test_rows_of_keys_beyond_and_between_the_stored_keys(tiny_store: Path, tiny_synthetic) -> None:
    keys = tiny_synthetic.dataset.keys
    store = Store.open(tiny_store)
    try:
        asked = [int(keys.max()) + 1, 2**64 - 1, 0, int(keys[17]), int(keys.min()) - 1, int(keys[3])]
        rows = store.rows_of_keys(asked)
        assert rows.dtype == np.int64 and rows.tolist() == [-1, -1, -1, 17, -1, 3]
        assert store.rows_of_keys(np.array([], dtype=np.uint64)).tolist() == []
        assert [store.row_of_key(key) for key in asked] == [-1, -1, -1, 17, -1, 3]
    finally:
        store.close()


def test_hashes_sharing_their_first_eight_bytes(tiny_synthetic, tmp_path: Path) -> None:
    """The sorted-prefix index finds each of several hashes with the same first 8 bytes, and no other."""
    data = tiny_synthetic.dataset
    hashes = data.hashes.copy()
    prefix = hashes[10, :8].copy()
    for row in (20, 30, 40):
        hashes[row, :8] = prefix  # rows 10, 20, 30, 40 now share a prefix
    path = tmp_path / "prefixes.lmdb"
    writer.write_store(dataclasses.replace(data, hashes=hashes), path)
    store = Store.open(path)
    try:
        for row in (10, 20, 30, 40, 0, 90):
            assert store.row_of_hash(hashes[row].tobytes()) == row
        stranger = prefix.tobytes() + bytes(8)
        assert store.row_of_hash(stranger) == -1
        assert store.row_of_hash(b"\xff" * 16) == -1 and store.row_of_hash(b"") == -1
        assert store.hash_of_row(30) == hashes[30].tobytes().hex()
    finally:
        store.close()


def _rewrite_manifest(path: Path, change) -> None:
    import json

    import lmdb

    env = lmdb.open(str(path), subdir=False, max_dbs=2, lock=False)
    try:
        meta = env.open_db(layout.META_DB)
        with env.begin(write=True) as txn:
            raw = change(json.loads(bytes(txn.get(layout.MANIFEST_KEY, db=meta))))
            txn.put(layout.MANIFEST_KEY, raw if isinstance(raw, bytes) else json.dumps(raw).encode(), db=meta)
    finally:
        env.close()


def _copy(store: Path, tmp_path: Path) -> Path:
    import shutil

    copy = tmp_path / "copy.lmdb"
    shutil.copyfile(store, copy)
    return copy


def _without(key: str):
    def change(manifest: dict, size: int) -> dict:
        del manifest[key]
        return manifest

    return change


def _offset(name: str, value):
    """The manifest with array ``name`` at ``value`` (or ``value(file size)``)."""

    def change(manifest: dict, size: int) -> dict:
        manifest["arrays"][name]["offset"] = value(size) if callable(value) else value
        return manifest

    return change


SCHEMA = "this version of nasbench reads schema 1. Rebuild the store with `nasbench build`."
LACKS = "{path}: the manifest lacks cells, epochs, structures or arrays"
OUTSIDE = "{path}: array '{name}' lies outside the file ({size} bytes)"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(_without("structures"), LACKS, id="keys"),
        pytest.param(lambda m, size: {**m, "cells": "many"}, LACKS, id="cells"),
        pytest.param(lambda m, size: {**m, "cells": 0}, "{path}: the manifest says the store holds 0 cells", id="none"),
        pytest.param(lambda m, size: b"{not json", "{path} has an unreadable manifest", id="json"),
        pytest.param(lambda m, size: [1, 2], "{path} uses store schema None; " + SCHEMA, id="list"),
        pytest.param(lambda m, size: {**m, "schema_version": 2}, "{path} uses store schema 2; " + SCHEMA, id="schema"),
        pytest.param(_offset("keys", -8), OUTSIDE.replace("{name}", "keys"), id="negative-offset"),
        pytest.param(_offset("keys", "4096"), OUTSIDE.replace("{name}", "keys"), id="text-offset"),
        pytest.param(_offset("keys", 4096.0), OUTSIDE.replace("{name}", "keys"), id="float-offset"),
        pytest.param(_offset("metrics", lambda size: size - 100), OUTSIDE.replace("{name}", "metrics"), id="past-end"),
        # 69,888 bytes of metrics do not fit in the last 2,000 bytes (their 8,736 values would, as bytes)
        pytest.param(_offset("metrics", lambda size: size - 2000), OUTSIDE.replace("{name}", "metrics"), id="bytes"),
    ],
)
def test_damaged_manifests_are_named(tiny_store: Path, tmp_path: Path, change, message: str) -> None:
    from nasbench.errors import StoreCorruptError, StoreSchemaError

    copy = _copy(tiny_store, tmp_path)
    size = copy.stat().st_size
    _rewrite_manifest(copy, lambda manifest: change(manifest, size))
    with pytest.raises((StoreCorruptError, StoreSchemaError)) as info:
        Store.open(copy)
    assert str(info.value) == message.format(path=copy, size=size)


@pytest.mark.parametrize("where", ["start", "end"])
def test_an_array_may_lie_anywhere_inside_the_file(tiny_store: Path, tmp_path: Path, where: str) -> None:
    """The bounds check lets an array start at byte 0 or end at the file's last byte (what is there is then
    wrong, which the checksums tell when verifying; the mapping itself is legal)."""
    from nasbench.errors import StoreCorruptError

    copy = _copy(tiny_store, tmp_path)
    size = copy.stat().st_size
    nbytes = 91 * 4  # parameters: int32[91]
    _rewrite_manifest(
        copy, lambda manifest: _offset("parameters", 0 if where == "start" else size - nbytes)(manifest, size)
    )
    store = Store.open(copy, verify=False)
    assert store.parameters.shape == (91,)
    store.close()
    with pytest.raises(StoreCorruptError, match="checksum mismatch in array 'parameters'"):
        Store.open(copy, verify=True)


def test_paths_that_cannot_be_a_store_are_named(tmp_path: Path) -> None:
    from nasbench.errors import StoreError, StoreNotFoundError

    with pytest.raises(StoreError) as info:
        Store.open(tmp_path)
    assert str(info.value) == f"{tmp_path} is a folder; a store is a single LMDB file"
    fifo = tmp_path / "fifo.lmdb"
    os.mkfifo(fifo)
    with pytest.raises(StoreError) as info:
        Store.open(fifo)
    assert str(info.value) == f"{fifo} is not a regular file; a store is a single LMDB file"
    too_long = tmp_path / ("x" * 300)
    with pytest.raises(StoreError) as info:
        Store.open(too_long)
    assert str(info.value) == f"cannot open the store {too_long}: File name too long"
    with pytest.raises(StoreNotFoundError) as info:
        Store.open(tmp_path / "absent.lmdb")
    assert str(info.value) == f"no store at {tmp_path / 'absent.lmdb'}"


def test_the_store_file_is_not_inherited_by_child_processes(tiny_store: Path) -> None:
    store = Store.open(tiny_store)
    try:
        assert not os.get_inheritable(store._fd)
    finally:
        store.close()


def test_lmdb_files_that_are_no_store(tmp_path: Path) -> None:
    import lmdb

    from nasbench.errors import StoreCorruptError

    bare = tmp_path / "bare.lmdb"
    lmdb.open(str(bare), subdir=False, max_dbs=2, lock=False).close()
    with pytest.raises(StoreCorruptError) as info:
        Store.open(bare)
    assert str(info.value) == f"{bare} is not a nasbench store (its databases are missing)"
    unfinished = tmp_path / "unfinished.lmdb"
    env = lmdb.open(str(unfinished), subdir=False, max_dbs=2, lock=False)
    env.open_db(layout.META_DB)
    env.close()
    with pytest.raises(StoreCorruptError) as info:
        Store.open(unfinished)
    assert str(info.value) == f"{unfinished} has no manifest: the build did not finish"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bare.lmdb", "unfinished.lmdb"]


def test_opening_reads_without_locking_or_writing(tiny_store: Path, tmp_path: Path, monkeypatch) -> None:
    """Read-only, no lock file, no readahead (docs/architecture.md): the store is never written and leaves nothing
    beside it; the manifest is read through LMDB with exactly these settings."""
    import lmdb

    copy = _copy(tiny_store, tmp_path)
    before = copy.read_bytes()
    opened = []
    real_open = lmdb.open
    monkeypatch.setattr(lmdb, "open", lambda *args, **kwargs: opened.append(kwargs) or real_open(*args, **kwargs))
    Store.open(copy, verify=True).close()
    assert opened == [dict(subdir=False, readonly=True, lock=False, readahead=False, max_dbs=2)]
    assert [p.name for p in tmp_path.iterdir()] == ["copy.lmdb"] and copy.read_bytes() == before


def test_an_absent_labelling_of_a_stored_structure_is_minus_one(tiny_store: Path) -> None:
    """The diamond with its two interior ops swapped is a code of a stored structure but not a key (its
    canonical key has the ops the other way round): the structure index answers exactly -1 for it."""
    from nasbench import canonical

    bits = sum(1 << canonical.edge_bit(src, dst) for src, dst in [(0, 1), (0, 2), (1, 3), (2, 3)])
    key = canonical.pack(4, bits, (0, 1))
    swapped = canonical.pack(4, bits, (1, 0))
    assert canonical.canonicalize(swapped) == key != swapped
    store = Store.open(tiny_store)
    try:
        assert store.row_of_key(key) >= 0
        assert store.row_of_key(swapped) == -1 and store.rows_of_keys([swapped]).tolist() == [-1]
    finally:
        store.close()
