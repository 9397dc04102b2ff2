"""The store's layout: one source of truth for the writer (builder) and the reader (client, server).

A store is one LMDB file (``subdir=False``) with two named databases:

- ``meta``: ``b"manifest"`` → UTF-8 JSON (schema version, source, counts, epochs, array specs, checksums).
- ``arrays``: array name → the raw C-contiguous bytes of a numpy array, read back zero-copy.

Columns, one row per cell, rows in order of first appearance of the hash in the source file
(the order of ``hash_iterator``)::

    hashes         uint8[cells, 16]            original MD5 hash (raw digest)
    keys           uint64[cells]               canonical key (nasbench.canonical)
    representatives uint64[cells]              cell code of the dataset's own stored adjacency/ops
    parameters     int32[cells]                trainable parameters (first record of the hash)
    num_vertices   uint8[cells]                vertices of the cell
    num_edges      uint8[cells]                edges of the cell
    metrics        float64[cells, epochs, 3, 8]  per budget (ascending) and repeat (file order), METRIC_FIELDS

Indexes, sorted for binary search (vectorized with ``np.searchsorted``)::

    key_order      uint32[cells]               rows sorted by canonical key
    hash_order     uint32[cells]               rows sorted by hash (bytes order)
    sorted_hash_prefix uint64[cells]           big-endian first 8 bytes of hashes[hash_order]

The design card suggested LMDB index databases (hash → row, key → row); sorted columns answer the same
lookups at the same cost for one key and about 50x cheaper per key for a batch, with one code path.
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

# name -> (dtype, trailing shape after the row axis; "E" stands for the number of epoch budgets)
COLUMNS: dict[str, tuple[str, tuple[Any, ...]]] = {
    "hashes": ("|u1", (16,)),
    "keys": ("<u8", ()),
    "representatives": ("<u8", ()),
    "parameters": ("<i4", ()),
    "num_vertices": ("|u1", ()),
    "num_edges": ("|u1", ()),
    "metrics": ("<f8", ("E", NUM_REPEATS, len(METRIC_FIELDS))),
    "key_order": ("<u4", ()),
    "hash_order": ("<u4", ()),
    "sorted_hash_prefix": ("<u8", ()),
}


def column_shape(name: str, cells: int, epochs: int) -> tuple[int, ...]:
    """Full shape of a column for a store of ``cells`` rows and ``epochs`` budgets."""
    _, trailing = COLUMNS[name]
    return (cells, *(epochs if dim == "E" else dim for dim in trailing))


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
