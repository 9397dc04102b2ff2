"""Write a Dataset as an LMDB store, atomically: nothing half-written is ever visible at the target path.

The store is written to a temporary file next to the target (``.<name>.building-<pid>``), synced, and renamed
over the target in one step. A build killed outright leaves only such a temporary file; the next build
removes the ones whose process is gone, so debris never blocks it.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import mmap
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lmdb
import numpy as np
import xxhash

from nasbench import __version__, canonical, files
from nasbench._store import layout
from nasbench._store.reader import checksum
from nasbench.errors import StoreError

_TEMP_MARK = ".building-"
_PAGE_HEADER = 16  # LMDB's page header on 64-bit systems: an overflow value starts 16 bytes into its page


def derived_columns(dataset: layout.Dataset) -> dict[str, np.ndarray]:
    """Every column of the layout, derived from a dataset (indexes, counts)."""
    keys = np.ascontiguousarray(dataset.keys, dtype="<u8")
    hashes = np.ascontiguousarray(dataset.hashes, dtype=np.uint8).reshape(-1, 16)
    num_vertices, num_edges = (counts.astype(np.uint8) for counts in canonical.vertices_and_edges(keys))
    hash_order = np.lexsort(hashes.T[::-1]).astype("<u4")
    structure_codes, structure_of_row = np.unique(keys >> np.uint64(canonical.BITS_SHIFT), return_inverse=True)
    structure_rows = np.full((len(structure_codes), layout.LABEL_SLOTS), -1, dtype="<i4")
    labels = (keys & np.uint64((1 << canonical.BITS_SHIFT) - 1)).astype(np.int64)
    structure_rows[structure_of_row.ravel(), layout.BASE3_OF_LABELS[labels]] = np.arange(len(keys))
    return {
        "hashes": hashes,
        "keys": keys,
        "representatives": np.ascontiguousarray(dataset.representatives, dtype="<u8"),
        "parameters": np.ascontiguousarray(dataset.parameters, dtype="<i4"),
        "num_vertices": num_vertices,
        "num_edges": num_edges,
        "metrics": np.ascontiguousarray(dataset.metrics, dtype="<f8"),
        "key_order": np.argsort(keys, kind="stable").astype("<u4"),
        "hash_order": hash_order,
        "sorted_hash_prefix": layout.hash_prefix(hashes[hash_order]),
        "structure_codes": structure_codes.astype("<u8"),
        "structure_rows": structure_rows,
    }


def build_manifest(dataset: layout.Dataset, columns: dict[str, np.ndarray]) -> dict[str, Any]:
    arrays = {
        name: {"dtype": array.dtype.str, "shape": list(array.shape), "xxh3_128": checksum(np.ascontiguousarray(array))}
        for name, array in columns.items()
    }
    overall = xxhash.xxh3_128_hexdigest("".join(f"{n}:{a['xxh3_128']};" for n, a in sorted(arrays.items())).encode())
    per_vertices = np.bincount(columns["num_vertices"], minlength=canonical.MAX_VERTICES + 1)
    return {
        "schema_version": layout.SCHEMA_VERSION,
        "builder_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "source": dataset.source,
        "cells": dataset.cells,
        "structures": len(columns["structure_codes"]),
        "epochs": list(dataset.epochs),
        "repeats": layout.NUM_REPEATS,
        "metric_fields": list(layout.METRIC_FIELDS),
        "cells_per_vertices": {str(v): int(n) for v, n in enumerate(per_vertices) if n},
        "arrays": arrays,
        "checksum": overall,
    }


def check_target(path: str | os.PathLike[str], expected_bytes: int = 0, overwrite: bool = False) -> None:
    """Fail early, before any long work, when ``path`` cannot be written: it exists (and ``overwrite`` is false),
    its folder is missing or not writable, or has less free space than ``expected_bytes``.

    Raises:
      StoreError: naming the path and the reason.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise StoreError(f"{path} already exists; pass --force (overwrite=True) to replace it")
    folder = path.parent
    if not folder.is_dir():
        raise StoreError(f"cannot write {path}: folder {folder} does not exist")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.probe-", dir=folder)
    except OSError as exc:
        raise StoreError(f"cannot write {path}: folder {folder} is not writable ({exc.strerror})") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    free = shutil.disk_usage(folder).free
    if free < expected_bytes:
        raise StoreError(
            f"not enough free space to write {path}: the store needs about {expected_bytes / 1e6:,.0f} MB, "
            f"{folder} has {free / 1e6:,.0f} MB free"
        )


def write_store(dataset: layout.Dataset, path: str | os.PathLike[str], overwrite: bool = False) -> dict[str, Any]:
    """Write ``dataset`` to ``path`` atomically; returns the manifest.

    Raises:
      StoreError: the dataset has no cell, the target exists and ``overwrite`` is false, the folder is not
        writable, or the disk is (or becomes) full; nothing is left behind.
    """
    path = Path(path)
    if dataset.cells == 0:  # a store nothing can be looked up in is a mistake upstream, not a result
        raise StoreError(f"cannot write {path}: the dataset has no cell")
    columns = {name: np.ascontiguousarray(array) for name, array in derived_columns(dataset).items()}
    payload = sum(max(array.nbytes, layout.MIN_VALUE_SIZE) for array in columns.values())
    check_target(path, payload + (4 << 20), overwrite)
    remove_stale_temporaries(path)
    manifest = build_manifest(dataset, columns)
    temp = path.parent / f".{path.name}{_TEMP_MARK}{os.getpid()}"
    try:
        _write(temp, path, columns, manifest, payload)
    except (lmdb.Error, OSError) as exc:
        raise StoreError(_write_failure(path, exc, payload)) from None
    finally:
        with contextlib.suppress(OSError):  # a clean-up error never hides the real one
            temp.unlink()
    return manifest


def _write_failure(path: Path, exc: BaseException, payload: int) -> str:
    free = shutil.disk_usage(path.parent).free
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    if (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or free < payload:
        return (
            f"writing {path} failed: no space left on the device ({reason}); the store needs about "
            f"{payload / 1e6:,.0f} MB, {path.parent} has {free / 1e6:,.0f} MB free; nothing was written"
        )
    return f"writing {path} failed: {reason}; nothing was written"


def _write(temp: Path, path: Path, columns: dict[str, np.ndarray], manifest: dict[str, Any], payload: int) -> None:
    """Write the store to ``temp``, sync it and rename it over ``path``."""
    map_size = int(payload * 1.25) + (64 << 20)
    with _environment(temp, map_size) as (env, arrays_db, _):
        for name, array in columns.items():  # one value per array, always in overflow pages
            value: memoryview | bytes = array.data.cast("B")
            if array.nbytes < layout.MIN_VALUE_SIZE:
                value = bytes(value) + bytes(layout.MIN_VALUE_SIZE - array.nbytes)
            with env.begin(write=True) as txn:
                txn.put(name.encode(), value, db=arrays_db)
        page_size = env.stat()["psize"]
    offsets = locate_arrays(temp, columns, page_size)
    for name, offset in offsets.items():
        manifest["arrays"][name]["offset"] = offset
    with _environment(temp, map_size) as (env, _, meta_db), env.begin(write=True) as txn:
        # the manifest goes last: a store without one is unreadable; its transaction moves no array page
        txn.put(layout.MANIFEST_KEY, json.dumps(manifest, sort_keys=True).encode(), db=meta_db)
    if locate_arrays(temp, columns, page_size, expected=offsets) != offsets:
        raise StoreError("the arrays moved while the manifest was written")  # LMDB never moves live pages
    files.replace_atomically(temp, path)


@contextlib.contextmanager
def _environment(path: Path, map_size: int) -> Iterator[tuple[lmdb.Environment, Any, Any]]:
    env = lmdb.open(str(path), subdir=False, map_size=map_size, max_dbs=2, lock=False, sync=False)
    try:
        yield env, env.open_db(layout.ARRAYS_DB), env.open_db(layout.META_DB)
        env.sync(True)
    finally:
        env.close()


def locate_arrays(
    path: Path, columns: dict[str, np.ndarray], page_size: int, expected: dict[str, int] | None = None
) -> dict[str, int]:
    """Byte offset of every array in the LMDB file: an overflow page's data (after its 16-byte header) that
    equals the array byte for byte. Readers map these offsets directly (py-lmdb's ``get`` would fault in every
    page of a value); the full comparison makes a wrong offset impossible.

    With ``expected``, only those offsets are checked (the result equals ``expected`` when they all hold).
    """
    found: dict[str, int] = {}
    with (
        open(path, "rb") as handle,
        mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data,
        memoryview(data) as view,
    ):
        for name, array in columns.items():
            wanted = array.data.cast("B")
            size = len(wanted)
            candidates = (
                [expected[name]] if expected is not None else range(_PAGE_HEADER, len(data) - size + 1, page_size)
            )
            head = bytes(wanted[:64])
            taken = set(found.values())  # equal arrays (keys and representatives, usually) each have their own copy
            for offset in candidates:
                if offset in taken:
                    continue
                if data[offset : offset + len(head)] == head and view[offset : offset + size] == wanted:
                    found[name] = offset
                    break
            else:
                raise StoreError(f"could not locate array {name!r} in the written store")
    return found


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove temporary files of earlier builds of ``path`` whose process no longer runs."""
    removed = []
    for candidate in path.parent.glob(f".{path.name}{_TEMP_MARK}*"):
        pid_text = candidate.name.rsplit(_TEMP_MARK, 1)[-1]
        if pid_text.isdigit() and not _process_alive(int(pid_text)):
            with contextlib.suppress(FileNotFoundError):
                candidate.unlink()
            removed.append(candidate)
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # an earlier build in this very process was interrupted
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
