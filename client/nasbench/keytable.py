"""The canonical key of every labelled graph of the search space, computed once and shared through a memory map.

The space is finite: 6,472 structures (full DAGs of 2 to 7 vertices with at most 9 edges) times the
``3 ** (V - 2)`` labellings of their interior vertices make 1,293,208 labelled graphs. This table holds the
canonical key (``nasbench.canonical``) of each, so naming a cell is two dictionary lookups and one array read
instead of a search over up to 120 vertex orders; a process asking for cells it has never seen pays what a
repeated cell costs.

The table is a file of about 10.7 MB in the cache folder (``space.default_cache_dir()``), memory-mapped
read-only: every process on the machine shares the same pages. It is computed (vectorized, about a second) the
first time it is needed, written atomically, and checked on every open against the digest of the correct table
(``TABLE_XXH3_128``, which a slow test recomputes from a fresh enumeration of ``nasbench.space``): a damaged,
truncated or stale file is rebuilt, never used. If the cache folder is not writable, the table lives in the
process's memory.

Layout (little-endian)::

    header        64 bytes: magic, format, structures S, labelled graphs L
    codes         uint64[S]      V << 21 | upper-triangle bits (canonical's bit order), ascending
    matrices      uint8[S, 49]   each structure's 0/1 matrix, row-major in the first V*V bytes
    keys          uint64[L]      canonical key of (structure, interior labelling in itertools.product order)

Usage::

    from nasbench import keytable
    key = keytable.key_of(np.array(matrix, dtype=np.int8), ops)   # None outside the table
"""

from __future__ import annotations

import functools
import itertools
import os
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from nasbench import canonical
from nasbench.lib import config

FORMAT = 1
NUM_STRUCTURES = 6_472
NUM_LABELLED_GRAPHS = 1_293_208
# xxh3-128 of everything after the header of the correct table (tests recompute it from a fresh enumeration).
TABLE_XXH3_128 = "3d3f14fc5af365cd523be430a97836ff"
_MAGIC = b"NBKEYTBL"
_HEADER = struct.Struct("<8sIII")
_HEADER_SIZE = 64
_MATRIX_BYTES = canonical.MAX_VERTICES**2
_STRUCTURE_SHIFT = canonical.VERTICES_SHIFT - canonical.BITS_SHIFT  # code >> BITS_SHIFT == V << 21 | bits

_OPS = config.AVAILABLE_OPS


@dataclass(frozen=True)
class KeyTable:
    """The table's arrays (views of the memory map) and the small per-process indexes over them."""

    codes: np.ndarray  # uint64[S]
    matrices: np.ndarray  # uint8[S, 49]
    keys: np.ndarray  # uint64[L]
    by_matrix: dict[bytes, int]  # V*V bytes of a structure's 0/1 matrix -> offset of its block in keys
    by_structure: dict[int, int]  # V << 21 | bits -> structure index
    offsets: list[int]  # structure index -> offset of its block in keys
    matrix_bytes: list[bytes]  # structure index -> its V*V matrix bytes (the keys of by_matrix)
    path: Path | None  # the file behind the map; None when the table lives in memory
    _views: dict[int, np.ndarray] = field(default_factory=dict)  # structure index -> read-only int8 matrix

    def key_of_code(self, code: int) -> int | None:
        """The canonical key of a cell code when its structure is in the table, else None."""
        structure = self.by_structure.get(code >> canonical.BITS_SHIFT)
        if structure is None:
            return None
        interior = (code >> canonical.VERTICES_SHIFT) - 2  # labels beyond the interior are ignored, as by unpack
        labelling = _BASE3[code & ((1 << 2 * interior) - 1)]
        if labelling < 0:
            return None
        return self.keys.item(self.offsets[structure] + labelling)

    def cell_of_code(self, code: int) -> tuple[np.ndarray, tuple[str, ...]] | None:
        """The read-only int8 matrix and the op names of a cell code whose structure is in the table, else None.

        Matrices are made once per structure (6,472 at most), so handing them out costs a dictionary lookup.
        """
        structure = self.by_structure.get(code >> canonical.BITS_SHIFT)
        if structure is None:
            return None
        matrix = self._views.get(structure)
        if matrix is None:
            size = code >> canonical.VERTICES_SHIFT
            matrix = np.frombuffer(self.matrix_bytes[structure], dtype=np.int8).reshape(size, size)  # read-only
            self._views[structure] = matrix
        return matrix, _ops_of(code >> canonical.VERTICES_SHIFT, code & _LABELS_MASK)


@functools.cache
def _ops_of(num_vertices: int, label_code: int) -> tuple[str, ...]:
    """Op names of a labelling (bounded: 2 <= V <= 7 and label codes < 1024 reach here)."""
    labels = canonical.unpack(num_vertices << canonical.VERTICES_SHIFT | label_code)[2]
    return (config.INPUT, *(_OPS[label] for label in labels), config.OUTPUT)


_LABELS_MASK = (1 << canonical.BITS_SHIFT) - 1


def _base3_of_label_codes() -> list[int]:
    """Label code (base 4, vertex 1 most significant) -> the labelling's index in product order (the same digits
    read in base 3); -1 for codes with a digit 3, which name no op."""
    index = [-1] * (1 << canonical.BITS_SHIFT)
    for digits in itertools.product(range(len(_OPS)), repeat=canonical.MAX_VERTICES - 2):
        code = base3 = 0
        for digit in digits:
            code, base3 = code << 2 | digit, base3 * 3 + digit
        index[code] = base3
    return index


_BASE3 = _base3_of_label_codes()


def _interior_index() -> dict[tuple[Any, ...], int]:
    """Full op tuples ('input', ..., 'output') of 2 to 7 vertices -> index of the labelling in product order."""
    index: dict[tuple[Any, ...], int] = {}
    for interior in range(canonical.MAX_VERTICES - 1):
        for position, labels in enumerate(itertools.product(_OPS, repeat=interior)):
            index[(config.INPUT, *labels, config.OUTPUT)] = position
    return index


_LABELLING = _interior_index()

_table: KeyTable | None = None
_lock = threading.Lock()


def table() -> KeyTable:
    """The table of this process: mapped from the cache file (built there first if absent or invalid)."""
    found = _table
    if found is None:
        with _lock:
            found = _table if _table is not None else _open(_default_path())
            globals()["_table"] = found
    return found


def key_of(matrix: np.ndarray, ops: Sequence[Any]) -> int | None:
    """The canonical key of a pruned cell, or None when it is not a labelled graph of the table.

    A hit means: an integer or bool matrix of 0/1 entries, upper triangular, a full DAG of 2 to 7 vertices
    with at most 9 edges, and ops 'input', ops of the space, 'output'. Anything else (more edges, other
    entries, other dtypes, unknown ops) gives None and is for the caller to check the slow way.
    """
    try:
        labelling = _LABELLING.get(tuple(ops))
    except TypeError:  # unhashable ops
        return None
    if labelling is None:
        return None
    lanes = canonical.lanes01(matrix)
    if lanes is None or matrix.shape != (len(ops), len(ops)):
        return None
    found = _table if _table is not None else table()
    offset = found.by_matrix.get(lanes)
    if offset is None:
        return None
    return found.keys.item(offset + labelling)


def _default_path() -> Path:
    from nasbench import space

    return space.default_cache_dir() / f"keytable-v{FORMAT}.bin"


# --- opening, checking, building ---------------------------------------------------------------------------


def _open(path: Path) -> KeyTable:
    """Map the file when it holds the correct table; otherwise compute it, write it, and map that."""
    found = _map(path)
    if found is not None:
        return found
    payload = compute_payload()
    try:
        _write(path, payload)
    except OSError:  # a read-only cache folder: keep the table in this process's memory
        return _index(np.frombuffer(payload, dtype=np.uint8), None)
    found = _map(path)
    if found is None:  # another process replaced the file with something else in between: use our own
        return _index(np.frombuffer(payload, dtype=np.uint8), None)
    return found


def _map(path: Path) -> KeyTable | None:
    """The table mapped from ``path``, or None when the file is absent, truncated, stale or damaged."""
    try:
        with open(path, "rb") as handle:
            data = np.memmap(handle, dtype=np.uint8, mode="r")
    except (OSError, ValueError):
        return None
    if not is_valid(data):
        return None
    return _index(data[_HEADER_SIZE:], path)


def is_valid(data: np.ndarray | bytes) -> bool:
    """True iff ``data`` (a whole table file) has the right header, size and content digest."""
    view = memoryview(data).cast("B") if isinstance(data, np.ndarray) else memoryview(data)
    if len(view) != _HEADER_SIZE + payload_size():
        return False
    magic, version, structures, graphs = _HEADER.unpack_from(view)
    if (magic, version, structures, graphs) != (_MAGIC, FORMAT, NUM_STRUCTURES, NUM_LABELLED_GRAPHS):
        return False
    return xxhash.xxh3_128_hexdigest(view[_HEADER_SIZE:]) == TABLE_XXH3_128


def payload_size() -> int:
    return NUM_STRUCTURES * (8 + _MATRIX_BYTES) + NUM_LABELLED_GRAPHS * 8


def _index(payload: np.ndarray, path: Path | None) -> KeyTable:
    """Views of the arrays in ``payload`` and the per-process indexes (6,472 entries each)."""
    codes = payload[: NUM_STRUCTURES * 8].view("<u8")
    end = NUM_STRUCTURES * (8 + _MATRIX_BYTES)
    matrices = payload[NUM_STRUCTURES * 8 : end].reshape(NUM_STRUCTURES, _MATRIX_BYTES)
    keys = payload[end:].view("<u8")
    offsets: list[int] = []
    matrix_bytes: list[bytes] = []
    by_matrix: dict[bytes, int] = {}
    by_structure: dict[int, int] = {}
    offset = 0
    raw = matrices.tobytes()
    for index, code in enumerate(codes.tolist()):
        size = code >> _STRUCTURE_SHIFT
        start = index * _MATRIX_BYTES
        lanes = raw[start : start + size * size]
        by_matrix[lanes] = offset
        by_structure[code] = index
        offsets.append(offset)
        matrix_bytes.append(lanes)
        offset += 3 ** (size - 2)
    return KeyTable(codes, matrices, keys, by_matrix, by_structure, offsets, matrix_bytes, path)


def _write(path: Path, payload: bytes) -> None:
    """Write the file atomically: a temp file in the same folder, fsync, rename."""
    import tempfile  # only here: it imports more than this whole package

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            header = _HEADER.pack(_MAGIC, FORMAT, NUM_STRUCTURES, NUM_LABELLED_GRAPHS)
            handle.write(header.ljust(_HEADER_SIZE, b"\0"))
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def compute_payload() -> bytes:
    """The table's arrays (everything after the header), computed from scratch, vectorized over structures."""
    from nasbench import space

    codes, matrices, keys = [], [], []
    for num_vertices in range(canonical.MIN_VERTICES, canonical.MAX_VERTICES + 1):
        bits = space.structures(num_vertices)
        codes.append((np.uint64(num_vertices) << np.uint64(_STRUCTURE_SHIFT)) | bits.astype(np.uint64))
        matrices.append(_matrices(num_vertices, bits))
        keys.append(_keys(num_vertices, bits).ravel())
    arrays = [np.concatenate(codes).astype("<u8"), np.concatenate(matrices), np.concatenate(keys).astype("<u8")]
    payload = b"".join(array.tobytes() for array in arrays)
    if len(payload) != payload_size():
        raise AssertionError(f"key table of {len(payload)} bytes, expected {payload_size()}")
    return payload


def _edges(num_vertices: int) -> list[tuple[int, int]]:
    return [(src, dst) for dst in range(1, num_vertices) for src in range(dst)]


def _matrices(num_vertices: int, bits: np.ndarray) -> np.ndarray:
    """uint8[S, 49]: each structure's 0/1 matrix, row-major, zero-padded."""
    out = np.zeros((len(bits), _MATRIX_BYTES), dtype=np.uint8)
    for src, dst in _edges(num_vertices):
        out[:, src * num_vertices + dst] = (bits >> np.uint32(canonical.edge_bit(src, dst))) & 1
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
            has = ((bits >> np.uint32(canonical.edge_bit(src, dst))) & 1).astype(np.int64)
            a, b = position[src], position[dst]
            if a < b:
                relabelled[index] |= has << canonical.edge_bit(a, b)
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
    base = (np.int64(num_vertices) << canonical.VERTICES_SHIFT) | (best << canonical.BITS_SHIFT)
    return (base[:, None] | best_labels).astype(np.uint64)
