"""The store's layout: one source of truth for the writer (builder) and the reader (client, server).

A store is one LMDB file (``subdir=False``) with two named databases:

- ``meta``: ``b"manifest"`` → UTF-8 JSON (schema version, source, counts, epochs, and per array its dtype,
  shape, xxh3-128 checksum and byte offset in the file).
- ``arrays``: array name → the raw C-contiguous bytes of a numpy array (padded to ``MIN_VALUE_SIZE`` so every
  array lives in LMDB overflow pages, contiguous in the file).

Readers take the manifest through LMDB and map the arrays at their recorded offsets (read-only ``mmap``): pages
load only when touched. (py-lmdb's ``get`` touches every page of a value before returning it, which would read
the whole store into memory at open.) The writer finds each offset by comparing the file's bytes with the array.

Columns, one row per cell, rows in order of first appearance of the hash in the source file
(the order of ``hash_iterator``)::

    hashes         uint8[cells, 16]            original MD5 hash (raw digest)
    keys           uint64[cells]               canonical key (nasbench.canonical)
    representatives uint64[cells]              cell code of the dataset's own stored adjacency/ops
    parameters     int32[cells]                trainable parameters (first record of the hash)
    num_vertices   uint8[cells]                vertices of the cell
    num_edges      uint8[cells]                edges of the cell
    metrics        float64[cells, epochs, 3, 8]  per budget (ascending) and repeat (file order), METRIC_FIELDS

Indexes::

    key_order      uint32[cells]               rows sorted by canonical key (binary search, vectorized)
    hash_order     uint32[cells]               rows sorted by hash (bytes order)
    sorted_hash_prefix uint64[cells]           big-endian first 8 bytes of hashes[hash_order]
    structure_codes uint64[structures]         distinct ``key >> 10`` (V and edges), ascending
    structure_rows int32[structures, 243]      row of (structure, labels in base 3), -1 where absent

``structure_codes``/``structure_rows`` answer one key in O(1) (a dict lookup and an index); the sorted
columns answer batches with one ``np.searchsorted``. LMDB index databases would be as fast for one key, but far
slower per key for a batch, and not zero-copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

SCHEMA_VERSION = 1
META_DB = b"meta"
ARRAYS_DB = b"arrays"
MANIFEST_KEY = b"manifest"
NUM_REPEATS = 3

METRIC_FIELDS: tuple[str, ...] = (
    "halfway_training_time",
    "halfway_train_accuracy",
    "halfway_validation_accuracy",
    "halfway_test_accuracy",
    "final_training_time",
    "final_train_accuracy",
    "final_validation_accuracy",
    "final_test_accuracy",
)
HALFWAY = slice(0, 4)
FINAL = slice(4, 8)

MIN_VALUE_SIZE = 4096  # smaller values would sit inside LMDB's B-tree pages instead of their own pages
LABEL_SLOTS = 3**5  # interior labellings of a 7-vertex cell

# name -> (dtype, shape; "N" = cells, "E" = epoch budgets, "S" = distinct structures)
COLUMNS: dict[str, tuple[str, tuple[Any, ...]]] = {
    "hashes": ("|u1", ("N", 16)),
    "keys": ("<u8", ("N",)),
    "representatives": ("<u8", ("N",)),
    "parameters": ("<i4", ("N",)),
    "num_vertices": ("|u1", ("N",)),
    "num_edges": ("|u1", ("N",)),
    "metrics": ("<f8", ("N", "E", NUM_REPEATS, len(METRIC_FIELDS))),
    "key_order": ("<u4", ("N",)),
    "hash_order": ("<u4", ("N",)),
    "sorted_hash_prefix": ("<u8", ("N",)),
    "structure_codes": ("<u8", ("S",)),
    "structure_rows": ("<i4", ("S", LABEL_SLOTS)),
}


def column_shape(name: str, cells: int, epochs: int, structures: int) -> tuple[int, ...]:
    """Full shape of a column for a store of ``cells`` rows, ``epochs`` budgets and ``structures``."""
    sizes = {"N": cells, "E": epochs, "S": structures}
    return tuple(sizes.get(dim, dim) for dim in COLUMNS[name][1])


def _base3_of_label_codes() -> np.ndarray:
    digits = np.arange(1024)
    base3 = sum(((digits >> (2 * j)) & 3) * 3**j for j in range(5)).astype(np.int64)
    has_no_op = np.zeros(1024, dtype=bool)
    for j in range(5):
        has_no_op |= ((digits >> (2 * j)) & 3) == 3
    return np.where(has_no_op, -1, base3)


# label code (10 bits, base 4) -> the same digits read in base 3: a dense index 0..242 for valid labels, -1 for
# codes with a digit 3 (no op has that label)
BASE3_OF_LABELS = _base3_of_label_codes()


def hash_prefix(digests: np.ndarray) -> np.ndarray:
    """Big-endian uint64 of the first 8 bytes of ``uint8[n, 16]`` digests (sorts like the bytes)."""
    return np.ascontiguousarray(digests[:, :8]).view(">u8").ravel().astype("<u8")


@dataclass
class Dataset:
    """The content of a store, in memory: what a builder writes and what a reader exposes.

    ``metrics`` holds, for each row, budget (``epochs``, ascending) and repeat (file order), the eight
    ``METRIC_FIELDS``.
    """

    hashes: np.ndarray  # uint8[cells, 16]
    keys: np.ndarray  # uint64[cells]
    representatives: np.ndarray  # uint64[cells]
    parameters: np.ndarray  # int32[cells]
    metrics: np.ndarray  # float64[cells, epochs, 3, 8]
    epochs: tuple[int, ...]  # ascending
    source: dict[str, Any] = field(default_factory=dict)  # name, size, sha256, records, kind

    @property
    def cells(self) -> int:
        return len(self.keys)
