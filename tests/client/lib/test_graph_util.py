"""graph_util: the original tests (google-research/nasbench nasbench/tests/graph_util_test.py), rewritten
from their description, plus bad input."""

from __future__ import annotations

import random

import numpy as np
import pytest

from nasbench.lib import graph_util
from nasbench.lib.model_spec import ModelSpec
from tests.client.scenarios import AVAILABLE, ISSUE_32, reference_hash


def _edges(num_vertices: int, edges: list[tuple[int, int]]) -> np.ndarray:
    matrix = np.zeros((num_vertices, num_vertices), dtype=np.int8)
    for src, dst in edges:
        matrix[src, dst] = 1
    return matrix


@pytest.mark.parametrize(
    ("bits", "size", "edges"),
    [
        pytest.param(0, 3, [], id="0-3x3"),
        pytest.param(3, 3, [(0, 1), (0, 2)], id="3-3x3"),
        pytest.param(5, 3, [(0, 1), (1, 2)], id="5-3x3"),
        pytest.param(7, 3, [(0, 1), (0, 2), (1, 2)], id="7-3x3"),
        pytest.param(7, 4, [(0, 1), (0, 2), (1, 2)], id="7-4x4"),
        pytest.param(18, 4, [(0, 2), (1, 3)], id="18-4x4"),
        pytest.param(35, 4, [(0, 1), (0, 2), (2, 3)], id="35-4x4"),
    ],
)
def test_gen_is_edge(bits: int, size: int, edges: list[tuple[int, int]]) -> None:
    """Bits fill the strict upper triangle column by column from the least significant bit."""
    matrix = np.fromfunction(graph_util.gen_is_edge_fn(bits), (size, size), dtype=np.int8)
    np.testing.assert_array_equal(matrix, _edges(size, edges))
    assert matrix.dtype == np.int64


@pytest.mark.parametrize(
    ("matrix", "expected"),
    [
        pytest.param(_edges(3, [(0, 1), (1, 2)]), True, id="chain"),
        pytest.param(_edges(3, [(0, 1), (0, 2), (1, 2)]), True, id="triangle"),
        pytest.param(_edges(4, [(0, 1), (0, 2), (1, 3), (2, 3)]), True, id="diamond"),
        pytest.param(np.array([[0, 0, 1], [0, 0, 1], [0, 0, 0]]), False, id="no-in-edge"),
        pytest.param(np.array([[0, 1, 1], [0, 0, 0], [0, 0, 0]]), False, id="no-out-edge"),
        pytest.param(_edges(5, [(0, 2), (1, 3), (2, 4)]), False, id="detached"),
        pytest.param(_edges(4, [(0, 2), (1, 3)]), False, id="no-path"),
        pytest.param(_edges(4, [(0, 1), (1, 3)]), False, id="isolated"),
    ],
)
def test_is_full_dag(matrix: np.ndarray, expected: bool) -> None:
    """Every non-output vertex needs an out-edge and every non-input vertex an in-edge."""
    assert graph_util.is_full_dag(matrix) is expected


M1 = _edges(5, [(0, 1), (0, 2), (1, 4), (2, 3), (3, 4)])
M2 = _edges(5, [(0, 1), (0, 3), (1, 2), (2, 4), (3, 4)])
M3 = _edges(5, [(0, 1), (0, 2), (1, 3), (2, 4), (3, 4)])
DIAMOND = _edges(4, [(0, 1), (0, 2), (1, 3), (2, 3)])


def test_hash_module_equal_for_isomorphic_graphs() -> None:
    """Relabelled graphs hash equal."""
    h = graph_util.hash_module
    assert h(DIAMOND, [-1, 1, 2, -2]) == h(DIAMOND, [-1, 2, 1, -2])
    assert h(M1, [-1, 1, 2, 3, -2]) == h(M2, [-1, 2, 3, 1, -2]) == h(M3, [-1, 2, 1, 3, -2])


def test_hash_module_differs_for_different_graphs() -> None:
    """Labels, self information, edge direction and in-neighbours all matter."""
    h = graph_util.hash_module
    label1 = h(M1, [-1, 1, 2, 3, -2])
    assert h(M2, [-1, 2, 3, 1, -2]) == label1
    assert h(M1, [-1, 2, 3, 1, -2]) != label1
    assert h(M1, [-1, 3, 1, 2, -2]) != label1
    chain = _edges(5, [(0, 1), (1, 2), (2, 3), (3, 4)])
    assert h(chain, [-1, 1, 0, 0, -2]) != h(chain, [-1, 0, 0, 1, -2]), "breaks if you don't include self"
    directed = _edges(4, [(0, 1), (0, 3), (1, 2), (2, 3)])
    assert h(directed, [-1, 1, 0, -2]) != h(directed, [-1, 0, 1, -2]), "directed edges"
    wide = _edges(7, [(0, 1), (0, 2), (0, 3), (0, 4), (1, 2), (2, 6), (3, 5), (4, 5), (5, 6)])
    assert h(wide, [-1, 1, 0, 0, 0, 0, -2]) != h(wide, [-1, 0, 0, 0, 1, 0, -2]), "out-neighbours and self"
    # Two non-isomorphic 8-vertex graphs, every vertex of degree 3 in the undirected sense.
    cube_edges = [(0, 1), (0, 2), (0, 4), (1, 3), (1, 5), (2, 3), (2, 6), (3, 7), (4, 5), (4, 6), (5, 7), (6, 7)]
    ladder_edges = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6), (6, 7), (0, 7), (0, 4), (1, 5), (2, 6), (3, 7)]
    cube, moebius = _edges(8, cube_edges), _edges(8, ladder_edges)
    assert not graph_util.is_isomorphic((cube, [1] * 8), (moebius, [1] * 8))
    assert h(cube, [-1] + [1] * 6 + [-2]) != h(moebius, [-1] + [1] * 6 + [-2])


def test_hash_module_vectors() -> None:
    """Hashes computed with the original code (google-research/nasbench nasbench/lib/graph_util.py)."""
    h = graph_util.hash_module
    assert h(np.array([[0, 1], [0, 0]]), [-1, -2]) == "043721b9c7fe8c5fad811d47d83132ec"
    chain = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    assert h(chain, [-1, 0, -2]) == "b49ac8c578b4561d79ac7087988f1c61"
    assert h(chain, [-1, 1, -2]) == "d1269d9156ddc027c40473008192958a"
    assert h(chain, [-1, 2, -2]) == "53cee42601ad14d661bb6878031d6acb"
    assert h(np.array([[0, 1, 1], [0, 0, 1], [0, 0, 0]]), [-1, 0, -2]) == "d32d0b26d534203b48d866facd98cc3e"
    # numpy ≥ 2 prints numpy-integer labels as np.int64(-1): the strings, hence the hash, change.
    assert h(chain, list(np.array([-1, 0, -2]))) == "f25c99d34ea59cbab39fce088bf2fafc"


def test_permute_graph() -> None:
    """Vertex permutation[v] of the new graph is vertex v of the old one; the matrix becomes bool."""
    graph = np.array([[1, 1, 0], [0, 0, 1], [1, 0, 1]])
    matrix, labels = graph_util.permute_graph(graph, ["a", "b", "c"], [2, 0, 1])
    np.testing.assert_array_equal(matrix, [[0, 1, 0], [0, 1, 1], [1, 0, 1]])
    assert matrix.dtype == bool
    assert labels == ["b", "c", "a"]
    matrix, labels = graph_util.permute_graph(graph, ["a", "b", "c"], [0, 2, 1])
    np.testing.assert_array_equal(matrix, [[1, 0, 1], [1, 1, 0], [0, 1, 0]])
    assert labels == ["a", "c", "b"]


def test_is_isomorphic() -> None:
    """Brute force over permutations, labels included."""
    assert graph_util.is_isomorphic((DIAMOND, [-1, 1, 2, -2]), (DIAMOND, [-1, 2, 1, -2]))
    assert graph_util.is_isomorphic((M1, [-1, 1, 2, 3, -2]), (M2, [-1, 2, 3, 1, -2]))
    assert graph_util.is_isomorphic((M1, [-1, 1, 2, 3, -2]), (M3, [-1, 2, 1, 3, -2]))
    assert not graph_util.is_isomorphic((M1, [-1, 1, 2, 3, -2]), (M2, [-1, 1, 2, 3, -2]))
    # An 8-vertex bipartite 3-regular graph and a manual relabelling of it.
    bipartite = np.zeros((8, 8), dtype=np.int8)
    for left, rights in {0: (4, 5, 6), 1: (4, 5, 7), 2: (4, 6, 7), 3: (5, 6, 7)}.items():
        for right in rights:
            bipartite[left, right] = bipartite[right, left] = 1
    permuted, labels = graph_util.permute_graph(bipartite, [1, 1, 1, 1, 2, 2, 2, 2], [0, 5, 7, 2, 4, 1, 3, 6])
    assert labels == [1, 2, 1, 2, 2, 1, 2, 1]
    assert graph_util.is_isomorphic((bipartite, [1] * 8), (permuted.astype(int), [1] * 8))
    assert graph_util.is_isomorphic((bipartite, [1, 1, 1, 1, 2, 2, 2, 2]), (permuted.astype(int), labels))


def test_is_isomorphic_false_for_different_sizes() -> None:
    """Graphs of different sizes are simply not isomorphic (the original asserted instead)."""
    assert not graph_util.is_isomorphic((DIAMOND, [-1, 1, 2, -2]), (M1, [-1, 1, 2, 3, -2]))


def test_random_isomorphism_hashing() -> None:
    """1,000 random directed graphs (cycles and self-loops included) hash equal to a relabelling of themselves."""
    rng = random.Random(1234)
    for _ in range(1000):
        size = rng.randint(3, 20)
        matrix = np.array([[rng.randint(0, 1) for _ in range(size)] for _ in range(size)])
        labels = [rng.randint(0, 10) for _ in range(size)]
        permutation = list(range(size))
        rng.shuffle(permutation)
        permuted, permuted_labels = graph_util.permute_graph(matrix, labels, permutation)
        assert graph_util.hash_module(matrix, labels) == graph_util.hash_module(permuted, permuted_labels)


def test_counterexample_bipartite() -> None:
    """Two non-isomorphic 10-vertex graphs share a hash: the known weakness of the algorithm, pinned."""

    # input -> four vertices labelled 1 -> four vertices labelled 2 -> output; the middle is 2-regular:
    # one 8-cycle in the first graph, two 4-cycles in the second.
    def graph(middle: list[tuple[int, int]]) -> np.ndarray:
        edges = [(0, v) for v in range(1, 5)] + [(v, 9) for v in range(5, 9)] + middle
        return _edges(10, edges)

    one_cycle = graph([(1, 5), (1, 6), (2, 6), (2, 7), (3, 7), (3, 8), (4, 8), (4, 5)])
    two_cycles = graph([(1, 5), (1, 6), (2, 5), (2, 6), (3, 7), (3, 8), (4, 7), (4, 8)])
    labels = [-1, 1, 1, 1, 1, 2, 2, 2, 2, -2]
    assert graph_util.hash_module(one_cycle, labels) == graph_util.hash_module(two_cycles, labels)
    # Not isomorphic: any isomorphism keeps the layers, and the middle parts have 1 and 2 components.
    assert _middle_components(one_cycle) == 1
    assert _middle_components(two_cycles) == 2


def _middle_components(matrix: np.ndarray) -> int:
    seen: set[int] = set()
    components = 0
    for start in range(1, 9):
        if start in seen:
            continue
        components += 1
        stack = [start]
        while stack:
            v = stack.pop()
            if v in seen:
                continue
            seen.add(v)
            stack.extend(w for w in range(1, 9) if matrix[v, w] or matrix[w, v])
    return components


def test_hash_module_of_float_matrices_as_the_original() -> None:
    """Float matrices print degrees as 4.0: other strings, another hash (google-research/nasbench#32),
    reproduced bit for bit."""
    pruned = ModelSpec(np.array(ISSUE_32[0]), ISSUE_32[1])  # vertex 4 feeds nothing: 6 vertices remain
    matrix = pruned.matrix
    labels = [-1] + [AVAILABLE.index(op) for op in pruned.ops[1:-1]] + [-2]
    assert graph_util.hash_module(matrix, labels) == "edb7648dd596405eddc9a5c607b494a6"  # the original code's
    assert graph_util.hash_module(matrix.astype(float), labels) == "926a133285cb34c1a38eefe60e7586d4"
    chain = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]], dtype=float)
    assert graph_util.hash_module(chain, [-1, 0, -2]) == reference_hash(chain, [-1, 0, -2])


@pytest.mark.parametrize(
    ("matrix", "labels"),
    [
        pytest.param(DIAMOND, [-1, 1, 2, -2], id="diamond"),
        pytest.param(M1, [-1, 1, 2, 3, -2], id="m1"),
        pytest.param(np.array([[0, 2, 0], [0, 0, 1], [0, 0, 0]]), [-1, 0, -2], id="entry-2"),
        pytest.param(np.array([[0, np.nan], [0, 0]]), [-1, -2], id="nan"),
        pytest.param(np.array([[1, 1, 0], [0, 0, 1], [1, 0, 1]]), [-1, 5, -2], id="cycle-and-self-loops"),
        pytest.param(np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]], dtype=bool), [-1, 0, -2], id="bool"),
    ],
)
def test_hash_module_equals_the_reference_text(matrix: np.ndarray, labels: list[int]) -> None:
    """The reference's description of the algorithm, written out in the tests, agrees on odd inputs too."""
    assert graph_util.hash_module(matrix, labels) == reference_hash(matrix, labels)


def test_reference_text_reproduces_the_reference_vectors() -> None:
    """The oracle above is itself checked against hashes computed with the original code."""
    chain = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    assert reference_hash(chain, [-1, 0, -2]) == "b49ac8c578b4561d79ac7087988f1c61"
    pruned = ModelSpec(np.array(ISSUE_32[0], dtype=float), ISSUE_32[1])
    labels = [-1] + [AVAILABLE.index(op) for op in pruned.ops[1:-1]] + [-2]
    assert reference_hash(pruned.matrix, labels) == "926a133285cb34c1a38eefe60e7586d4"


@pytest.mark.parametrize(
    ("matrix", "labels", "message"),
    [
        pytest.param(np.zeros((2, 3)), [-1, -2], "square", id="non-square"),
        pytest.param(np.zeros(3), [-1, 0, -2], "square", id="1-d"),
        pytest.param(np.zeros((3, 3)), [-1, -2], "labeling has 2 labels", id="short-labels"),
    ],
)
def test_hash_module_rejects_bad_input(matrix: np.ndarray, labels: list[int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        graph_util.hash_module(matrix, labels)
