"""Write a Dataset as an LMDB store, atomically: nothing half-written is ever visible at the target path.

The store is written to a temporary file next to the target (``.<name>.building-<pid>``), synced, and renamed
over the target in one step. A build killed outright leaves only such a temporary file; the next build
removes the ones whose process is gone, so debris never blocks it.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
from pathlib import Path
from typing import Any

import lmdb
import numpy as np
import xxhash

from nasbench import __version__, canonical
from nasbench.errors import StoreError
from nasbench.store import layout

_TEMP_MARK = ".building-"


def derived_columns(dataset: layout.Dataset) -> dict[str, np.ndarray]:
    """Every column of the layout, derived from a dataset (indexes, counts)."""
    keys = np.ascontiguousarray(dataset.keys, dtype="<u8")
    hashes = np.ascontiguousarray(dataset.hashes, dtype=np.uint8).reshape(-1, 16)
    num_vertices = (keys >> np.uint64(canonical.VERTICES_SHIFT)).astype(np.uint8)
    bits = (keys >> np.uint64(canonical.BITS_SHIFT)) & np.uint64((1 << 21) - 1)
    num_edges = np.bitwise_count(bits).astype(np.uint8)
    hash_order = np.lexsort(hashes.T[::-1]).astype("<u4")
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
    }


def checksum(array: np.ndarray) -> str:
    """xxh3-128 of an array's bytes, hex."""
    return xxhash.xxh3_128_hexdigest(memoryview(np.ascontiguousarray(array)).cast("B"))


def build_manifest(dataset: layout.Dataset, columns: dict[str, np.ndarray]) -> dict[str, Any]:
    arrays = {
        name: {"dtype": array.dtype.str, "shape": list(array.shape), "xxh3_128": checksum(array)}
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
        "epochs": list(dataset.epochs),
        "repeats": layout.NUM_REPEATS,
        "metric_fields": list(layout.METRIC_FIELDS),
        "cells_per_vertices": {str(v): int(n) for v, n in enumerate(per_vertices) if n},
        "arrays": arrays,
        "checksum": overall,
    }


def write_store(dataset: layout.Dataset, path: str | os.PathLike[str], overwrite: bool = False) -> dict[str, Any]:
    """Write ``dataset`` to ``path`` atomically; returns the manifest.

    Raises:
      StoreError: the target exists and ``overwrite`` is false, or the folder is not writable.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise StoreError(f"{path} already exists; pass overwrite (--force) to replace it")
    if not path.parent.is_dir():
        raise StoreError(f"cannot write {path}: folder {path.parent} does not exist")
    remove_stale_temporaries(path)
    columns = derived_columns(dataset)
    manifest = build_manifest(dataset, columns)
    payload = sum(array.nbytes for array in columns.values())
    temp = path.parent / f".{path.name}{_TEMP_MARK}{os.getpid()}"
    try:
        env = lmdb.open(
            str(temp), subdir=False, map_size=int(payload * 1.25) + (64 << 20), max_dbs=2, lock=False, sync=False
        )
        try:
            meta_db = env.open_db(layout.META_DB)
            arrays_db = env.open_db(layout.ARRAYS_DB)
            for name, array in columns.items():
                with env.begin(write=True) as txn:
                    txn.put(name.encode(), memoryview(np.ascontiguousarray(array)).cast("B"), db=arrays_db)
            with env.begin(write=True) as txn:  # the manifest goes last: a store without one is unreadable
                txn.put(layout.MANIFEST_KEY, json.dumps(manifest, sort_keys=True).encode(), db=meta_db)
            env.sync(True)
        finally:
            env.close()
        with open(temp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, path)
        _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    return manifest


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


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
