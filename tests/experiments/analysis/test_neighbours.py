"""The vectorized moves against the one-cell reference: ``canonical.canonicalize`` for the code table,
``domain.neighbor_keys`` for the neighbour graph, decode/re-encode for op swaps."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from nasbench import canonical, domain, space
from nasbench.lib import config
from nasbench_experiments.analysis import neighbours


@pytest.fixture(scope="module")
def every_key() -> np.ndarray:
    return space.enumerate_cells().keys


def test_code_table_holds_every_labelled_graph_with_its_canonical_key(every_key) -> None:
    table = neighbours.code_table()
    codes = table.codes()
    assert len(codes) == space.NUM_LABELLED_GRAPHS and (np.diff(codes.astype(np.int64)) > 0).all()
    np.testing.assert_array_equal(codes[codes == table.keys], every_key)  # own keys = the cells, in order
    small = codes < np.uint64(6 << canonical.VERTICES_SHIFT)  # every code up to 5 vertices
    sample = np.random.default_rng(0).choice(np.flatnonzero(~small), 3000, replace=False)
    for index in np.concatenate([np.flatnonzero(small), sample]).tolist():
        assert int(table.keys[index]) == canonical.canonicalize(int(codes[index]))


def test_neighbor_graph_equals_neighbor_keys_on_the_small_space(every_key) -> None:
    """Cells of up to 5 vertices are closed under moves: every neighbour list must match exactly."""
    keys = every_key[every_key < np.uint64(6 << canonical.VERTICES_SHIFT)]
    graph = neighbours.neighbor_graph(keys)
    assert graph.cells == len(keys) == 2532
    for row, key in enumerate(keys.tolist()):
        assert keys[graph.neighbors(row)].tolist() == domain.neighbor_keys(key)


def test_neighbor_graph_equals_neighbor_keys_on_a_sample_of_the_whole_space(every_key) -> None:
    graph = neighbours.neighbor_graph(every_key)
    assert graph.cells == len(every_key)
    rows = np.random.default_rng(3).choice(len(every_key), 300, replace=False)
    for row in rows.tolist():
        assert every_key[graph.neighbors(row)].tolist() == domain.neighbor_keys(int(every_key[row]))


def test_neighbor_graph_leaves_out_cells_absent_from_a_subset(every_key) -> None:
    keys = every_key[::3]
    graph = neighbours.neighbor_graph(keys)
    present = set(keys.tolist())
    for row in range(0, len(keys), 997):
        expected = [k for k in domain.neighbor_keys(int(keys[row])) if k in present]
        assert keys[graph.neighbors(row)].tolist() == expected


def test_op_swaps_equal_decoding_and_changing_one_op(every_key) -> None:
    keys = every_key[every_key < np.uint64(6 << canonical.VERTICES_SHIFT)]
    swaps = neighbours.op_swaps(keys)
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


def test_keys_must_be_ascending_cells(every_key) -> None:
    with pytest.raises(ValueError, match="ascending"):
        neighbours.neighbor_graph(every_key[::-1])
    with pytest.raises(ValueError, match="cell of the space"):
        neighbours.neighbor_graph(np.array([3], dtype=np.uint64))
