"""Where derived, reproducible files are cached: the search-space hash table, the key table, built stores.

A module of its own so that finding the folder imports nothing else (``nasbench.space.default_cache_dir`` is the
same function).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def default_cache_dir() -> Path:
    """Where derived, reproducible files are cached: $NASBENCH_CACHE_DIR, else ~/.cache/nasbench."""
    root = os.environ.get("NASBENCH_CACHE_DIR")
    if root:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nasbench"


def write_atomically(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write a file so that readers see all of it or none: ``write(handle)`` fills a temporary file in the same
    folder, which is synced and renamed over ``path``; on any failure the temporary file is removed."""
    import tempfile  # only here: it imports more than this whole package

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
