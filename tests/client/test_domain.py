"""``nasbench._cells.domain.check_spec`` beyond the key table: a configuration with fewer allowed edges than the space,
and specs whose matrix or ops were changed by hand after construction (the original checks ``spec.matrix`` and
``spec.ops`` as they are, unpruned). The key is checked against its definition, computed here by brute force:
the smallest packed code over the interior relabellings that keep the matrix upper triangular."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nasbench import canonical
from nasbench._cells import domain
from nasbench.errors import OutOfDomainError
from nasbench.lib import config
from nasbench.lib.model_spec import ModelSpec

I, O = config.INPUT, config.OUTPUT
C3, C1, MP = config.CONV3X3, config.CONV1X1, config.MAXPOOL3X3


def _key_by_definition(matrix: np.ndarray, ops: list[str]) -> int:
    size = len(matrix)
    best = None
    for interior in itertools.permutations(range(1, size - 1)):
        order = [0, *interior, size - 1]
        permuted = np.asarray(matrix)[np.ix_(order, order)]
        if np.tril(permuted).any():
            continue
        bits = sum(1 << canonical.edge_bit(src, dst) for src, dst in zip(*np.nonzero(permuted), strict=True))
        labels = tuple(config.AVAILABLE_OPS.index(ops[v]) for v in order[1:-1])
        code = canonical.pack(size, bits, labels)
        best = code if best is None else min(best, code)
    assert best is not None
    return best


def _by_hand(matrix: list[list[int]], ops: list[str]) -> ModelSpec:
    """A spec whose matrix and ops were replaced after construction (so never pruned)."""
    spec = ModelSpec(np.array([[0, 1], [0, 0]]), [I, O])
    spec.matrix = np.array(matrix)
    spec.ops = list(ops)
    return spec


FIVE = [[0, 1, 1, 0, 0], [0, 0, 1, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]  # 6 edges


@pytest.mark.parametrize("dtype", [np.int64, np.int8, bool, ">i4", np.uint16])
def test_fewer_allowed_edges_than_the_space(dtype) -> None:
    """A configuration allowing 6 edges: a cell of 6 passes (named by its key), one of 7 is out of the domain."""
    cfg = config.build_config()
    cfg["max_edges"] = 6
    ops = [I, C3, MP, C1, O]
    matrix = np.array(FIVE, dtype=dtype)
    assert domain.check_spec(ModelSpec(matrix, ops), cfg) == _key_by_definition(matrix, ops)
    seven = matrix.copy()
    seven[0, 3] = 1
    with pytest.raises(OutOfDomainError) as info:
        domain.check_spec(ModelSpec(seven, ops), cfg)
    assert str(info.value) == "too many edges, got 7 (max edges = 6)"
    assert domain.check_spec(ModelSpec(seven, ops), config.build_config()) == _key_by_definition(seven, ops)


def test_a_matrix_changed_by_hand_is_keyed_as_it_is() -> None:
    """Vertex 3 has no way to the output: a constructed spec would prune it; replaced by hand, the unpruned
    graph is named by its own key, which names no cell of the space."""
    matrix = [[0, 1, 1, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]]
    ops = [I, C1, C3, MP, O]
    key = domain.check_spec(_by_hand(matrix, ops), config.build_config())
    assert key == _key_by_definition(np.array(matrix), ops)
    pruned = ModelSpec(np.array(matrix), ops)
    assert domain.check_spec(pruned, config.build_config()) != key


def test_specs_changed_by_hand_that_no_key_can_name() -> None:
    cfg = config.build_config()
    lower = [[0, 1, 0], [0, 0, 1], [1, 0, 0]]  # an edge back to the input: checked as the original, hash-named
    assert domain.check_spec(_by_hand(lower, [I, C3, O]), cfg) is None
    with pytest.raises(OutOfDomainError) as info:
        domain.check_spec(_by_hand([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [I, "conv5x5", O]), cfg)
    assert str(info.value) == f"unsupported op conv5x5 (available ops = {list(config.AVAILABLE_OPS)})"
    with pytest.raises(OutOfDomainError) as info:
        domain.check_spec(_by_hand([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [C3, C3, O]), cfg)
    assert str(info.value) == "first operation should be 'input'"
    with pytest.raises(OutOfDomainError) as info:
        domain.check_spec(_by_hand([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [I, C3, C3]), cfg)
    assert str(info.value) == "last operation should be 'output'"
    uneven = _by_hand([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [I, C3, C1, O])  # four ops for three vertices
    assert domain.check_spec(uneven, cfg) is None


def test_too_many_vertices_message_in_full() -> None:
    matrix = np.eye(8, k=1, dtype=int)
    with pytest.raises(OutOfDomainError) as info:
        domain.check_spec(ModelSpec(matrix, [I] + [C3] * 6 + [O]), config.build_config())
    assert str(info.value) == "too many vertices, got 8 (max vertices = 7)"
    assert isinstance(info.value, TypeError)
