"""Canonical keys: invariant under relabelling, decodable, exact, and strict about their domain."""

from __future__ import annotations

import functools
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nasbench import canonical, space
from nasbench._cells import codes
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


# --- the code's fields by value (bit order of the original gen_is_edge_fn: bit x + y*(y-1)/2 is the edge x→y) --

CODE = (5 << 31) | (0b1001011011 << 10) | (0 << 4 | 2 << 2 | 1)  # 5 vertices, bits 0,1,3,4,6,9, ops C3, MP, C1


def test_a_code_by_value() -> None:
    assert canonical.pack(5, 0b1001011011, (0, 2, 1)) == CODE == 10_738_035_721
    assert canonical.unpack(CODE) == (5, 0b1001011011, (0, 2, 1))
    assert canonical.edges_of(5, 0b1001011011) == [(0, 1), (0, 2), (0, 3), (1, 3), (0, 4), (3, 4)]
    assert [canonical.edge_bit(src, dst) for src, dst in [(0, 1), (0, 2), (1, 2), (0, 3), (2, 3), (5, 6)]] == [
        0,
        1,
        2,
        3,
        5,
        20,
    ]
    assert canonical.adjacency_string(CODE) == "0111100010000000000100000"
    assert canonical.ops_string(CODE) == "input,conv3x3-bn-relu,maxpool3x3,conv1x1-bn-relu,output"
    matrix, ops = canonical.decode(CODE)
    assert matrix.dtype == np.int8 and "".join(map(str, matrix.ravel())) == canonical.adjacency_string(CODE)
    assert ops == canonical.ops_string(CODE).split(",")


def test_columns_of_many_codes() -> None:
    two = canonical.pack(2, 1, ())
    full = canonical.pack(7, (1 << 21) - 1, (2, 1, 0, 1, 2))
    codes = np.array([CODE, two, full], dtype=np.uint64)
    vertices, edges = canonical.vertices_and_edges(codes)
    assert vertices.tolist() == [5, 2, 7] and edges.tolist() == [6, 1, 21]
    assert vertices.dtype == edges.dtype == np.int64
    assert canonical.label_slots(codes).tolist() == [[1, 2, 0, -1, -1], [-1] * 5, [2, 1, 0, 1, 2]]  # last op first
    assert canonical.label_slots(codes).dtype == np.int64


def test_columns_of_plain_python_codes() -> None:
    """Lists of Python ints (not uint64 arrays) are read as uint64 codes too: the same columns, the same types."""
    codes = [CODE, canonical.pack(2, 1, ()), canonical.pack(7, (1 << 21) - 1, (2, 1, 0, 1, 2))]
    vertices, edges = canonical.vertices_and_edges(codes)
    assert vertices.tolist() == [5, 2, 7] and edges.tolist() == [6, 1, 21]
    assert vertices.dtype == edges.dtype == np.int64
    labels = canonical.label_slots(codes)
    assert labels.tolist() == [[1, 2, 0, -1, -1], [-1] * 5, [2, 1, 0, 1, 2]] and labels.dtype == np.int64


@pytest.mark.parametrize(
    ("matrix", "bits"),
    [
        pytest.param([[0, 1], [0, 0]], 1, id="list"),
        pytest.param(np.array([[0, 1, 1], [0, 0, 1], [0, 0, 0]], dtype=bool), 0b111, id="bool"),
        pytest.param(np.array([[0, 0, 1], [0, 0, 0], [0, 0, 0]], dtype=np.uint8), 0b10, id="uint8"),
        pytest.param(np.eye(7, k=1, dtype=np.int64), sum(1 << canonical.edge_bit(v, v + 1) for v in range(6)), id="7"),
        pytest.param(np.eye(8, k=1, dtype=np.int64), None, id="8-vertices"),
        pytest.param(np.array([[0, 2], [0, 0]]), None, id="entry-2"),
        pytest.param(np.array([[0, -1], [0, 0]]), None, id="entry-minus-1"),
        pytest.param(np.array([[1, 0], [0, 0]]), None, id="diagonal"),
        pytest.param(np.array([[0, 0], [1, 0]]), None, id="lower"),
        pytest.param(np.array([[0, 1.0], [0, 0]]), None, id="float"),
        pytest.param(np.zeros((2, 3), dtype=int), None, id="non-square"),
        pytest.param(np.zeros(4, dtype=int), None, id="1-d"),
        pytest.param(np.zeros((1, 1), dtype=int), 0, id="one-vertex"),
        pytest.param(np.zeros((0, 0), dtype=int), 0, id="no-vertex"),
        pytest.param(np.ones((1, 1), dtype=int), None, id="one-vertex-loop"),
    ],
)
def test_matrix_bits(matrix, bits) -> None:
    assert canonical.matrix_bits(matrix) == bits
    assert canonical.matrix_bits(matrix) == bits, "the memoized answer is the same"


def test_every_bool_and_integer_dtype_has_a_lane_layout() -> None:
    """The hot paths read bool/integer matrices through ``LANE_LAYOUTS`` and have no other reader: a dtype
    missing from it would make a 0/1 matrix of the space fall to the hash path."""
    dtypes = {np.dtype(t) for t in np.sctypeDict.values() if np.dtype(t).kind in "biu"}
    spellings = {
        variant for d in dtypes for variant in (d, d.newbyteorder("<"), d.newbyteorder(">"), d.newbyteorder("="))
    }
    assert len(spellings) == 15  # bool, int8, uint8, then int and uint of 2, 4, 8 bytes in both byte orders
    assert {d for d in spellings if d not in codes.LANE_LAYOUTS} == set()
    for dtype in sorted(spellings, key=str):
        matrix = np.array([[0, 1, 1], [0, 0, 1], [0, 0, 0]], dtype=dtype)
        assert canonical.matrix_bits(matrix) == canonical.matrix_bits(matrix.astype(np.int64)), dtype


@pytest.mark.parametrize(
    ("ops", "labels"),
    [
        pytest.param([I, O], (), id="none"),
        pytest.param([I, C1, MP, C3, O], (1, 2, 0), id="three"),
        pytest.param([I], None, id="too-short"),
        pytest.param([C3, C3, O], None, id="no-input"),
        pytest.param([I, C3, C3], None, id="no-output"),
        pytest.param([I, "conv5x5", O], None, id="unknown"),
        pytest.param([I, ["x"], O], None, id="unhashable"),
    ],
)
def test_interior_labels(ops, labels) -> None:
    assert codes.interior_labels(ops) == labels


def test_error_messages() -> None:
    with pytest.raises(InvalidSpecError) as info:
        canonical.cell_code(np.zeros((1, 1), dtype=int), [I])
    assert str(info.value) == "canonical keys exist for cells of 2 to 7 vertices, got 1"
    with pytest.raises(InvalidSpecError) as info:
        canonical.cell_code([[0, 1, 0], [0, 0, 1]], [I, C3, O])
    assert str(info.value) == "matrix must be a 3x3 upper-triangular integer matrix of 0/1 entries"
    with pytest.raises(InvalidSpecError) as info:
        canonical.cell_code([[0, 1], [0, 0]], [C3, O])
    assert str(info.value) == (
        "ops must be 'input', then ops from ['conv3x3-bn-relu', 'conv1x1-bn-relu', 'maxpool3x3'], then 'output'; "
        "got ['conv3x3-bn-relu', 'output']"
    )
    for code in (123, canonical.pack(8, 1, (0,) * 6), 1 << 31):
        with pytest.raises(InvalidSpecError) as info:
            canonical.decode(code)
        assert str(info.value) == f"not a cell code: {code} (a cell has 2 to 7 vertices)"
    assert canonical.decode(canonical.pack(7, 1, (0,) * 5))[1] == [I, C3, C3, C3, C3, C3, O]
    assert canonical.decode(canonical.pack(2, 1, ()))[1] == [I, O]


def _key_by_definition(code: int) -> int:
    """The smallest packed code over the interior relabellings that keep the graph upper triangular."""
    import itertools

    num_vertices, bits, labels = canonical.unpack(code)
    edges = [(s, d) for d in range(1, num_vertices) for s in range(d) if bits >> canonical.edge_bit(s, d) & 1]
    best = None
    for interior in itertools.permutations(range(1, num_vertices - 1)):
        new = {0: 0, num_vertices - 1: num_vertices - 1, **{old: i + 1 for i, old in enumerate(interior)}}
        if any(new[s] >= new[d] for s, d in edges):
            continue
        moved = sum(1 << canonical.edge_bit(new[s], new[d]) for s, d in edges)
        relabelled = [0] * (num_vertices - 2)
        for old, label in enumerate(labels, start=1):
            relabelled[new[old] - 1] = label
        candidate = canonical.pack(num_vertices, moved, tuple(relabelled))
        best = candidate if best is None else min(best, candidate)
    assert best is not None
    return best


def test_codes_outside_the_space_are_solved_by_the_definition() -> None:
    """Graphs the key table does not hold (unpruned, or more than nine edges) are canonicalized by computation,
    with the same definition: 300 seeded random upper-triangular graphs of 3 to 7 vertices."""
    rng = random.Random(15)
    from nasbench._cells import keytable

    outside = 0
    for _ in range(300):
        size = rng.randint(3, 7)
        bits = rng.getrandbits(size * (size - 1) // 2)
        labels = tuple(rng.randrange(3) for _ in range(size - 2))
        code = canonical.pack(size, bits, labels)
        outside += keytable.table().key_of_code(code) is None
        assert canonical.canonicalize(code) == canonical.solve(code) == _key_by_definition(code)
    assert outside > 100  # most random graphs are not cells of the space: the computed path is exercised
