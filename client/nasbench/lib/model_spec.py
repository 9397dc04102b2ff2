"""The cell specification of the original ``nasbench.lib.model_spec``, with its validation and pruning.

A spec is an upper-triangular adjacency matrix plus one op per vertex (the first is ``'input'``, the last
``'output'``). Construction prunes every vertex that is not on an input→output path; ``matrix``/``ops`` are the
pruned cell, ``original_matrix``/``original_ops`` what the caller passed (reference §2).

Usage::

    from nasbench.lib.model_spec import ModelSpec
    spec = ModelSpec(matrix=[[0, 1, 1], [0, 0, 1], [0, 0, 0]],
                     ops=['input', 'conv3x3-bn-relu', 'output'])
    spec.valid_spec, spec.matrix.shape   # (True, (3, 3))

Behaviour beyond the original (documented in the README's compatibility notes): ragged matrices, non-numeric
entries and non-sequence ops raise a clear ``ValueError``/``TypeError`` naming the problem, where the original
failed inside numpy with an unrelated message; tuple ops that need pruning are pruned instead of crashing.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np

from nasbench._memo import Memo
from nasbench.errors import InvalidSpecError
from nasbench.lib import graph_util

# dtype kinds whose entries compare to 0 like numbers: bool, signed, unsigned, float, complex, object.
_NUMERIC_KINDS = frozenset("biufcO")
# dtype kinds whose deep copy equals a plain copy (no Python objects inside).
_PLAIN_KINDS = frozenset("biufc")
_STR_ONLY = frozenset((str,))
# Small plain matrices are analysed once per distinct content (bytes) and the answer is memoized.
_ANALYSIS_CACHE_SIZE = 16384
_ANALYSIS_CACHE_MAX_VERTICES = 16


def _as_matrix(matrix: Any) -> np.ndarray:
    """``np.array(matrix)``, with a clear error where numpy would fail on a ragged or odd input."""
    try:
        return np.array(matrix)
    except (ValueError, TypeError) as exc:
        raise InvalidSpecError(f"matrix must be square: could not read it as a 2-D array of numbers ({exc})") from None


def _plain_ops(ops: Any) -> bool:
    """True for a list of strings, whose deep copy is a plain slice."""
    return type(ops) is list and set(map(type, ops)) <= _STR_ONLY


def _copy_matrix(matrix: np.ndarray) -> np.ndarray:
    """A copy equal to ``copy.deepcopy(matrix)``, cheap for plain numeric arrays."""
    if matrix.dtype.kind in _PLAIN_KINDS:
        return matrix.copy(order="K")
    return copy.deepcopy(matrix)


def _successor_masks(rows: list[list[Any]]) -> list[int]:
    """Per-vertex successor bitmasks; an entry is an edge when it is truthy, as in the original pruning."""
    masks = []
    for row in rows:
        mask, bit = 0, 1
        for entry in row:
            if entry:
                mask |= bit
            bit <<= 1
        masks.append(mask)
    return masks


def is_upper_triangular(matrix: np.ndarray) -> bool:
    """True iff every entry on or below the diagonal is 0 (``[[0]]`` is, ``[[1]]`` is not)."""
    return _lower_part_is_zero(np.asarray(matrix).tolist())


def _lower_part_is_zero(rows: list[list[Any]]) -> bool:
    return all(row[dst] == 0 for src, row in enumerate(rows) for dst in range(src + 1))


def _extraneous_vertices(masks: list[int]) -> tuple[int, ...]:
    """Vertices, ascending, that are not on some input→output path of an upper-triangular graph."""
    num_vertices = len(masks)
    if num_vertices < 2:
        return tuple(range(num_vertices))
    from_input = 1
    for v in range(num_vertices):
        if from_input >> v & 1:
            from_input |= masks[v]
    to_output = 1 << (num_vertices - 1)
    for v in range(num_vertices - 2, -1, -1):
        if masks[v] & to_output:
            to_output |= 1 << v
    on_path = from_input & to_output
    return tuple(v for v in range(num_vertices) if not on_path >> v & 1)


def _analyze_rows(rows: list[list[Any]]) -> tuple[int, ...] | None:
    """The extraneous vertices of a square matrix, or None when it is not upper triangular."""
    if not _lower_part_is_zero(rows):
        return None
    return _extraneous_vertices(_successor_masks(rows))


# keys: (dtype, bytes) of square matrices of at most 16x16 plain entries
_analysis = Memo(_ANALYSIS_CACHE_SIZE, 32 << 20, "matrix analysis")
_MISSING = object()


def _analyze(matrix: np.ndarray) -> tuple[int, ...] | None:
    """``_analyze_rows``, memoized on the dtype and bytes of small plain square matrices (specs repeat)."""
    dtype = matrix.dtype
    if dtype.kind not in _PLAIN_KINDS or matrix.shape[0] > _ANALYSIS_CACHE_MAX_VERTICES:
        return _analyze_rows(matrix.tolist())
    memo_key = (dtype, matrix.tobytes())
    extraneous = _analysis.get(memo_key, _MISSING)
    if extraneous is _MISSING:
        extraneous = _analysis.put(memo_key, _analyze_rows(matrix.tolist()))
    return extraneous


class ModelSpec:
    """A cell: adjacency matrix plus ops, validated and pruned on construction.

    Args:
      matrix: square upper-triangular adjacency matrix (ndarray or nested lists; the dtype is kept).
      ops: one label per vertex, ``'input'`` first and ``'output'`` last for a cell of the space.
      data_format: ``'channels_last'`` or ``'channels_first'``; stored for the original model builder.

    Raises:
      ValueError: ``matrix must be square``, ``length of ops must match matrix dimensions`` or
        ``matrix must be upper triangular`` (the original messages), or a clear message for inputs the
        original could not read at all (ragged rows, non-numeric entries).
      TypeError: ``ops`` is not a sequence.
    """

    def __init__(self, matrix: Any, ops: Sequence[Any], data_format: str = "channels_last") -> None:
        if not isinstance(matrix, np.ndarray):
            matrix = _as_matrix(matrix)
        shape = matrix.shape
        if len(shape) != 2 or shape[0] != shape[1]:
            raise InvalidSpecError("matrix must be square")
        try:
            num_ops = len(ops)
        except TypeError:
            raise TypeError(f"ops must be a list of operation names, got {type(ops).__name__}") from None
        if shape[0] != num_ops:
            raise InvalidSpecError("length of ops must match matrix dimensions")
        if matrix.dtype.kind not in _NUMERIC_KINDS:
            raise InvalidSpecError(f"matrix entries must be numbers (0 or 1), got dtype {matrix.dtype.str!r}")
        extraneous = _analyze(matrix)
        if extraneous is None:
            raise InvalidSpecError("matrix must be upper triangular")

        self.original_matrix = _copy_matrix(matrix)
        self.matrix: np.ndarray | None = _copy_matrix(matrix)
        if _plain_ops(ops):
            self.original_ops = ops[:]
            self.ops: list[Any] | None = ops[:]
        else:
            self.original_ops = copy.deepcopy(ops)
            self.ops = copy.deepcopy(ops)
        self.valid_spec = True
        self._prune(extraneous)
        self.data_format = data_format

    def _prune(self, extraneous: tuple[int, ...]) -> None:
        """Drop every vertex that is not on an input→output path; no path at all makes the spec invalid."""
        num_vertices = self.original_matrix.shape[0]
        if len(extraneous) > num_vertices - 2:
            self.matrix = None
            self.ops = None
            self.valid_spec = False
            return
        if extraneous:
            drop = list(extraneous)
            matrix = np.delete(self.matrix, drop, axis=0)
            self.matrix = np.delete(matrix, drop, axis=1)
            if isinstance(self.ops, list):
                for index in reversed(extraneous):
                    del self.ops[index]
            else:
                dropped = set(extraneous)
                self.ops = [op for index, op in enumerate(self.ops) if index not in dropped]

    def hash_spec(self, canonical_ops: Sequence[str]) -> str:
        """The original MD5 hash of the pruned cell, labelling each op by its index in ``canonical_ops``.

        Raises:
          TypeError: the spec is invalid (disconnected), as in the original.
          ValueError: an interior op is not in ``canonical_ops``.
        """
        if self.ops is None or self.matrix is None:
            raise TypeError("cannot hash an invalid spec: the input is not connected to the output")
        labeling = [-1] + [canonical_ops.index(op) for op in self.ops[1:-1]] + [-2]
        return graph_util.hash_module(self.matrix, labeling)

    def visualize(self) -> Any:
        """A ``graphviz.Digraph`` of the pruned cell (needs the optional ``graphviz`` package)."""
        try:
            import graphviz
        except ImportError:
            raise ImportError("ModelSpec.visualize() needs graphviz: pip install graphviz") from None
        if self.ops is None or self.matrix is None:
            raise ValueError("cannot visualize an invalid spec: the input is not connected to the output")
        num_vertices = self.matrix.shape[0]
        dot = graphviz.Digraph()
        dot.node("0", "input")
        for v in range(1, num_vertices - 1):
            dot.node(str(v), str(self.ops[v]))
        dot.node(str(num_vertices - 1), "output")
        for src in range(num_vertices - 1):
            for dst in range(src + 1, num_vertices):
                if self.matrix[src, dst]:
                    dot.edge(str(src), str(dst))
        return dot

    def __repr__(self) -> str:
        if not self.valid_spec:
            return f"ModelSpec(invalid, original_ops={self.original_ops!r})"
        return f"ModelSpec(matrix={np.asarray(self.matrix).tolist()!r}, ops={self.ops!r})"
