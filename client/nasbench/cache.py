"""Where derived, reproducible files are cached: the search-space hash table, the key table, built stores.

A module of its own so that finding the folder imports nothing else (``nasbench.space.default_cache_dir`` is the
same function).
"""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """Where derived, reproducible files are cached: $NASBENCH_CACHE_DIR, else ~/.cache/nasbench."""
    root = os.environ.get("NASBENCH_CACHE_DIR")
    if root:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nasbench"
