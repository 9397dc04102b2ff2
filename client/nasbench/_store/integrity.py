"""Trusting a store file before serving from it: complete (never mapped past its end), and checksummed.

A store is read through a memory map, and reading a mapped page past the end of a truncated file kills the
process with SIGBUS: no exception, no message. So before LMDB or numpy map anything, ``required_size`` reads
LMDB's two meta pages with plain reads and checks that the file holds every page the newest one names.

Checksums (xxh3-128 per array, in the manifest) are verified with plain reads too (the pages pass through the
page cache, not this process's resident memory), once per *file identity*: device, inode, size, modification
and change times, and the manifest's checksum. A successful verification is recorded in the cache folder, so
later opens of the same unchanged file skip it; any write to the file (a flipped byte, a copy in place) changes
its change time, so the next open verifies again. ``nasbench verify`` always re-reads everything.

Usage::

    required_size(fd, os.fstat(fd).st_size, path)   # StoreCorruptError if the file is shorter
    verify_arrays(fd, manifest, path)                # StoreCorruptError naming the first bad array
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from nasbench._cache import open_cached, untrusted_file
from nasbench.errors import StoreCorruptError
from nasbench.files import write_atomically

_LMDB_MAGIC = 0xBEEFC0DE
_PAGE_HEADER = 16  # bytes before the meta struct in an LMDB page (64-bit builds)
_META_LAST_PAGE = _PAGE_HEADER + 120  # offset of mm_last_pg: magic, version, address, mapsize, two MDB_db
_META_PAGE_SIZE = _PAGE_HEADER + 24  # mm_dbs[FREE_DBI].md_pad holds the page size
_READ_CHUNK = 8 << 20
MAX_RECORDS = 1024  # verification records kept in the cache folder (see _forget_oldest)


def required_size(fd: int, file_size: int, label: object) -> int:
    """The bytes an LMDB file (open as ``fd``) must have for every page its newest meta page names.

    Raises:
      StoreCorruptError: the file is not an LMDB file, or is shorter than that (an interrupted copy).
    """
    if file_size == 0:
        raise StoreCorruptError(f"{label} is empty (0 bytes): not a store")
    wanted = _META_LAST_PAGE + 16
    first = os.pread(fd, wanted, 0)
    if len(first) < wanted or struct.unpack_from("<I", first, _PAGE_HEADER)[0] != _LMDB_MAGIC:
        raise StoreCorruptError(f"{label} is not an LMDB store ({file_size:,} bytes, no LMDB header)")
    page_size = struct.unpack_from("<I", first, _META_PAGE_SIZE)[0]
    if page_size < 512 or page_size & (page_size - 1):
        raise StoreCorruptError(f"{label} has a damaged LMDB header (page size {page_size})")
    metas = [struct.unpack_from("<QQ", first, _META_LAST_PAGE)]
    second = os.pread(fd, wanted, page_size)
    if len(second) == _META_LAST_PAGE + 16 and struct.unpack_from("<I", second, _PAGE_HEADER)[0] == _LMDB_MAGIC:
        metas.append(struct.unpack_from("<QQ", second, _META_LAST_PAGE))
    last_page, _ = max(metas, key=lambda meta: meta[1])  # the meta of the newest transaction
    needed: int = (last_page + 1) * page_size
    if file_size < needed:
        raise StoreCorruptError(
            f"{label} is truncated: {file_size:,} bytes where the store needs {needed:,} (an interrupted copy?); "
            "copy or build it again"
        )
    return needed


def identity(stat: os.stat_result, manifest: dict[str, Any]) -> str:
    """A name for this very file content: what any write would change, and the manifest's checksum."""
    fields = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, manifest.get("checksum"))
    return hashlib.sha256(repr(fields).encode()).hexdigest()[:32]


def verify_arrays(fd: int, manifest: dict[str, Any], label: object) -> None:
    """Re-hash every array of the open file ``fd`` (plain reads) and compare with the manifest.

    Raises:
      StoreCorruptError: naming the first array whose checksum differs (``label`` names the file).
    """
    for name, spec in manifest["arrays"].items():
        digest = xxhash.xxh3_128()
        offset, end = int(spec["offset"]), int(spec["offset"]) + _nbytes(spec)
        while offset < end:
            chunk = os.pread(fd, min(end - offset, _READ_CHUNK), offset)
            if not chunk:
                raise StoreCorruptError(f"{label}: array {name!r} ends past the end of the file")
            digest.update(chunk)
            offset += len(chunk)
        if digest.hexdigest() != spec["xxh3_128"]:
            raise StoreCorruptError(f"{label}: checksum mismatch in array {name!r}: the file is damaged")


def _nbytes(spec: dict[str, Any]) -> int:
    count = 1
    for dim in spec["shape"]:
        count *= int(dim)
    itemsize: int = np.dtype(spec["dtype"]).itemsize
    return count * itemsize


def is_recorded(folder: Path | None, name: str) -> bool:
    """True if a verification of the file identity ``name`` succeeded before and was recorded by this user or root
    (a record is a regular file, not a link, that no other user can have written: ``nasbench._cache``)."""
    if folder is None:
        return False
    try:
        with open_cached(folder / f"{name}.json") as handle:
            return untrusted_file(handle, folder / f"{name}.json") is None
    except OSError:
        return False


def record(folder: Path | None, name: str, path: Path) -> None:
    """Remember that the file identity ``name`` verified; silently skipped where the folder is not writable
    (the next open then verifies again: slower, never less safe)."""
    if folder is None:
        return
    with contextlib.suppress(OSError):
        write_atomically(folder / f"{name}.json", lambda handle: handle.write(json.dumps({"path": str(path)}).encode()))
        _forget_oldest(folder)


def _forget_oldest(folder: Path) -> None:
    """Keep the folder bounded: every new file identity (each rebuilt or copied store) adds a record, and records
    of files long gone would pile up. Past MAX_RECORDS, the least recently written half goes (forgetting costs
    one verification at a later open of such a file, never trust)."""
    with os.scandir(folder) as entries:
        records = [entry for entry in entries if entry.name.endswith(".json")]
    if len(records) <= MAX_RECORDS:
        return
    records.sort(key=lambda entry: entry.stat().st_mtime)
    for entry in records[: len(records) - MAX_RECORDS // 2]:
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
