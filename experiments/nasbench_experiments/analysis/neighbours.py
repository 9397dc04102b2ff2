"""Edit-distance-1 moves for the whole space at once: the neighbour graph of the locality analysis and the op
swaps of the ops analysis, vectorized.

A move is what ``nasbench.domain.neighbor_keys`` does one cell at a time (about 100 µs each): flip one entry of
the upper triangle or change one interior op, prune the result as ``ModelSpec`` does (drop every vertex off an
input→output path; no path left means the move is invalid), keep it when it has at most 9 edges, and name it by
its canonical key. Here the same moves are computed for every cell with numpy:

- a *code table* (``CodeTable``) lists every labelled full DAG of the space: the 6,472 structures (V, edge
  bits) with every vertex on an input→output path and at most 9 edges, times every interior labelling
  (1,293,208 codes), with the canonical key of each. It is solved with numpy over all structures at once, one
  interior permutation at a time (the minimum code over the relabellings that keep the matrix upper
  triangular, as ``nasbench.canonical`` defines it), in well under a second. A code's place in the table is
  its structure's offset plus its labelling in base 3, so canonicalizing a move is two array lookups;
- an edge flip is solved once per structure and flip position (the pruned structure, where each interior
  vertex goes); a cell's labels then follow by arithmetic;
- an op swap keeps the structure, so only the labelling's base-3 digit changes.

This table is the analysis package's own (it serves whole-space passes; ``nasbench.canonical`` remains the
reference for single cells, and the tests check the table against it and every move against
``domain.neighbor_keys``).

Usage::

    graph = neighbor_graph(columns.keys)        # CSR over rows of the (ascending) keys
    graph.neighbors(row)                        # int32 rows one move away
    swaps = op_swaps(columns.keys)              # (cell, vertex, other op) -> the cell with that op
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nasbench import canonical, space
from nasbench.lib import config

_MAX_VERTICES = canonical.MAX_VERTICES
_OPS = len(config.AVAILABLE_OPS)
_STRUCTURE_SHIFT = 21  # V << 21 | bits names a structure
# Every (src, dst) position of a 7x7 upper triangle, in bit order.
_PAIRS = [(src, dst) for dst in range(1, _MAX_VERTICES) for src in range(dst)]
_CHUNK = 1 << 15


@dataclass(frozen=True)
class CodeTable:
    """Every labelled full DAG of the space in code order, with its canonical key."""

    structures: np.ndarray  # int64[structures]: V << 21 | bits, ascending
    offsets: np.ndarray  # int64[structures + 1]: index of each structure's first labelling
    keys: np.ndarray  # uint64[codes]: canonical key of each code (code order)

    def structure_index(self, vertices: np.ndarray, bits: np.ndarray) -> np.ndarray:
        """int64 index of each structure (V, bits); -1 when it is not a full DAG with at most 9 edges."""
        wanted = np.asarray(vertices, dtype=np.int64) << _STRUCTURE_SHIFT | np.asarray(bits, dtype=np.int64)
        positions = np.minimum(self.structures.searchsorted(wanted), len(self.structures) - 1)
        return np.where(self.structures[positions] == wanted, positions, -1)

    def codes(self) -> np.ndarray:
        """uint64[codes]: the code of every entry (ascending)."""
        sizes = np.diff(self.offsets)
        base = np.repeat(self.structures >> _STRUCTURE_SHIFT << canonical.VERTICES_SHIFT, sizes)
        base |= np.repeat(self.structures & ((1 << _STRUCTURE_SHIFT) - 1), sizes) << canonical.BITS_SHIFT
        labelling = np.arange(len(self.keys)) - np.repeat(self.offsets[:-1], sizes)
        codes: np.ndarray = (base | _base4_of_base3(labelling)).astype(np.uint64)
        return codes


def _base4_of_base3(index: np.ndarray) -> np.ndarray:
    """Label codes (base 4, vertex 1 most significant) of labelling indexes (base 3, same digit order)."""
    code = np.zeros(len(index), dtype=np.int64)
    for digit in range(_MAX_VERTICES - 2):  # digits past the interior are 0 since index < 3**interior
        code |= ((index // 3**digit) % 3) << (2 * digit)
    return code


def _labellings(num_interior: int) -> np.ndarray:
    """Every interior labelling in ``itertools.product`` order (= base-3 order): int64[3**n, n]."""
    rows = list(itertools.product(range(_OPS), repeat=num_interior))
    return np.array(rows, dtype=np.int64).reshape(len(rows), num_interior)


def _solve_vertices(num_vertices: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The structures of one vertex count, and for each structure and labelling the canonical key."""
    bits = space.structures(num_vertices).astype(np.int64)
    interior = num_vertices - 2
    pairs = [(src, dst) for src, dst in _PAIRS if dst < num_vertices]
    orders = list(itertools.permutations(range(1, num_vertices - 1)))
    best = np.full(len(bits), np.iinfo(np.int64).max)
    candidates = []
    for order in orders:
        position = list(range(num_vertices))
        for new, old in enumerate(order, start=1):
            position[old] = new
        forward = np.ones(len(bits), dtype=bool)
        new_bits = np.zeros(len(bits), dtype=np.int64)
        for src, dst in pairs:
            present = (bits >> canonical.edge_bit(src, dst)) & 1
            a, b = position[src], position[dst]
            if a < b:
                new_bits |= present << canonical.edge_bit(a, b)
            else:
                forward &= present == 0
        value = np.where(forward, new_bits, np.iinfo(np.int64).max)
        candidates.append(value)
        np.minimum(best, value, out=best)
    labellings = _labellings(interior)
    weights = 4 ** np.arange(interior - 1, -1, -1, dtype=np.int64)
    labels = np.full((len(bits), len(labellings)), np.iinfo(np.int64).max)
    for order, value in zip(orders, candidates, strict=True):
        winners = value == best
        if winners.any():
            permuted = labellings[:, [old - 1 for old in order]] @ weights  # new position i <- old vertex order[i]
            labels[winners] = np.minimum(labels[winners], permuted[None, :])
    keys = num_vertices << canonical.VERTICES_SHIFT | best[:, None] << canonical.BITS_SHIFT | labels
    return bits, keys.astype(np.uint64).ravel(), np.full(len(bits), len(labellings), dtype=np.int64)


@functools.lru_cache(maxsize=1)
def code_table() -> CodeTable:
    """The code table of the whole space (computed once per process, about 10 MB)."""
    structures, keys, sizes = [], [], []
    for num_vertices in range(canonical.MIN_VERTICES, _MAX_VERTICES + 1):
        bits, vertex_keys, vertex_sizes = _solve_vertices(num_vertices)
        structures.append(num_vertices << _STRUCTURE_SHIFT | bits)
        keys.append(vertex_keys)
        sizes.append(vertex_sizes)
    offsets = np.zeros(sum(len(s) for s in sizes) + 1, dtype=np.int64)
    np.cumsum(np.concatenate(sizes), out=offsets[1:])
    return CodeTable(np.concatenate(structures), offsets, np.concatenate(keys))


def _prune(num_vertices: np.ndarray, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Prune many upper-triangle graphs as ``ModelSpec`` does.

    Returns ``(valid, new_vertices, new_bits, new_index)``: valid when input and output stay connected;
    ``new_index[:, v]`` is where vertex v goes (-1 when dropped).
    """
    count = len(bits)
    successors = np.zeros((count, _MAX_VERTICES), dtype=np.int64)
    for src, dst in _PAIRS:
        successors[:, src] |= ((bits >> canonical.edge_bit(src, dst)) & 1) << dst
    from_input = np.ones(count, dtype=np.int64)
    for v in range(_MAX_VERTICES):
        from_input |= np.where((from_input >> v) & 1 == 1, successors[:, v], 0)
    to_output = np.left_shift(1, num_vertices - 1)
    for v in range(_MAX_VERTICES - 2, -1, -1):
        to_output |= np.where(successors[:, v] & to_output != 0, 1 << v, 0)
    on_path = from_input & to_output
    valid = (on_path & 1) == 1
    new_index = np.full((count, _MAX_VERTICES), -1, dtype=np.int64)
    for v in range(_MAX_VERTICES):
        below = on_path & ((1 << v) - 1)
        new_index[:, v] = np.where((on_path >> v) & 1 == 1, np.bitwise_count(below).astype(np.int64), -1)
    new_bits = np.zeros(count, dtype=np.int64)
    for src, dst in _PAIRS:
        a, b = new_index[:, src], new_index[:, dst]
        present = ((bits >> canonical.edge_bit(src, dst)) & 1 == 1) & (a >= 0) & (b >= 0)
        shift = np.where(present, a + b * (b - 1) // 2, 0)
        new_bits |= np.where(present, np.left_shift(1, shift), 0)
    return valid, np.bitwise_count(on_path).astype(np.int64), new_bits, new_index


@dataclass(frozen=True)
class _Cells:
    """The parts of many keys the moves need."""

    vertices: np.ndarray  # int64[n]
    structure: np.ndarray  # int64[n]: index in the code table
    labelling: np.ndarray  # int64[n]: interior labels as a base-3 number (vertex 1 most significant)
    labels: np.ndarray  # int64[n, 5]: label of interior vertex 1..5 (0 past the interior)


def _cells(table: CodeTable, keys: np.ndarray) -> _Cells:
    keys = np.asarray(keys, dtype=np.uint64)
    vertices = (keys >> np.uint64(canonical.VERTICES_SHIFT)).astype(np.int64)
    bits = ((keys >> np.uint64(canonical.BITS_SHIFT)) & np.uint64((1 << _STRUCTURE_SHIFT) - 1)).astype(np.int64)
    code = (keys & np.uint64((1 << canonical.BITS_SHIFT) - 1)).astype(np.int64)
    interior = vertices - 2
    labels = np.zeros((len(keys), _MAX_VERTICES - 2), dtype=np.int64)
    labelling = np.zeros(len(keys), dtype=np.int64)
    for v in range(1, _MAX_VERTICES - 1):
        inside = v <= interior
        digit = np.where(inside, (code >> np.maximum(2 * (interior - v), 0)) & 3, 0)
        labels[:, v - 1] = digit
        labelling += digit * np.where(inside, 3 ** np.maximum(interior - v, 0), 0)
    structure = table.structure_index(vertices, bits)
    if (structure < 0).any():
        raise ValueError("every key must be a cell of the space")
    return _Cells(vertices, structure, labelling, labels)


@functools.lru_cache(maxsize=1)
def _flip_table() -> tuple[np.ndarray, np.ndarray]:
    """Per structure of the code table and flip position: the resulting structure (-1: invalid or too many
    edges) and where each interior vertex 1..5 goes (-1: pruned)."""
    table = code_table()
    s_vertices = table.structures >> _STRUCTURE_SHIFT
    s_bits = table.structures & ((1 << _STRUCTURE_SHIFT) - 1)
    flips = len(_PAIRS)
    vertices = np.repeat(s_vertices, flips)
    positions = np.tile(np.arange(flips), len(s_bits))
    destination = np.array([dst for _, dst in _PAIRS])[positions]
    valid, new_vertices, new_bits, new_index = _prune(vertices, np.repeat(s_bits, flips) ^ (1 << positions))
    result = np.where(valid & (destination < vertices), table.structure_index(new_vertices, new_bits), -1)
    shape = (len(s_bits), flips)
    return result.reshape(shape), new_index[:, 1 : _MAX_VERTICES - 1].reshape(*shape, _MAX_VERTICES - 2)


def _flat_rows(table: CodeTable, keys: np.ndarray) -> np.ndarray:
    """int64[codes]: for every code of the table, the row of its canonical key in ``keys`` (-1 when absent)."""
    if not len(keys):
        return np.full(len(table.keys), -1, dtype=np.int64)
    positions = np.minimum(keys.searchsorted(table.keys), len(keys) - 1)
    return np.where(keys[positions] == table.keys, positions, -1)


def _flip_targets(table: CodeTable, cells: _Cells) -> np.ndarray:
    """int64[n, 21]: flat table index of each cell's flipped and pruned code (-1: invalid)."""
    results, moves = _flip_table()
    new_structure = results[cells.structure]  # [n, 21]
    safe = np.maximum(new_structure, 0)
    new_interior = (table.structures[safe] >> _STRUCTURE_SHIFT) - 2
    labelling = np.zeros(new_structure.shape, dtype=np.int64)
    for v in range(_MAX_VERTICES - 2):
        target = moves[cells.structure, :, v]  # [n, 21]: new position of interior vertex v + 1
        digit = cells.labels[:, v : v + 1]
        labelling += np.where(target >= 1, digit * 3 ** np.maximum(new_interior - target, 0), 0)
    return np.where(new_structure >= 0, table.offsets[safe] + labelling, -1)


def _swap_targets(table: CodeTable, cells: _Cells) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Op swaps as flat table indexes: ``(index, from_label, to_label)``, each [n, 5 vertices, 2 other ops];
    index -1 past the interior."""
    interior = (cells.vertices - 2)[:, None, None]
    vertex = np.arange(1, _MAX_VERTICES - 1)[None, :, None]
    current = np.broadcast_to(cells.labels[:, :, None], (len(cells.vertices), _MAX_VERTICES - 2, 2))
    other = (current + np.arange(1, _OPS)[None, None, :]) % _OPS
    weight = 3 ** np.maximum(interior - vertex, 0)
    index = table.offsets[cells.structure][:, None, None] + cells.labelling[:, None, None] + (other - current) * weight
    inside = vertex <= interior
    return np.where(inside, index, -1), np.where(inside, current, -1), np.where(inside, other, -1)


def _lookup(rows_of_codes: np.ndarray, index: np.ndarray) -> np.ndarray:
    return np.where(index >= 0, rows_of_codes[np.maximum(index, 0)], -1)


def neighbor_graph(keys: np.ndarray, progress: Callable[[int], None] | None = None) -> NeighborGraph:
    """The moves between cells of ``keys`` (ascending canonical keys): rows one edge flip or op change away.

    Moves to cells absent from ``keys`` are left out (a store may hold a subset of the space), as are moves back
    to the cell itself; each row's neighbours are distinct and ascending.

    Args:
      keys: uint64[cells], strictly ascending canonical keys of cells of the space (the row order of
        ``Columns``).
      progress: called with the number of rows done after each chunk.

    Raises:
      ValueError: keys not strictly ascending, or not cells of the space.
    """
    keys = _ascending(keys)
    table = code_table()
    rows_of_codes = _flat_rows(table, keys)
    counts = np.zeros(len(keys), dtype=np.int64)
    pieces = []
    for start in range(0, len(keys), _CHUNK):
        cells = _cells(table, keys[start : start + _CHUNK])
        swaps, _, _ = _swap_targets(table, cells)
        index = np.concatenate([_flip_targets(table, cells), swaps.reshape(len(cells.vertices), -1)], axis=1)
        rows = _lookup(rows_of_codes, index)
        own = np.arange(start, start + len(cells.vertices))[:, None]
        rows[rows == own] = -1
        rows.sort(axis=1)
        distinct = rows != -1
        distinct[:, 1:] &= rows[:, 1:] != rows[:, :-1]
        counts[start : start + len(cells.vertices)] = distinct.sum(axis=1)
        pieces.append(rows[distinct].astype(np.int32))
        if progress is not None:
            progress(start + len(cells.vertices))
    indptr = np.zeros(len(keys) + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    indices = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int32)
    return NeighborGraph(indptr, indices)


@dataclass(frozen=True)
class NeighborGraph:
    """Directed graph of one-edit moves between rows of ascending keys (CSR; each row's list ascending)."""

    indptr: np.ndarray  # int64[cells + 1]
    indices: np.ndarray  # int32[moves]: neighbour rows

    @property
    def cells(self) -> int:
        return len(self.indptr) - 1

    def degree(self) -> np.ndarray:
        """int64[cells]: how many distinct neighbours each row has."""
        return np.diff(self.indptr)

    def neighbors(self, row: int) -> np.ndarray:
        return self.indices[self.indptr[row] : self.indptr[row + 1]]


@dataclass(frozen=True)
class OpSwaps:
    """Every op swap between cells of ``keys``: one entry per (cell, interior vertex, other op)."""

    rows: np.ndarray  # int64[swaps]: the cell
    neighbors: np.ndarray  # int64[swaps]: the cell with that vertex's op changed
    from_label: np.ndarray  # int64[swaps]: the op label before (0 conv3x3, 1 conv1x1, 2 maxpool3x3)
    to_label: np.ndarray  # int64[swaps]: the op label after


def op_swaps(keys: np.ndarray) -> OpSwaps:
    """Every op swap from a cell of ``keys`` to a cell of ``keys`` (ascending canonical keys).

    Each (cell, interior vertex, other op) counts once, even when automorphisms make two vertices of a cell
    give the same neighbour: the question is what changing one vertex's op does.

    Raises:
      ValueError: keys not strictly ascending, or not cells of the space.
    """
    keys = _ascending(keys)
    table = code_table()
    rows_of_codes = _flat_rows(table, keys)
    parts: list[list[np.ndarray]] = [[], [], [], []]
    for start in range(0, len(keys), _CHUNK):
        cells = _cells(table, keys[start : start + _CHUNK])
        index, current, other = _swap_targets(table, cells)
        found = _lookup(rows_of_codes, index)
        keep = found >= 0
        owner = np.broadcast_to(np.arange(start, start + len(cells.vertices))[:, None, None], index.shape)
        for part, values in zip(parts, (owner, found, current, other), strict=True):
            part.append(values[keep].astype(np.int64))
    if not parts[0]:
        empty = np.zeros(0, dtype=np.int64)
        return OpSwaps(empty, empty, empty, empty)
    return OpSwaps(*(np.concatenate(part) for part in parts))


def _ascending(keys: np.ndarray) -> np.ndarray:
    keys = np.asarray(keys, dtype=np.uint64)
    if len(keys) > 1 and not (keys[1:] > keys[:-1]).all():
        raise ValueError("keys must be strictly ascending")
    return keys
