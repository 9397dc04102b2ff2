"""Canonical keys: invariant under relabelling, decodable, exact, and strict about their domain."""

from __future__ import annotations

import functools
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nasbench import canonical, space
from nasbench.errors import InvalidSpecError
from nasbench.lib import config, graph_util
from nasbench.lib.model_spec import ModelSpec
from tests.client.scenarios import INCEPTION as INCEPTION_CELL

I, O = config.INPUT, config.OUTPUT
C3, C1, MP = config.CONV3X3, config.CONV1X1, config.MAXPOOL3X3
INCEPTION = np.array(INCEPTION_CELL[0])
INCEPTION_OPS = INCEPTION_CELL[1]


@functools.cache
def _cells() -> np.ndarray:
    return space.enumerate_cells().keys


def random_topological_relabelling(matrix: np.ndarray, ops: list[str], rng: random.Random):
    """A random relabelling of the interior vertices that keeps the matrix upper triangular."""
    size = len(matrix)
    indegree = [int(matrix[:, v].sum()) for v in range(size)]
    ready = [0]
    order: list[int] = []
    while ready:
        interior_ready = [v for v in ready if v != size - 1] or ready
        v = rng.choice(interior_ready)
        ready.remove(v)
        order.append(v)
        for w in range(size):
            if matrix[v, w]:
                indegree[w] -= 1
                if indegree[w] == 0:
                    ready.append(w)
    assert order[0] == 0 and order[-1] == size - 1
    return matrix[np.ix_(order, order)], [ops[v] for v in order]


@settings(max_examples=300, deadline=None)
@given(st.integers(0, space.NUM_CELLS - 1), st.randoms(use_true_random=False))
def test_relabelling_keeps_key_and_hash(index: int, rng: random.Random) -> None:
    """Random relabellings of random cells of the space keep the canonical key and the original hash."""
    key = int(_cells()[index])
    matrix, ops = canonical.decode(key)
    relabelled, relabelled_ops = random_topological_relabelling(matrix, ops, rng)
    assert canonical.canonical_key(relabelled, relabelled_ops) == key
    spec = ModelSpec(relabelled, relabelled_ops)
    assert spec.hash_spec(list(config.AVAILABLE_OPS)) == space.original_hash(key)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, space.NUM_CELLS - 1), st.randoms(use_true_random=False))
def test_any_permutation_keeps_hash(index: int, rng: random.Random) -> None:
    """The hash is invariant under every relabelling, not only upper-triangular ones."""
    key = int(_cells()[index])
    matrix, _ = canonical.decode(key)
    _, _, labels = canonical.unpack(key)
    labeling = [-1, *labels, -2]
    permutation = list(range(len(matrix)))
    rng.shuffle(permutation)
    permuted, permuted_labels = graph_util.permute_graph(matrix, labeling, permutation)
    assert graph_util.hash_module(permuted, permuted_labels) == graph_util.hash_module(matrix, labeling)


def test_key_decodes_to_an_isomorphic_cell() -> None:
    key = canonical.canonical_key(INCEPTION, INCEPTION_OPS)
    matrix, ops = canonical.decode(key)
    assert graph_util.is_isomorphic((INCEPTION, INCEPTION_OPS), (matrix, ops))
    assert ModelSpec(matrix, ops).hash_spec(list(config.AVAILABLE_OPS)) == "28cfc7874f6d200472e1a9dcd8650aa0"
    assert canonical.canonical_key(matrix, ops) == key


def test_key_is_the_minimum_code_of_its_cell() -> None:
    """The canonical key is the smallest code among the upper-triangular relabellings of a cell."""
    rng = random.Random(7)
    key = canonical.canonical_key(INCEPTION, INCEPTION_OPS)
    for _ in range(50):
        matrix, ops = random_topological_relabelling(INCEPTION, INCEPTION_OPS, rng)
        assert canonical.cell_code(matrix, ops) >= key


def test_different_ops_give_different_keys() -> None:
    chain = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    keys = {canonical.canonical_key(chain, [I, op, O]) for op in config.AVAILABLE_OPS}
    assert len(keys) == 3


def test_pack_unpack_round_trip() -> None:
    for key in _cells()[:: space.NUM_CELLS // 997].tolist():
        num_vertices, bits, labels = canonical.unpack(key)
        assert canonical.pack(num_vertices, bits, labels) == key
        matrix, ops = canonical.decode(key)
        assert canonical.cell_code(matrix, ops) == key


def test_bool_and_unsigned_matrices_give_the_same_key() -> None:
    reference = canonical.canonical_key(INCEPTION, INCEPTION_OPS)
    for dtype in (bool, np.uint8, np.int8, np.int32):
        assert canonical.canonical_key(INCEPTION.astype(dtype), INCEPTION_OPS) == reference
    assert canonical.canonical_key(INCEPTION.tolist(), INCEPTION_OPS) == reference


@pytest.mark.parametrize(
    ("matrix", "ops", "message"),
    [
        pytest.param(np.eye(8, k=1, dtype=int), [I] + [C3] * 6 + [O], "2 to 7 vertices", id="8-vertices"),
        pytest.param(np.zeros((1, 1), dtype=int), [I], "2 to 7 vertices", id="1-vertex"),
        pytest.param([[0, 2, 0], [0, 0, 1], [0, 0, 0]], [I, C3, O], "0/1", id="entry-2"),
        pytest.param(np.array([[0, 1], [0, 0]], dtype=float), [I, O], "integer matrix", id="float"),
        pytest.param([[0, 0], [1, 0]], [I, O], "upper-triangular", id="lower"),
        pytest.param([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [I, "conv5x5", O], "ops must be", id="unknown-op"),
        pytest.param([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [C3, C3, O], "ops must be", id="no-input"),
        pytest.param([[0, 1, 0], [0, 0, 1]], [I, C3, O], "3x3", id="non-square"),
    ],
)
def test_canonical_key_rejects_cells_outside_its_domain(matrix: object, ops: list[str], message: str) -> None:
    with pytest.raises(InvalidSpecError, match=message):
        canonical.canonical_key(matrix, ops)


@pytest.mark.parametrize("code", [0, 1 << 31, 8 << 31, 2**64 - 1], ids=["0-vertices", "1-vertex", "8-vertices", "max"])
def test_codes_without_2_to_7_vertices_are_refused_not_expanded(code: int) -> None:
    """Any 64-bit number can arrive as a key; unpacking one must not build a tuple of billions of labels."""
    with pytest.raises(InvalidSpecError, match="not a cell code"):
        canonical.unpack(code)
    with pytest.raises(InvalidSpecError, match="not a cell code"):
        canonical.decode(code)
