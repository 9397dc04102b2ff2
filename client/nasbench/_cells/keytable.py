"""What naming a cell needs, for the whole search space, computed once and shared through a memory map.

The space is finite: 6,472 structures (full DAGs of 2 to 7 vertices with at most 9 edges) times the
``3 ** (V - 2)`` labellings of their interior vertices make 1,293,208 labelled graphs. This table holds the
canonical key (``nasbench._cells.codes``) of each, so naming a cell is two dictionary lookups and one array read
instead of a search over up to 120 vertex orders; and, for every upper-triangular 0/1 matrix of 2 to 7 vertices
(2.1 M of them), the vertices on an input→output path, so pruning a ``ModelSpec`` is one array read. A process
asking for cells it has never seen pays what a repeated cell costs.

The table is a file of about 12.8 MB in the cache folder (``nasbench._cache.default_cache_dir()``), memory-mapped
read-only: every process on the machine shares the same pages. It is computed (vectorized, about a second) the
first time it is needed, written atomically, and checked on every open against the digest of the correct table
(``TABLE_XXH3_128``, which a slow test recomputes by the search of ``codes.solve``): a damaged, truncated or stale
file is rebuilt, never used. A file that others could change after the check (``nasbench._cache``: a link, a file
or folder writable by or belonging to another user) is never mapped: the table is then computed into this
process's memory, with a warning, as it is when the cache folder is not writable.

Layout (little-endian)::

    header        64 bytes: magic, format, structures S, labelled graphs L
    structures    uint64[S]      V << 21 | upper-triangle bits (the codes' bit order), ascending
    matrices      uint8[S, 49]   each structure's 0/1 matrix, row-major in the first V*V bytes
    keys          uint64[L]      canonical key of (structure, interior labelling in itertools.product order)
    on_path       uint8[P]       for V = 2..7 in turn, indexed by upper-triangle bits: bit v set when vertex v
                                 lies on an input→output path (P = sum of 2 ** (V * (V - 1) / 2))

Usage::

    from nasbench._cells import keytable
    key = keytable.key_of(np.array(matrix, dtype=np.int8), ops)   # None outside the table
    key = keytable.canonicalize(code)                              # any code: the table, else the search
"""

from __future__ import annotations

import _thread
import functools
import itertools
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from nasbench import files
from nasbench._cache import default_cache_dir, open_cached, untrusted_file, untrusted_folder
from nasbench._cells import codes
from nasbench.lib import config

FORMAT = 1
NUM_STRUCTURES = 6_472
NUM_LABELLED_GRAPHS = 1_293_208
# xxh3-128 of everything after the header of the correct table (tests recompute it from a fresh enumeration).
TABLE_XXH3_128 = "fd338ae34c40b537aabcab2058f7b472"
_MAGIC = b"NBKEYTBL"
_HEADER = struct.Struct("<8sIII")
_HEADER_SIZE = 64
_MATRIX_BYTES = codes.MAX_VERTICES**2
_SIZES = range(codes.MIN_VERTICES, codes.MAX_VERTICES + 1)
_PATTERNS = {size: 1 << (size * (size - 1) // 2) for size in _SIZES}  # upper-triangle bit patterns of V vertices
_ON_PATH_OFFSETS = dict(zip(_SIZES, itertools.accumulate([0, *_PATTERNS.values()]), strict=False))
NUM_PATTERNS = sum(_PATTERNS.values())
STRUCTURE_SHIFT = codes.VERTICES_SHIFT - codes.BITS_SHIFT  # code >> BITS_SHIFT == V << 21 | bits

_OPS = config.AVAILABLE_OPS


@dataclass(frozen=True)
class KeyTable:
    """The table's arrays (views of the memory map) and the small per-process indexes over them."""

    structures: np.ndarray  # uint64[S]: V << 21 | bits, ascending
    matrices: np.ndarray  # uint8[S, 49]
    keys: np.ndarray  # uint64[L]
    by_matrix: dict[bytes, int]  # V*V bytes of a structure's 0/1 matrix -> offset of its block in keys
    by_structure: dict[int, int]  # V << 21 | bits -> structure index
    offsets: list[int]  # structure index -> offset of its block in keys
    matrix_bytes: list[bytes]  # structure index -> its V*V matrix bytes (the keys of by_matrix)
    on_path: np.ndarray  # uint8[P]
    path: Path | None  # the file behind the map; None when the table lives in memory
    _views: dict[int, np.ndarray] = field(default_factory=dict)  # structure index -> read-only int8 matrix

    def key_of_code(self, code: int) -> int | None:
        """The canonical key of a cell code when its structure is in the table, else None."""
        structure = self.by_structure.get(code >> codes.BITS_SHIFT)
        if structure is None:
            return None
        interior = (code >> codes.VERTICES_SHIFT) - 2  # labels beyond the interior are ignored, as by unpack
        labelling = _BASE3[code & ((1 << 2 * interior) - 1)]
        if labelling < 0:
            return None
        key: int = self.keys.item(self.offsets[structure] + labelling)
        return key

    def extraneous(self, num_vertices: int, bits: int) -> tuple[int, ...]:
        """The vertices, ascending, that are on no input→output path of the upper-triangular matrix with these
        bits (2 <= num_vertices <= 7): what ``ModelSpec`` prunes."""
        on_path: int = self.on_path.item(_ON_PATH_OFFSETS[num_vertices] + bits)
        return _EXTRANEOUS[num_vertices][on_path]

    def extraneous_of_lanes(self, lanes: bytes, num_vertices: int) -> tuple[int, ...] | None:
        """``extraneous`` of a square matrix of 2 to 7 vertices given as ``codes.lanes01`` bytes; None when
        it is not upper triangular."""
        if int.from_bytes(lanes, "little") & codes.lower_lanes(num_vertices):
            return None
        bits = codes.lanes_bits(lanes, num_vertices)
        on_path: int = self.on_path.item(_ON_PATH_OFFSETS[num_vertices] + bits)
        return _EXTRANEOUS[num_vertices][on_path]

    def cell_of_code(self, code: int) -> tuple[np.ndarray, tuple[str, ...]] | None:
        """The read-only int8 matrix and the op names of a cell code whose structure is in the table, else None.

        Matrices are made once per structure (6,472 at most), so handing them out costs a dictionary lookup.
        """
        structure = self.by_structure.get(code >> codes.BITS_SHIFT)
        if structure is None:
            return None
        ops = _OPS_OF_CELL.get(code & _CELL_MASK)
        if ops is None:  # label digits past the interior, or a digit that names no op: as decode does
            ops = _ops_of(code >> codes.VERTICES_SHIFT, code & _LABELS_MASK)
        return self.matrix_view(structure), ops

    def matrix_view(self, structure: int) -> np.ndarray:
        """The read-only int8 matrix of a structure (made on first use, then kept)."""
        matrix = self._views.get(structure)
        if matrix is None:
            size = self.structures.item(structure) >> STRUCTURE_SHIFT
            matrix = np.frombuffer(self.matrix_bytes[structure], dtype=np.int8).reshape(size, size)  # read-only
            self._views[structure] = matrix
        return matrix


@functools.cache
def _ops_of(num_vertices: int, label_code: int) -> tuple[str, ...]:
    """Op names of a labelling (bounded: 2 <= V <= 7 and label codes < 1024 reach here)."""
    labels = codes.unpack(num_vertices << codes.VERTICES_SHIFT | label_code)[2]
    return (config.INPUT, *(_OPS[label] for label in labels), config.OUTPUT)


_LABELS_MASK = (1 << codes.BITS_SHIFT) - 1
_CELL_MASK = ~(((1 << codes.VERTICES_SHIFT) - 1) ^ _LABELS_MASK)  # keeps V and the labels of a code
# V << 31 | labels -> op names, for every labelling of 2 to 7 vertices (no digit past the interior)
_OPS_OF_CELL = {
    codes.pack(size, 0, labels): (config.INPUT, *(_OPS[label] for label in labels), config.OUTPUT)
    for size in _SIZES
    for labels in itertools.product(range(len(_OPS)), repeat=size - 2)
}


# V -> on-path vertex mask -> the vertices off every path
_EXTRANEOUS = {
    size: [tuple(v for v in range(size) if not mask >> v & 1) for mask in range(1 << size)] for size in _SIZES
}


def _base3_of_label_codes() -> list[int]:
    """Label code (base 4, vertex 1 most significant) -> the labelling's index in product order (the same digits
    read in base 3); -1 for codes with a digit 3, which name no op."""
    index = [-1] * (1 << codes.BITS_SHIFT)
    for digits in itertools.product(range(len(_OPS)), repeat=codes.MAX_VERTICES - 2):
        code = base3 = 0
        for digit in digits:
            code, base3 = code << 2 | digit, base3 * 3 + digit
        index[code] = base3
    return index


_BASE3 = _base3_of_label_codes()


def _interior_index() -> dict[tuple[Any, ...], int]:
    """Full op tuples ('input', ..., 'output') of 2 to 7 vertices -> index of the labelling in product order."""
    index: dict[tuple[Any, ...], int] = {}
    for interior in range(codes.MAX_VERTICES - 1):
        for position, labels in enumerate(itertools.product(_OPS, repeat=interior)):
            ops = (config.INPUT, *labels, config.OUTPUT)
            index[ops] = position
    return index


# every op list of a cell of the space, as a tuple -> the index of its interior labelling in product order
LABELLINGS = _interior_index()

_table: KeyTable | None = None
_lock = _thread.allocate_lock()


def table() -> KeyTable:
    """The table of this process: mapped from the cache file (built there first if absent or invalid)."""
    global _table
    if _table is None:
        with _lock:  # threads starting together map (or build) it once
            if _table is None:
                _table = _open(default_path())
    return _table


def key_of(matrix: np.ndarray, ops: Sequence[Any]) -> int | None:
    """The canonical key of a pruned cell, or None when it is not a labelled graph of the table.

    A hit means: an integer or bool matrix of 0/1 entries, upper triangular, a full DAG of 2 to 7 vertices
    with at most 9 edges, and ops 'input', ops of the space, 'output'. Anything else (more edges, other
    entries, other dtypes, unknown ops) gives None and is for the caller to check the slow way.
    """
    layout = codes.LANE_LAYOUTS.get(matrix.dtype)
    if layout is None or matrix.shape != (len(ops), len(ops)):
        return None
    found = _table if _table is not None else table()
    raw = matrix.tobytes()
    size, low = layout
    lanes = raw if size == 1 else raw[low::size]
    offset = found.by_matrix.get(lanes)  # a hit: the low bytes are a 0/1 matrix of the space
    if offset is None or (size > 1 and raw.count(0) != len(raw) - lanes.count(1)):  # and the high bytes are 0
        return None
    try:
        labelling = LABELLINGS.get(tuple(ops))
    except TypeError:  # unhashable ops
        return None
    return None if labelling is None else found.keys.item(offset + labelling)


def canonicalize(code: int) -> int:
    """The canonical key of any cell code: from the table when the code is a labelled graph of the space, else by
    the search of ``codes.solve`` (more than 9 edges, or not a full DAG)."""
    found = _table if _table is not None else table()
    key = found.key_of_code(code)
    return key if key is not None else codes.solve(code)


def representative(code: int) -> tuple[np.ndarray, tuple[str, ...]]:
    """The read-only int8 matrix and the op names of any cell code: from the table's structures, or decoded for a
    code outside them (which no store of the space holds). The hot path of every answer, hence inlined."""
    found = _table if _table is not None else table()
    structure = found.by_structure.get(code >> codes.BITS_SHIFT)
    ops = _OPS_OF_CELL.get(code & _CELL_MASK)
    if structure is None or ops is None:
        matrix, names = codes.decode(code)
        matrix.flags.writeable = False
        return matrix, tuple(names)
    view = found._views.get(structure)
    return (view if view is not None else found.matrix_view(structure)), ops


def default_path() -> Path:
    """Where this process's key table file lives (in the cache folder)."""
    return default_cache_dir() / f"keytable-v{FORMAT}.bin"


# --- opening, checking, building ---------------------------------------------------------------------------


def _open(path: Path) -> KeyTable:
    """Map the file when it holds the correct table and can be trusted; otherwise compute the table, write it
    (when the folder can be trusted) and map that, or keep it in this process's memory."""
    found = _map(path)
    if found is not None:
        return found
    payload = compute_payload()
    in_memory = _index(np.frombuffer(payload, dtype=np.uint8), None)
    distrust = untrusted_folder(path.parent)
    if distrust is not None:
        _warn(f"not using the cached key table: {distrust}; it is kept in this process's memory instead")
        return in_memory
    try:
        _write(path, payload)
    except OSError:  # a read-only cache folder: keep the table in this process's memory
        return in_memory
    found = _map(path)
    return in_memory if found is None else found  # None: the file was replaced by something else meanwhile


def _map(path: Path) -> KeyTable | None:
    """The table mapped from ``path``, or None when the file is absent, cannot be trusted, or is truncated,
    stale or damaged."""
    try:
        with open_cached(path) as handle:
            distrust = untrusted_file(handle, path)
            if distrust is not None:
                _warn(f"not using the cached key table: {distrust}")
                return None
            data = np.memmap(handle, dtype=np.uint8, mode="r")
    except (OSError, ValueError):
        return None
    if not is_valid(data):
        return None
    return _index(data[_HEADER_SIZE:], path)


def _warn(message: str) -> None:
    import logging  # only on this rare path: importing logging costs more than mapping the table

    logging.getLogger("nasbench").warning(message)


def is_valid(data: np.ndarray | bytes) -> bool:
    """True iff ``data`` (a whole table file) has the right header, size and content digest."""
    view = data.data.cast("B") if isinstance(data, np.ndarray) else memoryview(data)
    if len(view) != _HEADER_SIZE + payload_size():
        return False
    magic, version, structures, graphs = _HEADER.unpack_from(view)
    if (magic, version, structures, graphs) != (_MAGIC, FORMAT, NUM_STRUCTURES, NUM_LABELLED_GRAPHS):
        return False
    return xxhash.xxh3_128_hexdigest(view[_HEADER_SIZE:]) == TABLE_XXH3_128


def payload_size() -> int:
    return NUM_STRUCTURES * (8 + _MATRIX_BYTES) + NUM_LABELLED_GRAPHS * 8 + NUM_PATTERNS


def _index(payload: np.ndarray, path: Path | None) -> KeyTable:
    """Views of the arrays in ``payload`` and the per-process indexes (6,472 entries each)."""
    structure_codes = payload[: NUM_STRUCTURES * 8].view("<u8")
    end = NUM_STRUCTURES * (8 + _MATRIX_BYTES)
    matrices = payload[NUM_STRUCTURES * 8 : end].reshape(NUM_STRUCTURES, _MATRIX_BYTES)
    keys_end = end + NUM_LABELLED_GRAPHS * 8
    keys = payload[end:keys_end].view("<u8")
    on_path = payload[keys_end:]
    code_list = structure_codes.tolist()
    sizes = (structure_codes >> np.uint64(STRUCTURE_SHIFT)).astype(np.int64)
    offsets = np.concatenate(([0], np.cumsum(3 ** (sizes - 2))[:-1])).tolist()
    raw = matrices.tobytes()
    starts = range(0, NUM_STRUCTURES * _MATRIX_BYTES, _MATRIX_BYTES)
    matrix_bytes = [raw[start : start + size * size] for start, size in zip(starts, sizes.tolist(), strict=True)]
    by_matrix = dict(zip(matrix_bytes, offsets, strict=True))
    by_structure = dict(zip(code_list, range(NUM_STRUCTURES), strict=True))
    return KeyTable(structure_codes, matrices, keys, by_matrix, by_structure, offsets, matrix_bytes, on_path, path)


def _write(path: Path, payload: bytes) -> None:
    """Write the file atomically (header, then the payload)."""
    header = _HEADER.pack(_MAGIC, FORMAT, NUM_STRUCTURES, NUM_LABELLED_GRAPHS).ljust(_HEADER_SIZE, b"\0")
    files.write_atomically(path, lambda handle: handle.write(header + payload))


def compute_payload() -> bytes:
    """The table's arrays (everything after the header), computed from scratch, vectorized over structures."""
    structure_codes, matrices, keys = [], [], []
    for num_vertices in range(codes.MIN_VERTICES, codes.MAX_VERTICES + 1):
        bits = codes.structures(num_vertices)
        structure_codes.append((np.uint64(num_vertices) << np.uint64(STRUCTURE_SHIFT)) | bits.astype(np.uint64))
        matrices.append(_matrices(num_vertices, bits))
        keys.append(_keys(num_vertices, bits).ravel())
    on_path = [_on_path(size) for size in _SIZES]
    arrays = [np.concatenate(structure_codes).astype("<u8"), np.concatenate(matrices)]
    arrays += [np.concatenate(keys).astype("<u8"), np.concatenate(on_path)]
    payload = b"".join(array.tobytes() for array in arrays)
    if len(payload) != payload_size():
        raise AssertionError(f"key table of {len(payload)} bytes, expected {payload_size()}")
    return payload


def _edges(num_vertices: int) -> list[tuple[int, int]]:
    return [(src, dst) for dst in range(1, num_vertices) for src in range(dst)]


def _on_path(num_vertices: int) -> np.ndarray:
    """uint8[2 ** (V(V-1)/2)]: per upper-triangle pattern, the vertices reachable from the input that reach the
    output (bit v for vertex v), as ``ModelSpec`` prunes (google-research/nasbench, ``lib/model_spec.py``)."""
    bits = np.arange(_PATTERNS[num_vertices], dtype=np.uint32)

    def edge(src: int, dst: int) -> np.ndarray:
        reached: np.ndarray = ((bits >> np.uint32(codes.edge_bit(src, dst))) & 1).astype(np.uint8)
        return reached

    reach = np.ones(len(bits), dtype=np.uint8)  # the input reaches itself
    for dst in range(1, num_vertices):
        for src in range(dst):
            reach |= (((reach >> src) & 1) & edge(src, dst)) << dst
    last = num_vertices - 1
    coreach = np.full(len(bits), 1 << last, dtype=np.uint8)  # the output is reached from itself
    for src in range(last - 1, -1, -1):
        for dst in range(src + 1, num_vertices):
            coreach |= (((coreach >> dst) & 1) & edge(src, dst)) << src
    return reach & coreach


def _matrices(num_vertices: int, bits: np.ndarray) -> np.ndarray:
    """uint8[S, 49]: each structure's 0/1 matrix, row-major, zero-padded."""
    out = np.zeros((len(bits), _MATRIX_BYTES), dtype=np.uint8)
    for src, dst in _edges(num_vertices):
        out[:, src * num_vertices + dst] = (bits >> np.uint32(codes.edge_bit(src, dst))) & 1
    return out


def _keys(num_vertices: int, bits: np.ndarray) -> np.ndarray:
    """uint64[S, 3**(V-2)]: the canonical key of every labelling of every structure.

    For each interior order that keeps every edge forward, the relabelled bits; per structure the smallest of
    them and the orders reaching it; per labelling the smallest relabelled label code over those orders.
    """
    interior = num_vertices - 2
    orders = list(itertools.permutations(range(1, num_vertices - 1)))
    relabelled = np.zeros((len(orders), len(bits)), dtype=np.int64)
    forward = np.ones((len(orders), len(bits)), dtype=bool)
    for index, order in enumerate(orders):
        position = [0, *[0] * interior, num_vertices - 1]
        for new, old in enumerate(order, start=1):
            position[old] = new
        for src, dst in _edges(num_vertices):
            has = ((bits >> np.uint32(codes.edge_bit(src, dst))) & 1).astype(np.int64)
            a, b = position[src], position[dst]
            if a < b:
                relabelled[index] |= has << codes.edge_bit(a, b)
            else:
                forward[index] &= has == 0
    big = np.int64(1) << 40
    candidates = np.where(forward, relabelled, big)
    best = candidates.min(axis=0)  # the identity order is always forward
    winners = candidates == best  # [orders, S]
    labellings = np.array(list(itertools.product(range(len(_OPS)), repeat=interior)), dtype=np.int64)
    labellings = labellings.reshape(len(labellings), interior)
    weights = 4 ** np.arange(interior - 1, -1, -1, dtype=np.int64)
    best_labels = np.full((len(bits), len(labellings)), big, dtype=np.int64)
    for index, order in enumerate(orders):
        label_codes = labellings[:, [old - 1 for old in order]] @ weights  # [labellings]
        chosen = winners[index]
        if chosen.any():
            rows = best_labels[chosen]
            np.minimum(rows, label_codes[None, :], out=rows)
            best_labels[chosen] = rows
    base = (np.int64(num_vertices) << codes.VERTICES_SHIFT) | (best << codes.BITS_SHIFT)
    keys: np.ndarray = (base[:, None] | best_labels).astype(np.uint64)
    return keys
