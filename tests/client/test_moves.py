"""The one-edit moves of ``nasbench.space`` (vectorized over the key table) against the definition:
``oracles.neighbor_keys`` (every edit built as a ModelSpec, pruned, checked and keyed one at a time) for the
neighbours of one cell and the neighbour graph, decode/change/re-encode for op swaps."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from nasbench import canonical, space
from nasbench.lib import config
from tests import oracles


@pytest.fixture(scope="module")
def every_key() -> np.ndarray:
    return space.enumerate_cells().keys


def test_neighbor_keys_of_one_cell_follow_the_definition(every_key) -> None:
    """Every cell of up to 5 vertices, and 300 of the whole space."""
    small = every_key[every_key < np.uint64(6 << canonical.VERTICES_SHIFT)]
    sample = np.random.default_rng(11).choice(every_key, 300, replace=False)
    for key in np.concatenate([small, sample]).tolist():
        assert space.neighbor_keys(key) == oracles.neighbor_keys(key)


def test_neighbor_graph_equals_neighbor_keys_on_the_small_space(every_key) -> None:
    """Cells of up to 5 vertices are closed under moves: every neighbour list must match exactly."""
    keys = every_key[every_key < np.uint64(6 << canonical.VERTICES_SHIFT)]
    graph = space.neighbor_graph(keys)
    assert graph.cells == len(keys) == 2532
    for row, key in enumerate(keys.tolist()):
        assert keys[graph.neighbors(row)].tolist() == oracles.neighbor_keys(key)


def test_neighbor_graph_equals_neighbor_keys_on_a_sample_of_the_whole_space(every_key) -> None:
    """Also: progress is told the rows done after each chunk, and no cell of the space is its own neighbour (a
    flip changes the edge count, a swap the ops: the moves never give the cell back)."""
    done: list[int] = []
    graph = space.neighbor_graph(every_key, progress=done.append)
    assert graph.cells == len(every_key)
    assert done == [*range(1 << 15, len(every_key), 1 << 15), len(every_key)]
    rows = np.random.default_rng(3).choice(len(every_key), 300, replace=False)
    for row in rows.tolist():
        assert every_key[graph.neighbors(row)].tolist() == oracles.neighbor_keys(int(every_key[row]))
    owners = np.repeat(np.arange(graph.cells), graph.degree())
    assert len(owners) == len(graph.indices) and (graph.indices != owners).all()


def test_neighbor_graph_leaves_out_cells_absent_from_a_subset(every_key) -> None:
    keys = every_key[::3]
    graph = space.neighbor_graph(keys)
    present = set(keys.tolist())
    for row in range(0, len(keys), 997):
        expected = [k for k in oracles.neighbor_keys(int(keys[row])) if k in present]
        assert keys[graph.neighbors(row)].tolist() == expected


def _small_cells(every_key: np.ndarray) -> np.ndarray:
    return every_key[every_key < np.uint64(6 << canonical.VERTICES_SHIFT)]


def _cells_of_5_vertices(every_key: np.ndarray) -> np.ndarray:
    """A subset closed under op swaps whose first row has interior vertices (swaps from and to row 0)."""
    return every_key[(every_key >> np.uint64(canonical.VERTICES_SHIFT)) == 5]


@pytest.mark.parametrize("subset", [_small_cells, _cells_of_5_vertices], ids=["up-to-5-vertices", "5-vertices"])
def test_op_swaps_equal_decoding_and_changing_one_op(every_key, subset) -> None:
    keys = subset(every_key)
    swaps = space.op_swaps(keys)
    columns = (swaps.rows, swaps.neighbors, swaps.from_label, swaps.to_label)
    found = Counter(zip(*(column.tolist() for column in columns), strict=True))
    expected: Counter = Counter()
    ops = list(config.AVAILABLE_OPS)
    row_of = {key: row for row, key in enumerate(keys.tolist())}
    for row, key in enumerate(keys.tolist()):
        matrix, names = canonical.decode(key)
        for vertex in range(1, len(names) - 1):
            for op in ops:
                if op != names[vertex]:
                    changed = [*names[:vertex], op, *names[vertex + 1 :]]
                    neighbour = row_of[canonical.canonical_key(matrix, changed)]
                    expected[(row, neighbour, ops.index(names[vertex]), ops.index(op))] += 1
    assert found == expected  # one swap per (cell, vertex, other op), automorphic vertices included


def test_op_swaps_of_the_whole_space_change_each_interior_op_to_each_other_op(every_key) -> None:
    """Every swap of a cell of the space is a cell of the space: two per interior vertex, over every chunk."""
    swaps = space.op_swaps(every_key)
    interior = (every_key >> np.uint64(canonical.VERTICES_SHIFT)).astype(np.int64) - 2
    np.testing.assert_array_equal(np.bincount(swaps.rows, minlength=len(every_key)), 2 * interior)
    rows = [40_000, 100_000, len(every_key) - 1]  # in the second and the fourth chunk, and the last row
    picked = np.flatnonzero(np.isin(swaps.rows, rows))
    assert len(picked) == 2 * interior[rows].sum() > 0
    ops = list(config.AVAILABLE_OPS)
    for entry in picked.tolist():
        matrix, names = canonical.decode(int(every_key[swaps.rows[entry]]))
        before, after = ops[swaps.from_label[entry]], ops[swaps.to_label[entry]]
        changed = {
            canonical.canonical_key(matrix, [*names[:vertex], after, *names[vertex + 1 :]])
            for vertex in range(1, len(names) - 1)
            if names[vertex] == before
        }
        assert int(every_key[swaps.neighbors[entry]]) in changed


def test_no_cells_no_moves() -> None:
    empty = np.zeros(0, dtype=np.uint64)
    graph = space.neighbor_graph(empty)
    assert graph.cells == 0 and graph.indptr.tolist() == [0] and graph.indices.dtype == np.int32
    assert len(graph.indices) == 0
    swaps = space.op_swaps(empty)
    for column in (swaps.rows, swaps.neighbors, swaps.from_label, swaps.to_label):
        assert column.dtype == np.int64 and column.shape == (0,)


def test_keys_must_be_ascending_cells(every_key) -> None:
    """Refused in full: keys out of order anywhere (also a repeated key, also two keys), keys that are no cell."""
    small = _small_cells(every_key)
    out_of_order = [small[::-1], small[[0, 2, 1]], small[[1, 0]], small[[0, 1, 1]]]
    for keys in out_of_order:
        for moves in (space.neighbor_graph, space.op_swaps):
            with pytest.raises(ValueError, match=r"^keys must be strictly ascending$"):
                moves(keys)
    with pytest.raises(ValueError, match=r"^every key must be a cell of the space$"):
        space.neighbor_graph(np.array([3], dtype=np.uint64))
