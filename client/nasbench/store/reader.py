"""Open a store read-only and look cells up, zero-copy.

The environment is opened read-only with ``lock=False`` and readahead off; one read transaction with
``buffers=True`` lives as long as the Store, so every column is a numpy view straight into the memory map.
Open a Store in the process that uses it (after any fork): LMDB environments do not survive fork.

Usage::

    from nasbench.store.reader import Store
    store = Store.open("nasbench.lmdb")
    row = store.row_of_key(key)          # -1 when absent
    store.metrics[row]                   # float64[epochs, 3, 8], a view
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import lmdb
import numpy as np
import xxhash

from nasbench.errors import StoreCorruptError, StoreError, StoreNotFoundError, StoreSchemaError
from nasbench.store import layout


class Store:
    """A read-only store: manifest, zero-copy columns, and lookups by canonical key and by hash."""

    def __init__(
        self,
        path: Path,
        env: lmdb.Environment,
        txn: lmdb.Transaction,
        manifest: dict[str, Any],
        columns: dict[str, np.ndarray],
    ) -> None:
        self.path = path
        self._env = env
        self._txn = txn  # keeps every zero-copy column valid
        self.manifest = manifest
        self.epochs: tuple[int, ...] = tuple(manifest["epochs"])
        self._epoch_index = {epochs: index for index, epochs in enumerate(self.epochs)}
        self.hashes = columns["hashes"]  # uint8[cells, 16]
        self.keys = columns["keys"]  # uint64[cells]
        self.representatives = columns["representatives"]  # uint64[cells]
        self.parameters = columns["parameters"]  # int32[cells]
        self.num_vertices = columns["num_vertices"]  # uint8[cells]
        self.num_edges = columns["num_edges"]  # uint8[cells]
        self.metrics = columns["metrics"]  # float64[cells, epochs, 3, 8]
        self.key_order = columns["key_order"]  # uint32[cells]
        self._sorted_keys = self.keys[self.key_order]  # uint64[cells], sorted (a copy: 3.4 MB at full scale)
        self.hash_order = columns["hash_order"]  # uint32[cells]
        self.sorted_hash_prefix = columns["sorted_hash_prefix"]  # uint64[cells]
        self.cells = len(self.keys)

    @classmethod
    def open(cls, path: str | os.PathLike[str], verify: bool = False) -> Store:
        """Open a store read-only; with ``verify`` re-check every array checksum first.

        Raises:
          StoreNotFoundError: nothing at ``path``.
          StoreSchemaError: written by an unknown schema version.
          StoreCorruptError: a missing or malformed part, or (with ``verify``) a checksum mismatch.
        """
        path = Path(path)
        if not path.exists():
            raise StoreNotFoundError(f"no store at {path}")
        if path.is_dir():
            raise StoreError(f"{path} is a folder; a store is a single LMDB file")
        try:
            env = lmdb.open(str(path), subdir=False, readonly=True, lock=False, readahead=False, max_dbs=2)
        except lmdb.Error as exc:
            raise StoreCorruptError(f"{path} is not an LMDB store ({exc})") from None
        try:
            txn, manifest, columns = _read(env, path, verify)
        except BaseException:
            env.close()
            raise
        return cls(path, env, txn, manifest, columns)

    def close(self) -> None:
        """Release the memory map; the columns must not be used afterwards."""
        self._txn.abort()
        self._env.close()

    # --- lookups -----------------------------------------------------------------------------------------

    def epoch_index(self, epochs: int) -> int:
        """Position of a budget on the epochs axis of ``metrics``; -1 when the store lacks it."""
        return self._epoch_index.get(epochs, -1)

    def row_of_key(self, key: int) -> int:
        """Row of a canonical key, or -1 when the cell is not in the store."""
        position = int(self._sorted_keys.searchsorted(np.uint64(key)))
        if position < self.cells and int(self._sorted_keys[position]) == key:
            return int(self.key_order[position])
        return -1

    def rows_of_keys(self, keys: np.ndarray) -> np.ndarray:
        """Rows of many canonical keys (int64, -1 where absent), vectorized."""
        keys = np.asarray(keys, dtype=np.uint64)
        if self.cells == 0:
            return np.full(keys.shape, -1, dtype=np.int64)
        positions = np.minimum(self._sorted_keys.searchsorted(keys), self.cells - 1)
        found = self._sorted_keys[positions] == keys
        return np.where(found, self.key_order[positions].astype(np.int64), -1)

    def row_of_hash(self, digest: bytes) -> int:
        """Row of a 16-byte MD5 digest, or -1 when absent."""
        if len(digest) != 16:
            return -1
        prefix = np.uint64(int.from_bytes(digest[:8], "big"))
        position = int(self.sorted_hash_prefix.searchsorted(prefix))
        while position < self.cells and self.sorted_hash_prefix[position] == prefix:
            row = int(self.hash_order[position])
            if self.hashes[row].tobytes() == digest:
                return row
            position += 1
        return -1

    def hash_of_row(self, row: int) -> str:
        return self.hashes[row].tobytes().hex()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r}, cells={self.cells}, epochs={list(self.epochs)})"


def _read(
    env: lmdb.Environment, path: Path, verify: bool
) -> tuple[lmdb.Transaction, dict[str, Any], dict[str, np.ndarray]]:
    try:
        meta_db = env.open_db(layout.META_DB, create=False)
        arrays_db = env.open_db(layout.ARRAYS_DB, create=False)
    except lmdb.Error:
        raise StoreCorruptError(f"{path} is not a nasbench store (its databases are missing)") from None
    txn = env.begin(buffers=True)
    raw = txn.get(layout.MANIFEST_KEY, db=meta_db)
    if raw is None:
        raise StoreCorruptError(f"{path} has no manifest: the build did not finish")
    try:
        manifest = json.loads(bytes(raw))
    except ValueError:
        raise StoreCorruptError(f"{path} has an unreadable manifest") from None
    version = manifest.get("schema_version")
    if version != layout.SCHEMA_VERSION:
        raise StoreSchemaError(
            f"{path} uses store schema {version!r}; this version of nasbench reads schema {layout.SCHEMA_VERSION}. "
            "Rebuild the store with `nasbench build`."
        )
    columns = {}
    cells, epochs = int(manifest["cells"]), len(manifest["epochs"])
    for name, (dtype, _) in layout.COLUMNS.items():
        spec = manifest["arrays"].get(name)
        buffer = txn.get(name.encode(), db=arrays_db)
        shape = layout.column_shape(name, cells, epochs)
        if spec is None or buffer is None or list(shape) != spec["shape"] or spec["dtype"] != np.dtype(dtype).str:
            raise StoreCorruptError(f"{path}: array {name!r} is missing or does not match the manifest")
        if len(buffer) != int(np.prod(shape)) * np.dtype(dtype).itemsize:
            raise StoreCorruptError(f"{path}: array {name!r} has {len(buffer)} bytes, expected shape {shape}")
        if verify and xxhash.xxh3_128_hexdigest(buffer) != spec["xxh3_128"]:
            raise StoreCorruptError(f"{path}: checksum mismatch in array {name!r}")
        columns[name] = np.frombuffer(buffer, dtype=dtype).reshape(shape)
    return txn, manifest, columns
