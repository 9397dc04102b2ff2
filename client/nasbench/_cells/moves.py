"""One-edit moves, vectorized over many cells: the neighbours of ``api.NASBench.neighbors``, the neighbour graph
of the locality analysis and the op swaps of the ops analysis.

A move flips one entry of the upper triangle or changes one interior op, prunes the result as ``ModelSpec`` does
(drop every vertex off an input→output path; no path left means the move is invalid), keeps it when it has at most
9 edges, and names it by its canonical key. Every move of every cell is computed with numpy over the key table
(``nasbench._cells.keytable``), which lists every labelled full DAG of the space in code order with its canonical
key: a code's place in the table is its structure's offset plus its labelling in base 3, so canonicalizing a move
is two array lookups.

- an edge flip is solved once per structure and flip position (the pruned structure, where each interior vertex
  goes); a cell's labels then follow by arithmetic;
- an op swap keeps the structure, so only the labelling's base-3 digit changes.

Usage::

    neighbor_keys(key)                          # the canonical keys one move away, ascending
    graph = neighbor_graph(keys)                # CSR over rows of the (ascending) keys
    swaps = op_swaps(keys)                      # (cell, vertex, other op) -> the cell with that op
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nasbench._cells import codes, keytable
from nasbench.lib import config

_MAX_VERTICES = codes.MAX_VERTICES
_OPS = len(config.AVAILABLE_OPS)
_STRUCTURE_SHIFT = keytable.STRUCTURE_SHIFT  # V << 21 | bits names a structure
# Every (src, dst) position of a 7x7 upper triangle, in bit order.
_PAIRS = [(src, dst) for dst in range(1, _MAX_VERTICES) for src in range(dst)]
_CHUNK = 1 << 15


@dataclass(frozen=True)
class _Codes:
    """The key table as arrays: every labelled full DAG of the space in code order, with its canonical key."""

    structures: np.ndarray  # int64[structures]: V << 21 | bits, ascending
    offsets: np.ndarray  # int64[structures + 1]: index of each structure's first labelling
    keys: np.ndarray  # uint64[codes]: canonical key of each code (code order)

    def structure_index(self, vertices: np.ndarray, bits: np.ndarray) -> np.ndarray:
        """int64 index of each structure (V, bits); -1 when it is not a full DAG with at most 9 edges."""
        wanted = np.asarray(vertices, dtype=np.int64) << _STRUCTURE_SHIFT | np.asarray(bits, dtype=np.int64)
        positions = np.minimum(self.structures.searchsorted(wanted), len(self.structures) - 1)
        return np.where(self.structures[positions] == wanted, positions, -1)


@functools.lru_cache(maxsize=1)
def _code_table() -> _Codes:
    found = keytable.table()
    offsets = np.append(np.asarray(found.offsets, dtype=np.int64), len(found.keys))
    return _Codes(found.structures.astype(np.int64), offsets, found.keys)


def _prune(num_vertices: np.ndarray, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Prune many upper-triangle graphs as ``ModelSpec`` does.

    Returns ``(valid, new_vertices, new_bits, new_index)``: valid when input and output stay connected;
    ``new_index[:, v]`` is where vertex v goes (-1 when dropped).
    """
    count = len(bits)
    successors = np.zeros((count, _MAX_VERTICES), dtype=np.int64)
    for src, dst in _PAIRS:
        successors[:, src] |= ((bits >> codes.edge_bit(src, dst)) & 1) << dst
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
        present = ((bits >> codes.edge_bit(src, dst)) & 1 == 1) & (a >= 0) & (b >= 0)
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


def _cells(table: _Codes, keys: np.ndarray) -> _Cells:
    keys = np.asarray(keys, dtype=np.uint64)
    vertices = (keys >> np.uint64(codes.VERTICES_SHIFT)).astype(np.int64)
    bits = ((keys >> np.uint64(codes.BITS_SHIFT)) & np.uint64((1 << _STRUCTURE_SHIFT) - 1)).astype(np.int64)
    code = (keys & np.uint64((1 << codes.BITS_SHIFT) - 1)).astype(np.int64)
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
    table = _code_table()
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


def _flat_rows(table: _Codes, keys: np.ndarray) -> np.ndarray:
    """int64[codes]: for every code of the table, the row of its canonical key in ``keys`` (-1 when absent)."""
    if not len(keys):
        return np.full(len(table.keys), -1, dtype=np.int64)
    positions = np.minimum(keys.searchsorted(table.keys), len(keys) - 1)
    return np.where(keys[positions] == table.keys, positions, -1)


def _flip_targets(table: _Codes, cells: _Cells) -> np.ndarray:
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


def _swap_targets(table: _Codes, cells: _Cells) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def neighbor_keys(key: int) -> list[int]:
    """The canonical keys of the cells one move away from the cell ``key``, ascending.

    The cell itself is never among them: a flip changes the number of edges (adding one joins two vertices already
    on the path; removing one removes it, or prunes vertices with it) and a swap changes the multiset of ops, and
    an isomorphism keeps both.

    Raises:
      ValueError: ``key`` is not a cell of the space.
    """
    table = _code_table()
    cells = _cells(table, np.array([key], dtype=np.uint64))
    swaps, _, _ = _swap_targets(table, cells)
    index = np.concatenate([_flip_targets(table, cells).ravel(), swaps.ravel()])
    found: list[int] = np.unique(table.keys[index[index >= 0]]).tolist()
    return found


def neighbor_graph(keys: np.ndarray, progress: Callable[[int], None] | None = None) -> NeighborGraph:
    """The moves between cells of ``keys`` (ascending canonical keys): rows one edge flip or op change away.

    Moves to cells absent from ``keys`` are left out (a store may hold a subset of the space); no move leads back
    to the cell itself (see ``neighbor_keys``); each row's neighbours are distinct and ascending.

    Args:
      keys: uint64[cells], strictly ascending canonical keys of cells of the space (the row order of
        ``Columns``).
      progress: called with the number of rows done after each chunk.

    Raises:
      ValueError: keys not strictly ascending, or not cells of the space.
    """
    keys = _ascending(keys)
    table = _code_table()
    rows_of_codes = _flat_rows(table, keys)
    counts = np.zeros(len(keys), dtype=np.int64)
    pieces = []
    for start in range(0, len(keys), _CHUNK):
        cells = _cells(table, keys[start : start + _CHUNK])
        swaps, _, _ = _swap_targets(table, cells)
        index = np.concatenate([_flip_targets(table, cells), swaps.reshape(len(cells.vertices), -1)], axis=1)
        rows = _lookup(rows_of_codes, index)
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
    table = _code_table()
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
