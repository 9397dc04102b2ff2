"""The cell specification of the original ``nasbench.lib.model_spec``, with its validation and pruning.

A spec is an upper-triangular adjacency matrix plus one op per vertex (the first is ``'input'``, the last
``'output'``). Construction prunes every vertex that is not on an input→output path; ``matrix``/``ops`` are the
pruned cell, ``original_matrix``/``original_ops`` what the caller passed (google-research/nasbench,
``nasbench/lib/model_spec.py``).

Usage::

    from nasbench.lib.model_spec import ModelSpec
    spec = ModelSpec(matrix=[[0, 1, 1], [0, 0, 1], [0, 0, 0]],
                     ops=['input', 'conv3x3-bn-relu', 'output'])
    spec.valid_spec, spec.matrix.shape   # (True, (3, 3))

Behaviour beyond the original (documented in docs/compatibility.md): ragged matrices, non-numeric
entries and non-sequence ops raise a clear ``ValueError``/``TypeError`` naming the problem, where the original
failed inside numpy with an unrelated message; tuple ops that need pruning are pruned instead of crashing.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from nasbench._cells import codes, keytable
from nasbench.errors import InvalidSpecError
from nasbench.lib import graph_util

# dtype kinds whose entries compare to 0 like numbers: bool, signed, unsigned, float, complex, object.
_NUMERIC_KINDS = frozenset("biufcO")
# dtype kinds whose deep copy equals a plain copy (no Python objects inside).
_PLAIN_KINDS = frozenset("biufc")
_STR_ONLY = frozenset((str,))
# Matrices up to this size of 0/1 bool or integer entries are analysed as one integer (bit 8*i = entry i).
_LANES_MAX_VERTICES = 16


def _as_matrix(matrix: Any) -> np.ndarray:
    """``np.array(matrix)``, with a clear error where numpy would fail on a ragged or odd input."""
    try:
        return np.array(matrix)
    except (ValueError, TypeError) as exc:
        raise InvalidSpecError(f"matrix must be square: could not read it as a 2-D array of numbers ({exc})") from None


def _plain_ops(ops: Any) -> bool:
    """True for a list of strings, whose deep copy is a plain slice (the ops of a cell of the space: one lookup)."""
    if type(ops) is not list:
        return False
    try:
        if tuple(ops) in keytable.LABELLINGS:
            return True
    except TypeError:  # unhashable items
        return False
    return set(map(type, ops)) <= _STR_ONLY


def _copy_matrix(matrix: np.ndarray) -> np.ndarray:
    """A copy equal to ``copy.deepcopy(matrix)``, cheap for plain numeric arrays."""
    if matrix.dtype.kind in _PLAIN_KINDS:
        copied: np.ndarray = matrix.copy(order="K")
        return copied
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


def _analyze_lanes(lanes: bytes, num_vertices: int) -> tuple[int, ...] | None:
    """``_analyze_rows`` of a 0/1 matrix given as ``codes.lanes01`` bytes: the same answer with a few
    integer operations instead of a Python loop per entry (entry ``i`` is bit ``8 * i`` of ``flat``)."""
    flat = int.from_bytes(lanes, "little")
    if flat & codes.lower_lanes(num_vertices):
        return None
    if num_vertices < 2:
        return tuple(range(num_vertices))
    masks = _lane_masks(num_vertices)
    # Row sums land in the last byte of each row's bytes, column sums in the last row's bytes (every sum is at
    # most 16, so no byte carries into the next). Every vertex but the output has an out-edge and every vertex
    # but the input an in-edge: nothing to prune, the common case of cells an optimizer builds.
    row_sums = (flat * masks.lanes) & masks.row_sum_bytes
    column_sums = (flat * masks.column) >> masks.last_row
    if (row_sums + masks.row_sum_bias) & masks.row_sum_high == masks.row_sum_high and (
        (column_sums & masks.row) + masks.column_bias
    ) & masks.column_high == masks.column_high:
        return ()
    row_bits = 8 * num_vertices
    from_input = 1  # bit 8*v: v is reachable from the input (rows in order: every edge points forward)
    for v in range(num_vertices - 1):
        if from_input >> (8 * v) & 1:
            from_input |= (flat >> (row_bits * v)) & masks.row
    to_output = 1 << (row_bits - 8)  # bit 8*v: the output is reachable from v
    for v in range(num_vertices - 2, -1, -1):
        if (flat >> (row_bits * v)) & to_output:
            to_output |= 1 << (8 * v)
    on_path = from_input & to_output
    return tuple(v for v in range(num_vertices) if not on_path >> (8 * v) & 1)


class _LaneMasks(NamedTuple):
    row: int  # the bytes of one row
    lanes: int  # 0x01 in each byte of one row: multiplying by it adds each row up into its last byte
    column: int  # the first byte of every row: multiplying by it adds the rows up into the last row
    last_row: int  # shift that brings the last row's bytes down
    row_sum_bytes: int  # the last byte of every row but the output's (where ``flat * row`` puts the row sums)
    row_sum_bias: int  # 0x7f in those bytes: a non-zero sum sets the byte's high bit
    row_sum_high: int  # 0x80 in those bytes
    column_bias: int  # 0x7f in the bytes of every column but the input's
    column_high: int  # 0x80 in those bytes


@functools.cache
def _lane_masks(num_vertices: int) -> _LaneMasks:
    row_bits = 8 * num_vertices
    last = 8 * (num_vertices - 1)
    sums = [row_bits * v + last for v in range(num_vertices - 1)]
    columns = [8 * v for v in range(1, num_vertices)]
    return _LaneMasks(
        row=(1 << row_bits) - 1,
        lanes=sum(1 << (8 * d) for d in range(num_vertices)),
        column=sum(1 << (row_bits * v) for v in range(num_vertices)),
        last_row=row_bits * (num_vertices - 1),
        row_sum_bytes=sum(0xFF << bit for bit in sums),
        row_sum_bias=sum(0x7F << bit for bit in sums),
        row_sum_high=sum(0x80 << bit for bit in sums),
        column_bias=sum(0x7F << bit for bit in columns),
        column_high=sum(0x80 << bit for bit in columns),
    )


def _analyze(matrix: np.ndarray) -> tuple[int, ...] | None:
    """The extraneous vertices of a square matrix, or None when it is not upper triangular."""
    num_vertices = matrix.shape[0]
    if num_vertices <= _LANES_MAX_VERTICES:
        if matrix.dtype.itemsize == 1 and matrix.tobytes() in keytable.table().by_matrix:
            return ()  # a full DAG of the space (what optimizers mostly build): upper triangular, nothing to prune
        lanes = codes.lanes01(matrix)
        if lanes is not None:
            if codes.MIN_VERTICES <= num_vertices <= codes.MAX_VERTICES:  # the space's sizes: one read
                return keytable.table().extraneous_of_lanes(lanes, num_vertices)
            return _analyze_lanes(lanes, num_vertices)
    return _analyze_rows(matrix.tolist())


@functools.lru_cache(maxsize=1024)
def _kept_entries(num_vertices: int, extraneous: tuple[int, ...]) -> np.ndarray:
    """Flat (C order) indexes of the entries of the vertices that stay after pruning."""
    kept = [v for v in range(num_vertices) if v not in extraneous]
    entries = np.array([src * num_vertices + dst for src in kept for dst in kept], dtype=np.intp)
    entries.flags.writeable = False
    return entries


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
        self.matrix: np.ndarray | None = None
        if _plain_ops(ops):
            self.original_ops = ops[:]
            self.ops: Sequence[Any] | None = ops[:]
        else:
            self.original_ops = copy.deepcopy(ops)
            self.ops = copy.deepcopy(ops)
        self.valid_spec = True
        self._prune(matrix, extraneous)
        self.data_format = data_format

    def _prune(self, matrix: np.ndarray, extraneous: tuple[int, ...]) -> None:
        """Drop every vertex that is not on an input→output path; no path at all makes the spec invalid."""
        num_vertices = matrix.shape[0]
        if len(extraneous) > num_vertices - 2:
            self.matrix = None
            self.ops = None
            self.valid_spec = False
            return
        if not extraneous:
            self.matrix = _copy_matrix(matrix)
            return
        if type(matrix) is np.ndarray and matrix.dtype.kind in _PLAIN_KINDS:
            size = num_vertices - len(extraneous)
            self.matrix = matrix.ravel()[_kept_entries(num_vertices, extraneous)].reshape(size, size)
        else:
            drop = list(extraneous)
            pruned = np.delete(_copy_matrix(matrix), drop, axis=0)
            self.matrix = np.delete(pruned, drop, axis=1)
        ops = self.ops  # set by __init__ before pruning, never None here
        if isinstance(ops, list):
            for index in reversed(extraneous):
                del ops[index]
        elif ops is not None:
            dropped = set(extraneous)
            self.ops = [op for index, op in enumerate(ops) if index not in dropped]

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
