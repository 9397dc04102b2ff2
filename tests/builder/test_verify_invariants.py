"""``nasbench verify`` checks more than checksums: every invariant tying the columns together, each broken once
in a store whose checksums are all valid (the columns are damaged before the writer checksums them, as a
builder bug would), each named by its own message, through the command line too."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from nasbench import _cli, canonical
from nasbench._store.reader import Store
from nasbench.errors import StoreCorruptError
from nasbench_builder import verify, writer

Columns = dict[str, np.ndarray]


def _swap(name: str, a: int = 3, b: int = 40) -> Callable[[Columns], None]:
    def damage(columns: Columns) -> None:
        columns[name][[a, b]] = columns[name][[b, a]]

    return damage


def _set(name: str, index: tuple | int, value: object) -> Callable[[Columns], None]:
    def damage(columns: Columns) -> None:
        columns[name][index] = value

    return damage


def _same_row_twice(columns: Columns) -> None:
    columns["key_order"][5] = columns["key_order"][6]


def _second_structure_entry(columns: Columns) -> None:
    """A slot of the structure index that names a row although no key has those labels."""
    rows = columns["structure_rows"]
    empty = np.argwhere(rows < 0)[0]
    rows[tuple(empty)] = 0


def _other_representative(columns: Columns) -> None:
    """Row 50 stores row 51's representative (the same number of vertices, another cell)."""
    vertices = columns["num_vertices"]
    other = next(row for row in range(51, len(vertices)) if vertices[row] == vertices[50])
    columns["representatives"][50] = columns["representatives"][other]


COLUMN_DAMAGE = [
    pytest.param(_set("key_order", 5, 10**6), "the key index is not a permutation of the rows", id="key-order-range"),
    pytest.param(_same_row_twice, "the key index is not a permutation of the rows", id="key-order-twice"),
    pytest.param(_swap("key_order"), "canonical keys are not unique, or the key index is not sorted", id="key-order"),
    pytest.param(_set("hash_order", 0, 10**6), "the hash index is not a permutation of the rows", id="hash-range"),
    pytest.param(_swap("hash_order"), "the hash index is not sorted by hash", id="hash-order"),
    pytest.param(_set("sorted_hash_prefix", 7, 0), "the hash index is not sorted by hash", id="hash-prefix"),
    pytest.param(
        _swap("structure_rows", 0, 1), "the structure index does not map every key to its row", id="structure-swap"
    ),
    pytest.param(
        _second_structure_entry, "the structure index does not map every key to its row", id="structure-extra"
    ),
    pytest.param(
        _set("structure_codes", 0, 1), "the structure index does not map every key to its row", id="structure-code"
    ),
    pytest.param(_set("num_vertices", 9, 7), "vertex or edge counts do not match the keys", id="vertices"),
    pytest.param(_set("num_edges", 9, 9), "vertex or edge counts do not match the keys", id="edges"),
    pytest.param(
        _other_representative,
        "row 50: the stored representative is not an isomorph of the row's cell",
        id="representative",
    ),
    pytest.param(
        _set("representatives", 60, 0),
        "row 60: the stored representative is not an isomorph of the row's cell",
        id="rep-size",
    ),
    pytest.param(_set("metrics", (4, 0, 1, 6), np.nan), "some metrics are not finite", id="nan"),
    pytest.param(_set("metrics", (4, 0, 1, 2), np.inf), "some metrics are not finite", id="infinity"),
    pytest.param(_set("metrics", (4, 1, 2, 7), 1.0625), "some accuracies are outside [0, 1]", id="above-1"),
    pytest.param(_set("metrics", (4, 1, 2, 1), -0.5), "some accuracies are outside [0, 1]", id="below-0"),
    pytest.param(_set("metrics", (4, 2, 0, 0), -1.0), "some training times are negative", id="halfway-time"),
    pytest.param(_set("metrics", (4, 3, 0, 4), -1.0), "some training times are negative", id="final-time"),
]


def _write(path: Path, dataset, damage: Callable[[Columns], None] | None, monkeypatch) -> Path:
    if damage is not None:
        derive = writer.derived_columns

        def damaged(data) -> Columns:
            columns = {name: np.array(array) for name, array in derive(data).items()}
            damage(columns)
            return columns

        monkeypatch.setattr(writer, "derived_columns", damaged)
    writer.write_store(dataset, path)
    monkeypatch.undo()
    return path


def test_the_undamaged_store_passes(tiny_synthetic, space_table, tmp_path: Path, monkeypatch) -> None:
    path = _write(tmp_path / "intact.lmdb", tiny_synthetic.dataset, None, monkeypatch)
    assert verify.verify_store(path, space_table)["cells"] == 91


@pytest.mark.parametrize(("damage", "message"), COLUMN_DAMAGE)
def test_each_broken_column_invariant_is_named(
    tiny_synthetic, space_table, tmp_path: Path, monkeypatch, capsys, damage, message: str
) -> None:
    path = _write(tmp_path / "damaged.lmdb", tiny_synthetic.dataset, damage, monkeypatch)
    Store.open(path, verify=True).close()  # every checksum holds: only the invariant is broken
    with pytest.raises(StoreCorruptError, match=re.escape(message)):
        verify.verify_store(path, space_table)
    assert _cli.main(["verify", str(path)]) == 2
    assert capsys.readouterr().err == f"nasbench verify: error: {path}: {message}\n"


def _replace(dataset, **changes):
    return dataclasses.replace(dataset, **changes)


def _unsorted_epochs(data):
    return _replace(data, epochs=(108, 4), metrics=np.ascontiguousarray(data.metrics[:, [3, 0]]))


def _repeated_epochs(data):
    return _replace(data, epochs=(108, 108), metrics=np.ascontiguousarray(data.metrics[:, [3, 3]]))


def _duplicate_key(data):
    keys = data.keys.copy()
    keys[10] = keys[11]
    return _replace(data, keys=keys)


def _key_outside_the_space(data):
    """Row 0 becomes input→output plus a vertex 1 on no path (a canonical code, but no cell of the space)."""
    code = canonical.pack(3, 1 << canonical.edge_bit(0, 2), (0,))
    assert canonical.canonicalize(code) == code
    keys, representatives = data.keys.copy(), data.representatives.copy()
    keys[0] = representatives[0] = code
    return _replace(data, keys=keys, representatives=representatives)


def _key_of_eight_vertices(data):
    keys, representatives = data.keys.copy(), data.representatives.copy()
    keys[1] = representatives[1] = canonical.pack(8, 1, (0,) * 6)
    return _replace(data, keys=keys, representatives=representatives)


def _hashes_swapped(data):
    hashes = data.hashes.copy()
    hashes[[20, 30]] = hashes[[30, 20]]
    return _replace(data, hashes=hashes)


DATASET_DAMAGE = [
    pytest.param(_unsorted_epochs, "the epochs [108, 4] are not ascending and distinct", id="epochs-order"),
    pytest.param(_repeated_epochs, "the epochs [108, 108] are not ascending and distinct", id="epochs-twice"),
    pytest.param(_duplicate_key, "canonical keys are not unique", id="duplicate-key"),
    pytest.param(_key_outside_the_space, "row 0: the cell is not in the search space", id="outside-space"),
    pytest.param(_key_of_eight_vertices, "row 1: key 17179870208 is not the code of a cell of 2 to 7", id="8-vertices"),
    pytest.param(_hashes_swapped, "row 20: hash", id="hash-of-another-cell"),
]


@pytest.mark.parametrize(("damage", "message"), DATASET_DAMAGE)
def test_each_broken_dataset_invariant_is_named(
    tiny_synthetic, space_table, tmp_path: Path, monkeypatch, damage, message: str
) -> None:
    path = _write(tmp_path / "damaged.lmdb", damage(tiny_synthetic.dataset), None, monkeypatch)
    Store.open(path, verify=True).close()
    with pytest.raises(StoreCorruptError, match=re.escape(message)):
        verify.verify_store(path, space_table)


def test_the_wrong_hash_is_named(tiny_synthetic, space_table, tmp_path: Path, monkeypatch) -> None:
    data = tiny_synthetic.dataset
    path = _write(tmp_path / "damaged.lmdb", _hashes_swapped(data), None, monkeypatch)
    with pytest.raises(StoreCorruptError) as info:
        verify.verify_store(path, space_table)
    assert str(info.value) == f"{path}: row 20: hash {data.hashes[30].tobytes().hex()} does not match its cell"


@pytest.mark.parametrize("field", [1, 2, 3, 5, 6, 7])
def test_every_accuracy_field_is_checked(tiny_synthetic, space_table, tmp_path: Path, monkeypatch, field: int) -> None:
    path = _write(
        tmp_path / "damaged.lmdb", tiny_synthetic.dataset, _set("metrics", (2, 1, 1, field), 1.5), monkeypatch
    )
    with pytest.raises(StoreCorruptError, match=re.escape("some accuracies are outside [0, 1]")):
        verify.verify_store(path, space_table)


def _edge_values(data):
    """Bounds that are allowed: accuracies of exactly 0 and 1, training times of exactly 0."""
    metrics = data.metrics.copy()
    metrics[0, 0, 0, [1, 2, 3, 5, 6, 7]] = 0.0
    metrics[1, 0, 0, [1, 2, 3, 5, 6, 7]] = 1.0
    metrics[2, 0, 0, [0, 4]] = 0.0
    metrics[3, 0, 0, [0, 4]] = 0.5
    return _replace(data, metrics=metrics)


def _last_cell(data, table):
    """Row 1 becomes the last (7-vertex) cell of the space, with its hash (the first, 2-vertex, is already in)."""
    keys, representatives, hashes = data.keys.copy(), data.representatives.copy(), data.hashes.copy()
    keys[1] = representatives[1] = table.keys[-1]
    hashes[1] = table.hashes[-1]
    assert table.keys[0] in data.keys
    return _replace(data, keys=keys, representatives=representatives, hashes=hashes)


def test_values_and_cells_at_the_bounds_pass(tiny_synthetic, space_table, tmp_path: Path, monkeypatch) -> None:
    data = _last_cell(_edge_values(tiny_synthetic.dataset), space_table)
    assert canonical.unpack(int(data.keys[1]))[0] == 7
    path = _write(tmp_path / "bounds.lmdb", data, None, monkeypatch)
    assert verify.verify_store(path, space_table)["cells"] == 91


def test_a_key_beyond_the_last_cell_of_the_space(tiny_synthetic, space_table, tmp_path: Path, monkeypatch) -> None:
    """A complete 7-vertex DAG (21 edges) sorts after every cell of the space: named, not an IndexError."""
    code = canonical.pack(7, (1 << 21) - 1, (2, 2, 2, 2, 2))
    assert canonical.canonicalize(code) == code and code > int(space_table.keys[-1])
    keys, representatives = tiny_synthetic.dataset.keys.copy(), tiny_synthetic.dataset.representatives.copy()
    keys[2] = representatives[2] = code
    path = _write(
        tmp_path / "beyond.lmdb",
        _replace(tiny_synthetic.dataset, keys=keys, representatives=representatives),
        None,
        monkeypatch,
    )
    with pytest.raises(StoreCorruptError, match=re.escape("row 2: the cell is not in the search space")):
        verify.verify_store(path, space_table)


def test_the_given_space_table_is_the_one_used(tiny_synthetic, space_table, tmp_path: Path, monkeypatch) -> None:
    """verify_store checks against the table it is given (a table lacking one cell makes that cell 'outside')."""
    from nasbench import space

    path = _write(tmp_path / "intact.lmdb", tiny_synthetic.dataset, None, monkeypatch)
    missing = int(np.searchsorted(space_table.keys, tiny_synthetic.dataset.keys[5]))
    smaller = space.SpaceTable(
        keys=np.delete(space_table.keys, missing), hashes=np.delete(space_table.hashes, missing, axis=0)
    )
    with pytest.raises(StoreCorruptError, match=re.escape("row 5: the cell is not in the search space")):
        verify.verify_store(path, smaller)
