"""The store reader's lookups and the layout's helpers, against values computed here: keys beyond every stored
key, hashes sharing their first 8 bytes, the base-3 slot of every label code, the epochs axis."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np
import pytest

from nasbench.store import layout
from nasbench.store.reader import Store
from nasbench_builder import writer


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory: pytest.TempPathFactory, tiny_synthetic) -> Path:
    path = tmp_path_factory.mktemp("tiny-store") / "tiny.lmdb"
    writer.write_store(tiny_synthetic.dataset, path)
    return path


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
    assert table[0b11] == 3 and table[0b11 << 8] == 3 * 81  # a digit 3 (never in a key) is read like the others
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
