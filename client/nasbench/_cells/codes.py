"""Cell codes: one integer per labelled cell, and the search that makes a code canonical. Pure: no tables, no I/O.

A cell of V vertices (2..7) is coded as one integer, its *code*::

    code = V << 31 | bits << 10 | labels

``bits`` is the strict upper triangle in the bit order of the original enumeration (bit ``x + y*(y-1)//2`` is
the edge x→y, as ``graph_util.gen_is_edge_fn``), and ``labels`` packs the interior ops in base 4 (0 =
conv3x3-bn-relu, 1 = conv1x1-bn-relu, 2 = maxpool3x3), vertex 1 most significant. Codes sort exactly as the
original enumeration (google-research/nasbench, ``nasbench/scripts/generate_graphs.py``) visits labelled graphs:
V, then bits, then labelling in ``itertools.product`` order.

The *canonical key* of a cell is the smallest code over every relabelling of its interior vertices that keeps the
matrix upper triangular. Isomorphic cells share that set of relabellings, so they share the key; the key decodes
back to the cell, so different cells have different keys. And because the minimum in enumeration order is the
first labelled graph the original enumeration met, the key decodes to the very representative the dataset stores.

``solve`` computes a key by that definition (a search over up to 120 interior orders per structure, memoized);
the key table (``nasbench._cells.keytable``) holds the key of every labelled graph of the space, computed once
from the same definition, vectorized. Canonical keys fit in 64 bits, so numpy ``uint64`` arrays hold them.
"""

from __future__ import annotations

import functools
import itertools
import operator
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nasbench.errors import InvalidSpecError
from nasbench.lib import config

MIN_VERTICES = 2
MAX_VERTICES = config.MODULE_VERTICES
BITS_SHIFT = 10
VERTICES_SHIFT = 31
_BITS_MASK = (1 << (VERTICES_SHIFT - BITS_SHIFT)) - 1
_LABELS_MASK = (1 << BITS_SHIFT) - 1

INPUT = config.INPUT
OUTPUT = config.OUTPUT
OP_LABELS: dict[str, int] = {op: label for label, op in enumerate(config.AVAILABLE_OPS)}

# Structures outside the key table solved once and kept; the bound keeps hostile inputs in check.
_STRUCTURE_CACHE_SIZE = 4096


def edge_bit(src: int, dst: int) -> int:
    """Bit index of the edge src→dst (src < dst) in the upper-triangle code."""
    return src + dst * (dst - 1) // 2


def pack(num_vertices: int, bits: int, labels: Sequence[int]) -> int:
    """The code of a labelled upper-triangular graph (labels: the interior labels, vertex 1 first)."""
    code = 0
    for label in labels:
        code = code << 2 | label
    return num_vertices << VERTICES_SHIFT | bits << BITS_SHIFT | code


def unpack(code: int) -> tuple[int, int, tuple[int, ...]]:
    """``(num_vertices, bits, interior labels)`` of a code.

    Raises:
      InvalidSpecError: the code does not have 2 to 7 vertices (any 64-bit number could be handed in).
    """
    num_vertices = code >> VERTICES_SHIFT
    if not MIN_VERTICES <= num_vertices <= MAX_VERTICES:
        raise InvalidSpecError(f"not a cell code: {code} (a cell has {MIN_VERTICES} to {MAX_VERTICES} vertices)")
    label_code = code & _LABELS_MASK
    labels = tuple((label_code >> (2 * (num_vertices - 3 - i))) & 3 for i in range(num_vertices - 2))
    return num_vertices, (code >> BITS_SHIFT) & _BITS_MASK, labels


def vertices_and_edges(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertex and edge counts (int64 each) of many codes at once."""
    codes = np.asarray(codes, dtype=np.uint64)
    bits = (codes >> np.uint64(BITS_SHIFT)) & np.uint64(_BITS_MASK)
    return (codes >> np.uint64(VERTICES_SHIFT)).astype(np.int64), np.bitwise_count(bits).astype(np.int64)


def label_slots(codes: np.ndarray) -> np.ndarray:
    """Interior labels of many codes at once: int64[n, 5], last interior vertex first, -1 past the interior."""
    codes = np.asarray(codes, dtype=np.uint64)
    interior = (codes >> np.uint64(VERTICES_SHIFT)).astype(np.int64) - 2
    slots = np.arange(MAX_VERTICES - 2)
    labels = ((codes[:, None] >> np.uint64(2) * slots.astype(np.uint64)) & np.uint64(3)).astype(np.int64)
    return np.where(slots[None, :] < interior[:, None], labels, -1)


def edges_of(num_vertices: int, bits: int) -> list[tuple[int, int]]:
    """The edges (src, dst) set in an upper-triangle code."""
    return [(src, dst) for dst in range(1, num_vertices) for src in range(dst) if bits >> edge_bit(src, dst) & 1]


def structures(num_vertices: int, max_edges: int = config.MAX_EDGES) -> np.ndarray:
    """Upper-triangle codes (uint32), ascending, of the full DAGs with ``num_vertices`` vertices and at most
    ``max_edges`` edges: every vertex but the output has an outgoing edge, every vertex but the input an incoming
    one (what the original generator keeps)."""
    num_bits = num_vertices * (num_vertices - 1) // 2
    bits = np.arange(1 << num_bits, dtype=np.uint32)
    keep = np.bitwise_count(bits) <= max_edges
    for vertex in range(num_vertices):
        out_mask = sum(1 << edge_bit(vertex, dst) for dst in range(vertex + 1, num_vertices))
        in_mask = sum(1 << edge_bit(src, vertex) for src in range(vertex))
        if vertex < num_vertices - 1:
            keep &= (bits & np.uint32(out_mask)) != 0
        if vertex > 0:
            keep &= (bits & np.uint32(in_mask)) != 0
    kept: np.ndarray = bits[keep]
    return kept


@functools.lru_cache(maxsize=_STRUCTURE_CACHE_SIZE)
def canonical_structure(num_vertices: int, bits: int) -> tuple[int, tuple[tuple[int, ...], ...]]:
    """Smallest upper-triangle code over interior relabellings, and every relabelling that reaches it.

    A relabelling ``p`` puts old vertex ``p[i]`` at new position ``i`` (``p[0] = 0``, ``p[-1] = V - 1``);
    only those keeping every edge pointing forward count. Returned relabellings list interior positions
    (0-based), ready to permute an interior label tuple.
    """
    edges = edges_of(num_vertices, bits)
    best = None
    winners: list[tuple[int, ...]] = []
    interior = range(1, num_vertices - 1)
    for order in itertools.permutations(interior):
        position = [0] * num_vertices
        for new, old in enumerate(order, start=1):
            position[old] = new
        position[num_vertices - 1] = num_vertices - 1
        new_bits = 0
        for src, dst in edges:
            a, b = position[src], position[dst]
            if a >= b:
                break
            new_bits |= 1 << edge_bit(a, b)
        else:
            if best is None or new_bits < best:
                best, winners = new_bits, [order]
            elif new_bits == best:
                winners.append(order)
    if best is None:  # unreachable for an upper-triangular input: the identity always qualifies
        raise InvalidSpecError("matrix must be upper triangular")
    return best, tuple(tuple(old - 1 for old in order) for order in winners)


def solve(code: int) -> int:
    """The canonical key of a code, computed: the minimal relabellings of its structure, then its labels."""
    num_vertices, bits, labels = unpack(code)
    best_bits, orders = canonical_structure(num_vertices, bits)
    best_labels = min(tuple(labels[old] for old in order) for order in orders)
    return pack(num_vertices, best_bits, best_labels)


# dtype -> (item size, offset of the low byte in an item), for the bool and integer dtypes of both byte orders
LANE_LAYOUTS: dict[np.dtype, tuple[int, int]] = {np.dtype(bool): (1, 0)}
for _kind, _size, _order in itertools.product("iu", (1, 2, 4, 8), "<>"):
    LANE_LAYOUTS[np.dtype(f"{_order}{_kind}{_size}")] = (_size, _size - 1 if _order == ">" else 0)
_ZERO_ONE = b"\x00\x01"


def lanes01(matrix: np.ndarray) -> bytes | None:
    """The entries of a bool or integer array, one byte each in C order, when every entry is 0 or 1; else None.

    The cheap common currency of the hot paths: it is a dictionary key, and ``int.from_bytes`` of it is a bit
    set (bit ``8 * i`` for entry ``i``). Float arrays give None even with 0.0/1.0 entries (see ``matrix_bits``).
    """
    layout = LANE_LAYOUTS.get(matrix.dtype)
    if layout is None:
        return None
    raw = matrix.tobytes()
    size, low = layout
    if size == 1:
        return None if raw.translate(None, _ZERO_ONE) else raw
    lanes = raw[low::size]
    if lanes.translate(None, _ZERO_ONE) or raw.count(0) != len(raw) - lanes.count(1):
        return None  # an entry other than 0/1 in the low bytes, or a non-zero high byte
    return lanes


@functools.cache
def lower_lanes(num_vertices: int) -> int:
    """The bits of ``int.from_bytes(lanes, 'little')`` that lie on or below the diagonal."""
    return sum(1 << 8 * (src * num_vertices + dst) for src in range(num_vertices) for dst in range(src + 1))


_ASCII01 = bytes.maketrans(b"\x00\x01", b"01")


@functools.cache
def _upper_entries(num_vertices: int) -> Callable[[bytes], tuple[int, ...]]:
    """Picks the upper-triangle entries of ``lanes01`` bytes, most significant bit of the code first."""
    entries = [src * num_vertices + dst for dst in range(1, num_vertices) for src in range(dst)]
    return operator.itemgetter(*reversed(entries))


def lanes_bits(lanes: bytes, num_vertices: int) -> int:
    """The upper-triangle bits (the code's bit order) of ``lanes01`` bytes of a square matrix (entries below the
    diagonal are not looked at)."""
    if num_vertices < 3:  # one entry or none: itemgetter would not return a tuple
        return lanes[1] if num_vertices == 2 else 0
    return int(bytes(_upper_entries(num_vertices)(lanes)).translate(_ASCII01), 2)


def matrix_bits(matrix: Any) -> int | None:
    """Upper-triangle code of an integer or bool matrix of 0/1 entries; None for anything else.

    Float matrices give None even when their entries are 0.0/1.0: their original hash differs (the original
    formats the degrees of a float matrix as ``4.0``: https://github.com/google-research/nasbench/issues/32), so
    they never name a cell of the dataset.
    """
    if not isinstance(matrix, np.ndarray):
        return matrix_bits(np.asarray(matrix))
    shape, dtype = matrix.shape, matrix.dtype
    if len(shape) != 2 or shape[0] != shape[1] or dtype.kind not in "biu" or shape[0] > MAX_VERTICES:
        return None
    lanes = lanes01(matrix)  # None: an entry other than 0/1 (every bool and integer dtype has a lane layout)
    if lanes is None or int.from_bytes(lanes, "little") & lower_lanes(shape[0]):
        return None
    return lanes_bits(lanes, shape[0])


def interior_labels(ops: Sequence[Any]) -> tuple[int, ...] | None:
    """Labels of the interior ops when the ops are input, known ops..., output; None otherwise."""
    if len(ops) < MIN_VERTICES or ops[0] != INPUT or ops[-1] != OUTPUT:
        return None
    try:
        return tuple(OP_LABELS[op] for op in ops[1:-1])
    except (KeyError, TypeError):
        return None


def cell_code(matrix: Any, ops: Sequence[Any]) -> int:
    """The code of a pruned cell given as a matrix and op names (not canonicalized).

    Raises:
      InvalidSpecError: the cell has fewer than 2 or more than 7 vertices, entries other than 0/1, a
        non-upper-triangular matrix, or ops that are not input, known ops..., output.
    """
    num_vertices = len(ops)
    if not MIN_VERTICES <= num_vertices <= MAX_VERTICES:
        raise InvalidSpecError(
            f"canonical keys exist for cells of {MIN_VERTICES} to {MAX_VERTICES} vertices, got {num_vertices}"
        )
    bits = matrix_bits(matrix)
    if bits is None or np.shape(matrix) != (num_vertices, num_vertices):
        raise InvalidSpecError(
            f"matrix must be a {num_vertices}x{num_vertices} upper-triangular integer matrix of 0/1 entries"
        )
    labels = interior_labels(ops)
    if labels is None:
        raise InvalidSpecError(
            f"ops must be 'input', then ops from {list(config.AVAILABLE_OPS)}, then 'output'; got {list(ops)}"
        )
    return pack(num_vertices, bits, labels)


def decode(code: int) -> tuple[np.ndarray, list[str]]:
    """The int8 adjacency matrix and op names (input and output included) of a code or key."""
    num_vertices, bits, labels = unpack(code)
    matrix = np.zeros((num_vertices, num_vertices), dtype=np.int8)
    for src, dst in edges_of(num_vertices, bits):
        matrix[src, dst] = 1
    ops = [INPUT, *(config.AVAILABLE_OPS[label] for label in labels), OUTPUT]
    return matrix, ops


def adjacency_string(code: int) -> str:
    """Row-major 0/1 string of a code's matrix, as the dataset records store it."""
    num_vertices, bits, _ = unpack(code)
    return "".join(
        "1" if src < dst and bits >> edge_bit(src, dst) & 1 else "0"
        for src in range(num_vertices)
        for dst in range(num_vertices)
    )


def ops_string(code: int) -> str:
    """Comma-joined op names of a code (input and output included), as the dataset records store them."""
    _, _, labels = unpack(code)
    return ",".join([INPUT, *(config.AVAILABLE_OPS[label] for label in labels), OUTPUT])
