"""ModelSpec: the original tests (google-research/nasbench nasbench/tests/model_spec_test.py), the original
messages, pruning rules, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nasbench.lib import config
from nasbench.lib.model_spec import ModelSpec, is_upper_triangular
from tests.client.scenarios import INCEPTION, ISSUE_23, ISSUE_32, reference_hash

I, O = config.INPUT, config.OUTPUT
C3, C1, MP = config.CONV3X3, config.CONV1X1, config.MAXPOOL3X3
AVAILABLE = list(config.AVAILABLE_OPS)


@pytest.mark.parametrize(
    "matrix",
    [
        pytest.param(np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]]), id="chain"),
        pytest.param(np.array([[0, 1, 1], [0, 0, 1], [0, 0, 0]]), id="triangle"),
        pytest.param(np.array([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]]), id="diamond"),
    ],
)
def test_prune_noop(matrix: np.ndarray) -> None:
    """Cells with every vertex on an input→output path stay unchanged."""
    ops = [0] * len(matrix)
    spec = ModelSpec(matrix, ops)
    assert spec.valid_spec
    np.testing.assert_array_equal(spec.original_matrix, spec.matrix)
    assert spec.original_ops == spec.ops == ops


def test_prune_islands() -> None:
    """Vertices unreachable from the input or unable to reach the output are removed."""
    spec = ModelSpec(np.array([[0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]]), [1, 2, 3, 4])
    np.testing.assert_array_equal(spec.matrix, [[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    assert spec.ops == [1, 2, 4]
    five = np.zeros((5, 5), dtype=int)
    five[0, 1] = five[1, 4] = five[2, 3] = 1
    spec = ModelSpec(five, [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(spec.matrix, [[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    assert spec.ops == [1, 2, 5]


def test_prune_dangling() -> None:
    """Dead ends and vertices without input are removed."""
    spec = ModelSpec(np.array([[0, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]]), [1, 2, 3, 4])
    np.testing.assert_array_equal(spec.matrix, [[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    assert spec.ops == [1, 3, 4]
    spec = ModelSpec(np.array([[0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]]), [1, 2, 3, 4])
    np.testing.assert_array_equal(spec.matrix, [[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    assert spec.ops == [1, 3, 4]


@pytest.mark.parametrize(
    "matrix",
    [
        pytest.param([[0, 0], [0, 0]], id="2-vertices"),
        pytest.param([[0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]], id="two-pieces"),
        pytest.param([[0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]], id="middle-only"),
        pytest.param(np.zeros((0, 0), dtype=int), id="0x0"),
        pytest.param([[0]], id="1x1"),
    ],
)
def test_prune_disconnected(matrix: list[list[int]]) -> None:
    """No input→output path: the spec is invalid, matrix and ops are None."""
    spec = ModelSpec(matrix, [0] * len(matrix))
    assert spec.valid_spec is False
    assert spec.matrix is None and spec.ops is None


@pytest.mark.parametrize(
    ("matrix", "expected"),
    [
        pytest.param(np.zeros((4, 4)), True, id="zeros"),
        pytest.param(np.triu(np.ones((4, 4)), 1), True, id="strict-upper"),
        pytest.param(np.triu(np.ones((4, 4)), 1) + np.eye(4, k=-2)[:, :], False, id="one-below"),
        pytest.param(np.eye(4, k=-2), False, id="only-below"),
        pytest.param(np.tril(np.ones((4, 4))), False, id="lower-with-diagonal"),
        pytest.param(np.array([[0]]), True, id="[[0]]"),
        pytest.param(np.array([[1]]), False, id="[[1]]"),
    ],
)
def test_is_upper_triangular(matrix: np.ndarray, expected: bool) -> None:
    assert is_upper_triangular(matrix) is expected


def test_pruning_example_of_reference() -> None:
    """A dead-end interior vertex goes; the rest keep their order; a bypassed middle leaves a 2-vertex cell."""
    spec = ModelSpec([[0, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]], [I, C3, C1, O])
    np.testing.assert_array_equal(spec.matrix, [[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    assert spec.ops == [I, C1, O]
    spec = ModelSpec([[0, 0, 1], [0, 0, 0], [0, 0, 0]], [I, C3, O])
    np.testing.assert_array_equal(spec.matrix, [[0, 1], [0, 0]])
    assert spec.ops == [I, O]
    assert spec.hash_spec(AVAILABLE) == "043721b9c7fe8c5fad811d47d83132ec"


def test_copies_are_independent() -> None:
    """original_* and pruned copies never alias the caller's objects or each other."""
    matrix = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    ops = [I, C3, O]
    spec = ModelSpec(matrix, ops)
    matrix[0, 1] = 0
    ops[1] = MP
    assert spec.original_matrix[0, 1] == 1 and spec.matrix[0, 1] == 1
    assert spec.original_ops == [I, C3, O] == spec.ops
    spec.matrix[1, 2] = 0
    assert spec.original_matrix[1, 2] == 1
    assert spec.ops is not spec.original_ops


@pytest.mark.parametrize("dtype", [np.int8, np.int64, np.uint8, bool, np.float32, np.float64])
def test_dtype_is_kept(dtype: type) -> None:
    """The caller's dtype survives in original_matrix and in the pruned matrix."""
    matrix = np.array([[0, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]], dtype=dtype)
    spec = ModelSpec(matrix, [I, C3, C1, O])
    assert spec.original_matrix.dtype == spec.matrix.dtype == np.dtype(dtype)


def test_data_format_is_stored() -> None:
    assert ModelSpec([[0, 1], [0, 0]], [I, O]).data_format == "channels_last"
    assert ModelSpec([[0, 1], [0, 0]], [I, O], data_format="channels_first").data_format == "channels_first"


HASH_VECTORS = [
    pytest.param([[0, 1], [0, 0]], [I, O], "043721b9c7fe8c5fad811d47d83132ec", id="input-output"),
    pytest.param([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [I, C3, O], "b49ac8c578b4561d79ac7087988f1c61", id="conv3x3"),
    pytest.param([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [I, C1, O], "d1269d9156ddc027c40473008192958a", id="conv1x1"),
    pytest.param([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [I, MP, O], "53cee42601ad14d661bb6878031d6acb", id="maxpool"),
    pytest.param([[0, 1, 1], [0, 0, 1], [0, 0, 0]], [I, C3, O], "d32d0b26d534203b48d866facd98cc3e", id="skip"),
    pytest.param(*INCEPTION, "28cfc7874f6d200472e1a9dcd8650aa0", id="inception"),
    pytest.param(*ISSUE_23, "02e5a0247bbdcf2860b7e96f74961594", id="issue-23"),
    pytest.param([[0, 2, 0], [0, 0, 1], [0, 0, 0]], [I, C3, O], "89057bb6261f456b0e64fbc4bee18d68", id="entry-2"),
]

ISSUE_32_MATRIX, ISSUE_32_OPS = ISSUE_32


@pytest.mark.parametrize(("matrix", "ops", "expected"), HASH_VECTORS)
def test_hash_spec_vectors(matrix: list[list[int]], ops: list[str], expected: str) -> None:
    """Hashes computed with the original code (google-research/nasbench nasbench/lib/graph_util.py)."""
    assert ModelSpec(np.array(matrix), ops).hash_spec(AVAILABLE) == expected


def test_hash_spec_issue_32_int_and_float() -> None:
    """The same cell as an int matrix is in the space; as a float matrix it hashes differently
    (google-research/nasbench#32)."""
    assert ModelSpec(np.array(ISSUE_32_MATRIX), ISSUE_32_OPS).hash_spec(AVAILABLE) == (
        "edb7648dd596405eddc9a5c607b494a6"
    )
    assert ModelSpec(np.array(ISSUE_32_MATRIX, dtype=float), ISSUE_32_OPS).hash_spec(AVAILABLE) == (
        "926a133285cb34c1a38eefe60e7586d4"
    )


def test_hash_spec_of_invalid_spec_raises_type_error() -> None:
    """The original failed with TypeError on a disconnected spec; so does this one, with a clear message."""
    with pytest.raises(TypeError, match="invalid spec"):
        ModelSpec([[0, 0], [0, 0]], [I, O]).hash_spec(AVAILABLE)


def test_hash_spec_unknown_op_raises_value_error() -> None:
    with pytest.raises(ValueError, match="conv5x5"):
        ModelSpec([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [I, "conv5x5", O]).hash_spec(AVAILABLE)


# --- bad input: the original's ValueError messages, or a clear message where it crashed elsewhere -----------


@pytest.mark.parametrize(
    ("matrix", "ops", "message"),
    [
        pytest.param([[0, 1, 0], [0, 0, 1]], [I, C3, O], "^matrix must be square$", id="non-square"),
        pytest.param([0, 1, 0], [I, C3, O], "^matrix must be square$", id="1-d"),
        pytest.param(np.zeros((2, 2, 2)), [I, O], "^matrix must be square$", id="3-d"),
        pytest.param([], [], "^matrix must be square$", id="empty-list"),
        pytest.param([[0, 1], [0, 0]], [I, C3, O], "^length of ops must match matrix dimensions$", id="ops-long"),
        pytest.param([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [I, O], "^length of ops must", id="ops-short"),
        pytest.param([[0, 0], [1, 0]], [I, O], "^matrix must be upper triangular$", id="lower"),
        pytest.param([[1, 1], [0, 0]], [I, O], "^matrix must be upper triangular$", id="diagonal"),
        pytest.param([[0, 1], [math.nan, 0]], [I, O], "^matrix must be upper triangular$", id="nan-below"),
        pytest.param([[0, 1], [0]], [I, O], "matrix must be square: could not read", id="ragged"),
        pytest.param([["0", "1"], ["0", "0"]], [I, O], "must be numbers", id="strings"),
        pytest.param([[0, 1], [0, "x"]], [I, O], "must be numbers", id="mixed-strings"),
    ],
)
def test_bad_matrix_raises_value_error(matrix: object, ops: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ModelSpec(matrix, ops)


@pytest.mark.parametrize("ops", [None, 3, object()])
def test_ops_without_length_raise_type_error(ops: object) -> None:
    with pytest.raises(TypeError, match="ops must be a list"):
        ModelSpec([[0, 1], [0, 0]], ops)  # type: ignore[arg-type]


def test_nan_above_diagonal_is_accepted_like_the_original() -> None:
    """NaN is truthy, so the original keeps it as an edge and hashes 'nan' degrees; so do we."""
    spec = ModelSpec([[0, math.nan], [0, 0]], [I, O])
    assert spec.valid_spec
    assert spec.hash_spec(AVAILABLE) == reference_hash(np.array([[0, math.nan], [0, 0]]), [-1, -2])
    assert spec.hash_spec(AVAILABLE) != "043721b9c7fe8c5fad811d47d83132ec"  # the int matrix's hash


def test_non_binary_entries_are_accepted_like_the_original() -> None:
    """Entries other than 0/1 pass construction (the original checks values only through the hash)."""
    spec = ModelSpec([[0, 2, 0], [0, 0, 1], [0, 0, 0]], [I, C3, O])
    assert spec.valid_spec and spec.matrix[0, 1] == 2


def test_tuple_ops_are_pruned_instead_of_crashing() -> None:
    """The original deleted items of a deep copy, which fails for tuples; we prune them into a list."""
    spec = ModelSpec([[0, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]], (I, C3, C1, O))
    assert spec.ops == [I, C1, O]
    assert spec.original_ops == (I, C3, C1, O)


def test_more_than_seven_vertices_construct_fine() -> None:
    """The spec itself has no size limit; the API rejects such cells
    (google-research/nasbench nasbench/api.py, _check_spec)."""
    size = 9
    matrix = np.eye(size, k=1, dtype=int)
    spec = ModelSpec(matrix, [I] + [C3] * (size - 2) + [O])
    assert spec.valid_spec and spec.matrix.shape == (size, size)


def test_object_matrix_uses_python_truthiness() -> None:
    spec = ModelSpec(np.array([[0, 1, 0], [0, 0, True], [0, 0, 0]], dtype=object), [I, C3, O])
    assert spec.valid_spec and spec.ops == [I, C3, O]


def test_object_matrix_with_a_dangling_vertex_is_pruned() -> None:
    """An object matrix takes the general pruning path (no flat gather): same cell as the integer one."""
    matrix = [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]]  # vertex 2 leads nowhere
    spec = ModelSpec(np.array(matrix, dtype=object), [I, C3, C1, O])
    assert spec.valid_spec and spec.ops == [I, C3, O]
    assert spec.matrix.dtype == object and spec.matrix.tolist() == [[0, 1, 0], [0, 0, 1], [0, 0, 0]]


# --- property: pruning matches the original's rules (nasbench/lib/model_spec.py), random upper-triangular matrices


def _reference_prune(matrix: np.ndarray) -> list[int] | None:
    """Vertices kept by the original's pruning rules (a plain statement of them), or None when invalid."""
    size = len(matrix)
    reach = {0}
    for src in range(size):
        if src in reach:
            reach.update(dst for dst in range(src + 1, size) if matrix[src][dst])
    coreach = {size - 1}
    for dst in range(size - 1, -1, -1):
        if dst in coreach:
            coreach.update(src for src in range(dst) if matrix[src][dst])
    kept = sorted(reach & coreach)
    return kept if len(kept) >= 2 and 0 in kept and size - 1 in kept else None


@st.composite
def upper_triangular(draw: st.DrawFn) -> np.ndarray:
    size = draw(st.integers(2, 9))
    density = draw(st.floats(0.0, 1.0))
    entries = draw(st.lists(st.floats(0, 1), min_size=size * (size - 1) // 2, max_size=size * (size - 1) // 2))
    matrix = np.zeros((size, size), dtype=np.int8)
    matrix[np.triu_indices(size, 1)] = [1 if x < density else 0 for x in entries]
    return matrix


@settings(max_examples=400, deadline=None)
@given(upper_triangular())
def test_pruning_matches_reference_rules(matrix: np.ndarray) -> None:
    ops = list(range(len(matrix)))
    spec = ModelSpec(matrix, ops)
    kept = _reference_prune(matrix)
    if kept is None:
        assert not spec.valid_spec and spec.matrix is None and spec.ops is None
        return
    assert spec.valid_spec
    assert spec.ops == kept
    np.testing.assert_array_equal(spec.matrix, matrix[np.ix_(kept, kept)])
    assert spec.matrix.dtype == matrix.dtype
    np.testing.assert_array_equal(spec.original_matrix, matrix)


@settings(max_examples=300, deadline=None)
@given(
    upper_triangular(),
    st.sampled_from([bool, np.uint8, np.int16, ">i2", np.int32, ">u4", np.int64, ">i8", np.float64, object]),
    st.booleans(),
)
def test_pruning_is_the_same_for_every_dtype(matrix: np.ndarray, dtype: object, transposed_layout: bool) -> None:
    """0/1 integer matrices take the integer-operation analysis; others the entry-by-entry one: same answer."""
    typed = matrix.astype(dtype)
    if transposed_layout:
        typed = np.asfortranarray(typed)
    spec = ModelSpec(typed, [I] + [C3] * (len(matrix) - 2) + [O])
    kept = _reference_prune(matrix)
    assert spec.valid_spec == (kept is not None)
    if kept is not None:
        np.testing.assert_array_equal(spec.matrix, matrix[np.ix_(kept, kept)])
        assert spec.matrix.dtype == typed.dtype and spec.matrix.flags.writeable
        assert spec.ops == [([I] + [C3] * (len(matrix) - 2) + [O])[v] for v in kept]
    assert spec.original_matrix is not typed and spec.original_matrix.dtype == typed.dtype


def test_lower_entries_and_large_values_are_caught_in_every_dtype() -> None:
    for dtype in (np.int8, np.int64, ">i4", bool):
        lower = np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0]], dtype=dtype)
        with pytest.raises(ValueError, match="upper triangular"):
            ModelSpec(lower, [I, C3, O])
    big = np.array([[0, 256, 0], [0, 0, 1], [0, 0, 0]], dtype=np.int64)  # low byte 0: an edge all the same
    spec = ModelSpec(big, [I, C3, O])
    assert spec.valid_spec and spec.matrix.shape == (3, 3) and spec.matrix[0, 1] == 256
    negative = np.array([[0, -1, 0], [0, 0, 1], [0, 0, 0]], dtype=np.int8)
    assert ModelSpec(negative, [I, C3, O]).valid_spec


def test_large_matrices_prune_like_small_ones() -> None:
    size = 20
    matrix = np.eye(size, k=1, dtype=np.int8)
    matrix[3, 4] = 0
    matrix[3, size - 1] = 1
    spec = ModelSpec(matrix, list(range(size)))
    assert spec.ops == [0, 1, 2, 3, size - 1]


def _extraneous(rows: list[list[int]]) -> tuple[int, ...]:
    """Vertices not on an input→output path (a plain statement of the rule; all of them below two vertices)."""
    size = len(rows)
    if size < 2:
        return tuple(range(size))
    reach = {0}
    for src in range(size):
        if src in reach:
            reach.update(dst for dst in range(src + 1, size) if rows[src][dst])
    coreach = {size - 1}
    for dst in range(size - 1, -1, -1):
        if dst in coreach:
            coreach.update(src for src in range(dst) if rows[src][dst])
    return tuple(v for v in range(size) if v not in reach & coreach)


def test_both_analyses_agree_with_the_rule_up_to_sixteen_vertices() -> None:
    """The integer-operation analysis (``_analyze_lanes``, used from 8 to 16 vertices) and the entry-by-entry
    one, on 2,000 seeded random matrices of 1 to 16 vertices at densities from empty to full (the full ones
    take the row- and column-sum shortcut), and each refuses an entry below the diagonal."""
    from nasbench._cells import codes
    from nasbench.lib import model_spec

    rng = np.random.default_rng(20261201)
    for size in range(1, 17):
        upper = np.triu_indices(size, 1)
        for density in (0.0, 0.1, 0.25, 0.5, 0.8, 0.95, 1.0):
            for _ in range(18):
                matrix = np.zeros((size, size), dtype=np.int8)
                matrix[upper] = rng.random(len(upper[0])) < density
                rows = matrix.tolist()
                expected = _extraneous(rows)
                lanes = codes.lanes01(matrix)
                assert model_spec._analyze_lanes(lanes, size) == expected, rows
                assert model_spec._analyze_rows(rows) == expected, rows
                if size >= 2:
                    src = int(rng.integers(size))
                    dst = int(rng.integers(src + 1))
                    below = matrix.copy()
                    below[src, dst] = 1
                    assert model_spec._analyze_lanes(codes.lanes01(below), size) is None
                    assert model_spec._analyze_rows(below.tolist()) is None
                if size >= 8:  # beyond the space's sizes: the public path is the integer one
                    spec = ModelSpec(matrix, list(range(size)))
                    kept = [v for v in range(size) if v not in expected]
                    assert spec.valid_spec == (len(kept) >= 2)
                    if spec.valid_spec:
                        assert spec.ops == kept
                        np.testing.assert_array_equal(spec.matrix, matrix[np.ix_(kept, kept)])


def test_one_missing_edge_defeats_the_shortcut() -> None:
    """Full DAGs of 8 to 16 vertices need no pruning; without every edge into vertex v (or out of it) v goes."""
    from nasbench._cells import codes
    from nasbench.lib import model_spec

    for size in range(8, 17):
        full = np.triu(np.ones((size, size), dtype=np.int8), 1)
        assert model_spec._analyze_lanes(codes.lanes01(full), size) == ()
        for v in range(1, size - 1):
            no_in = full.copy()
            no_in[:, v] = 0
            no_out = full.copy()
            no_out[v, :] = 0
            assert model_spec._analyze_lanes(codes.lanes01(no_in), size) == (v,)
            assert model_spec._analyze_lanes(codes.lanes01(no_out), size) == (v,)
        only_input = full.copy()
        only_input[:, size - 1] = 0
        assert model_spec._analyze_lanes(codes.lanes01(only_input), size) == tuple(range(size))


def test_visualize_draws_the_pruned_cell() -> None:
    """The original's graphviz drawing: one node per vertex of the pruned cell, labelled input / op / output, an
    edge per 1 above the diagonal; an invalid spec cannot be drawn."""
    spec = ModelSpec(np.array([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]]), [I, C3, MP, O])
    dot = spec.visualize()
    body = sorted(line.strip().replace('"', "") for line in dot.body)  # graphviz quotes labels with dashes
    assert body == sorted(["0 [label=input]", f"1 [label={C3}]", "2 [label=output]", "0 -> 1", "1 -> 2"])
    full = ModelSpec(np.triu(np.ones((4, 4), dtype=int), 1), [I, C1, MP, O]).visualize()
    assert sorted(line.strip().replace('"', "") for line in full.body) == sorted(
        ["0 [label=input]", f"1 [label={C1}]", f"2 [label={MP}]", "3 [label=output]"]
        + [f"{a} -> {b}" for a in range(4) for b in range(a + 1, 4)]
    )
    invalid = ModelSpec(np.zeros((3, 3), dtype=int), [I, C3, O])
    with pytest.raises(ValueError) as info:
        invalid.visualize()
    assert str(info.value) == "cannot visualize an invalid spec: the input is not connected to the output"


def test_visualize_names_its_missing_dependency(monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "graphviz", None)
    with pytest.raises(ImportError) as info:
        ModelSpec(np.array([[0, 1], [0, 0]]), [I, O]).visualize()
    assert str(info.value) == "ModelSpec.visualize() needs graphviz: pip install graphviz"


def test_reprs_of_valid_and_invalid_specs() -> None:
    assert repr(ModelSpec(np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]]), [I, C3, O])) == (
        f"ModelSpec(matrix=[[0, 1, 0], [0, 0, 1], [0, 0, 0]], ops=['input', '{C3}', 'output'])"
    )
    assert repr(ModelSpec(np.zeros((3, 3), dtype=int), [I, C3, O])) == (
        f"ModelSpec(invalid, original_ops=['input', '{C3}', 'output'])"
    )


class _Edge:
    """A mutable, truthy matrix entry (object matrices keep Python objects)."""

    def __init__(self, weight: int) -> None:
        self.weight = weight

    def __bool__(self) -> bool:
        return self.weight != 0

    def __eq__(self, other: object) -> bool:
        return bool(self) == bool(other)

    __hash__ = None  # type: ignore[assignment]


def test_deep_copies_of_objects_in_matrix_and_ops() -> None:
    """As the original (``copy.deepcopy``): objects inside an object matrix and mutable items of the ops are
    copied, so changing the caller's objects afterwards changes neither the original nor the pruned spec."""
    edge = _Edge(1)
    matrix = np.array([[0, edge, 0, 0], [0, 0, _Edge(1), 0], [0, 0, 0, 0], [0, 0, 0, 0]], dtype=object)
    matrix[2, 3] = _Edge(1)
    label = [C3]  # an unhashable op: kept as given, copied deeply
    ops = [I, label, MP, O]
    spec = ModelSpec(matrix, ops)
    assert spec.valid_spec and spec.ops == [I, [C3], MP, O]
    assert spec.original_matrix[0, 1] is not edge and spec.matrix[0, 1] is not edge
    assert spec.original_ops[1] is not label and spec.ops[1] is not label
    edge.weight = 0
    label.append(C1)
    assert bool(spec.original_matrix[0, 1]) and bool(spec.matrix[0, 1])
    assert spec.original_ops[1] == [C3] == spec.ops[1]
    tuple_ops = (I, [C3], MP, O)
    spec = ModelSpec(np.array([[0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]]), tuple_ops)
    assert spec.ops == [I, [C3], O] and spec.ops[1] is not tuple_ops[1] and spec.original_ops == tuple_ops


def test_type_error_messages_in_full() -> None:
    with pytest.raises(TypeError) as info:
        ModelSpec([[0, 1], [0, 0]], 5)  # type: ignore[arg-type]
    assert str(info.value) == "ops must be a list of operation names, got int"
    with pytest.raises(TypeError) as info:
        ModelSpec([[0, 0], [0, 0]], [I, O]).hash_spec(AVAILABLE)
    assert str(info.value) == "cannot hash an invalid spec: the input is not connected to the output"
