"""Open a store read-only and look cells up, zero-copy.

The manifest is read through LMDB (read-only, ``lock=False``) and the environment closed at once; the arrays
are numpy views of a read-only ``mmap`` of the file at the offsets the manifest records, so pages load only
when touched and every process sharing the file shares the page cache. Nothing holds an LMDB environment or
transaction, so Stores survive fork and a process may open the same file any number of times.

Usage::

    from nasbench._store.reader import Store
    store = Store.open("nasbench.lmdb")
    row = store.row_of_key(key)          # -1 when absent
    store.metrics[row]                   # float64[epochs, 3, 8], a view
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
from pathlib import Path
from stat import S_ISDIR, S_ISREG
from typing import Any

import lmdb
import numpy as np
import xxhash

from nasbench._cache import default_cache_dir, untrusted_folder
from nasbench._cells import codes as canonical
from nasbench._store import integrity, layout
from nasbench.errors import StoreCorruptError, StoreError, StoreNotFoundError, StoreSchemaError

_BITS_SHIFT = canonical.BITS_SHIFT
_LABELS_MASK = (1 << canonical.BITS_SHIFT) - 1


class Store:
    """A read-only store: manifest, zero-copy columns, and lookups by canonical key and by hash."""

    def __init__(
        self,
        path: Path,
        data: mmap.mmap,
        manifest: dict[str, Any],
        columns: dict[str, np.ndarray],
        fd: int = -1,
        stat: os.stat_result | None = None,
    ) -> None:
        self.path = path
        self._data = data
        self._columns = columns
        self._fd = fd  # the file mapped, kept open to notice changes to it (``changed``)
        self._stat = stat
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
        self.hash_order = columns["hash_order"]  # uint32[cells]
        self.sorted_hash_prefix = columns["sorted_hash_prefix"]  # uint64[cells]
        self.structure_codes = columns["structure_codes"]  # uint64[structures]
        self.structure_rows = columns["structure_rows"]  # int32[structures, 243]
        self._structure_index = {code: i for i, code in enumerate(self.structure_codes.tolist())}
        self._base3 = layout.BASE3_OF_LABELS.tolist()
        self._sorted_keys: np.ndarray | None = None
        self.cells = len(self.keys)

    @classmethod
    def open(cls, path: str | os.PathLike[str], verify: bool | None = None) -> Store:
        """Open a store read-only, after checking that the file is complete and, unless told otherwise, that its
        checksums hold.

        Args:
          path: the store file.
          verify: True re-checks every array checksum; False skips it (for a file this process just wrote or
            verified); None (the default) checks once per file identity and records the result in the cache
            folder, so an unchanged file is not read again and a changed one always is
            (``nasbench._store.integrity``).

        Raises:
          StoreNotFoundError: nothing at ``path``.
          StoreError: a folder, or a file this process may not read.
          StoreSchemaError: written by an unknown schema version.
          StoreCorruptError: an empty or truncated file, a missing or malformed part, or a checksum mismatch.
        """
        path = Path(path)
        fd = _open_file(path)
        try:
            stat = os.fstat(fd)
            if S_ISDIR(stat.st_mode):
                raise StoreError(f"{path} is a folder; a store is a single LMDB file")
            if not S_ISREG(stat.st_mode):
                raise StoreError(f"{path} is not a regular file; a store is a single LMDB file")
            integrity.required_size(fd, stat.st_size, path)  # before anything maps the file (SIGBUS otherwise)
            manifest = _read_manifest(path)
            data = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
            columns = _map_columns(path, data, manifest)  # on failure the map goes with the exception
            store = cls(path, data, manifest, columns, fd, stat)
        except BaseException:
            os.close(fd)
            raise
        name = integrity.identity(stat, manifest)
        folder = _verified_folder()
        if verify or (verify is None and not integrity.is_recorded(folder, name)):
            try:
                store.verify_checksums()
            except BaseException:
                store.close()
                raise
            integrity.record(folder, name, path)
        return store

    def close(self) -> None:
        """Drop this Store's views; the file is unmapped once no array taken from it is alive."""
        self._columns = {}
        for name in layout.COLUMNS:
            setattr(self, name, None)
        with contextlib.suppress(BufferError):  # a caller still holds a view: the map goes when it does
            self._data.close()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def verify_checksums(self) -> None:
        """Re-hash every array of the file (plain reads, not through the map) and compare with the manifest.

        Raises:
          StoreCorruptError: naming the first array whose checksum differs.
        """
        integrity.verify_arrays(self._fd, self.manifest, self.path)

    def changed(self) -> str | None:
        """What changed in the mapped file since it was opened (a write, a truncation), or None."""
        if self._fd < 0 or self._stat is None:
            return None
        now = os.fstat(self._fd)
        before = self._stat
        if now.st_size < before.st_size:
            return f"the file was truncated from {before.st_size:,} to {now.st_size:,} bytes"
        if (now.st_size, now.st_mtime_ns, now.st_ctime_ns) != (before.st_size, before.st_mtime_ns, before.st_ctime_ns):
            return "the file was written to"
        return None

    def accept_change(self) -> None:
        """After a change that verified (``verify_checksums``), take the file's current state as the new normal."""
        if self._fd >= 0:
            self._stat = os.fstat(self._fd)

    # --- lookups -----------------------------------------------------------------------------------------

    def epoch_index(self, epochs: int) -> int:
        """Position of a budget on the epochs axis of ``metrics``; -1 when the store lacks it."""
        return self._epoch_index.get(epochs, -1)

    def row_of_key(self, key: int) -> int:
        """Row of a canonical key, or -1 when the cell is not in the store (O(1): structure, then labels).

        Exact for any integer: the row found must hold that very key, so no malformed key (op digits out of
        range, labels beyond the cell's vertices) can name another cell.
        """
        structure = self._structure_index.get(key >> _BITS_SHIFT)
        if structure is None:
            return -1
        slot = self._base3[key & _LABELS_MASK]
        if slot < 0:
            return -1
        row = self.structure_rows.item(structure, slot)
        return row if row >= 0 and self.keys.item(row) == key else -1

    def rows_of_keys(self, keys: np.ndarray) -> np.ndarray:
        """Rows of many canonical keys (int64, -1 where absent), vectorized."""
        keys = np.asarray(keys, dtype=np.uint64)
        if self._sorted_keys is None:
            self._sorted_keys = self.keys[self.key_order]  # uint64[cells], sorted (3.4 MB at full scale)
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
        digest: bytes = self.hashes[row].tobytes()
        return digest.hex()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r}, cells={self.cells}, epochs={list(self.epochs)})"


def _open_file(path: Path) -> int:
    try:
        # O_NONBLOCK: a FIFO named as the store is refused below instead of blocking the open until a writer
        # comes (regular files ignore the flag); not inherited by child processes (PEP 446)
        return os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise StoreNotFoundError(f"no store at {path}") from None
    except PermissionError:
        raise StoreError(f"cannot read the store {path}: permission denied") from None
    except OSError as exc:
        raise StoreError(f"cannot open the store {path}: {exc.strerror}") from None


def _verified_folder() -> Path | None:
    """Where verifications are recorded; None when records there could be planted by another user (every open
    then verifies)."""
    folder = default_cache_dir() / "verified"
    return None if untrusted_folder(folder.parent) or untrusted_folder(folder) else folder


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        env = lmdb.open(str(path), subdir=False, readonly=True, lock=False, readahead=False, max_dbs=2)
    except lmdb.Error as exc:
        raise StoreCorruptError(f"{path} is not an LMDB store ({exc})") from None
    except OSError as exc:
        raise StoreError(f"cannot open the store {path}: {exc.strerror or exc}") from None
    try:
        meta_db = env.open_db(layout.META_DB, create=False)
        with env.begin() as txn:
            raw = txn.get(layout.MANIFEST_KEY, db=meta_db)
    except lmdb.Error:
        raise StoreCorruptError(f"{path} is not a nasbench store (its databases are missing)") from None
    finally:
        env.close()
    if raw is None:
        raise StoreCorruptError(f"{path} has no manifest: the build did not finish")
    try:
        manifest = json.loads(raw)
    except ValueError:
        raise StoreCorruptError(f"{path} has an unreadable manifest") from None
    version = manifest.get("schema_version") if isinstance(manifest, dict) else None
    if not isinstance(manifest, dict) or version != layout.SCHEMA_VERSION:
        raise StoreSchemaError(
            f"{path} uses store schema {version!r}; this version of nasbench reads schema {layout.SCHEMA_VERSION}. "
            "Rebuild the store with `nasbench build`."
        )
    return manifest


def _map_columns(path: Path, data: mmap.mmap, manifest: dict[str, Any]) -> dict[str, np.ndarray]:
    try:
        sizes = (int(manifest["cells"]), len(manifest["epochs"]), int(manifest["structures"]))
        arrays = manifest["arrays"]
    except (KeyError, TypeError, ValueError):
        raise StoreCorruptError(f"{path}: the manifest lacks cells, epochs, structures or arrays") from None
    if sizes[0] < 1:  # the writer refuses to write one: such a file was made by something else
        raise StoreCorruptError(f"{path}: the manifest says the store holds {sizes[0]} cells")
    columns = {}
    for name, (dtype, _) in layout.COLUMNS.items():
        spec = arrays.get(name)
        shape = layout.column_shape(name, *sizes)
        if not isinstance(spec, dict) or spec.get("shape") != list(shape) or spec.get("dtype") != np.dtype(dtype).str:
            raise StoreCorruptError(f"{path}: array {name!r} is missing or does not match the manifest")
        offset, count = spec.get("offset"), int(np.prod(shape))
        nbytes = count * np.dtype(dtype).itemsize
        if not isinstance(offset, int) or offset < 0 or offset + nbytes > len(data):
            raise StoreCorruptError(f"{path}: array {name!r} lies outside the file ({len(data)} bytes)")
        columns[name] = np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(shape)
    return columns


def checksum(array: np.ndarray) -> str:
    """xxh3-128 (hex) of a C-contiguous array's bytes: the manifest's per-array checksum."""
    return xxhash.xxh3_128_hexdigest(array.data.cast("B"))
