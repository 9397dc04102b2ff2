"""The cache folder of derived files (the key table, the space's hashes, prepared stores), and when to trust it.

Cached files are found by name, so a name alone must never decide what the process serves: a folder or a file
that another user can write could be swapped or edited after it was checked. A cached file is trusted only when
the open file itself (checked through its descriptor, so nothing can be swapped in between) is a regular file,
not a symbolic link, owned by this user or by root, and writable by no one else; and its folder is owned by this
user or root and writable by no one else (or sticky, as /tmp, where others can neither rename nor remove our
files). The project itself only ever replaces cached files by renaming new ones over them, so the bytes of a
trusted file never change while a process maps them.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO


def default_cache_dir() -> Path:
    """Where derived, reproducible files are cached: $NASBENCH_CACHE_DIR, else $XDG_CACHE_HOME/nasbench or
    ~/.cache/nasbench."""
    root = os.environ.get("NASBENCH_CACHE_DIR")
    if root:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nasbench"


def downloads_folder() -> Path:
    """Where downloaded files go by default (``nasbench download``, CIFAR-10 for training)."""
    return default_cache_dir() / "datasets"


def _owner_ok(uid: int) -> bool:
    return uid in (os.geteuid(), 0)


def untrusted_folder(folder: Path) -> str | None:
    """Why the files of ``folder`` cannot be trusted (see the module docstring), or None when they can. A folder
    that does not exist yet is trusted: it will be created by this process, privately."""
    try:
        info = os.stat(folder)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"the folder {folder} cannot be read ({exc.strerror or exc})"
    if not stat.S_ISDIR(info.st_mode):
        return f"{folder} is not a folder"
    if not _owner_ok(info.st_uid):
        return f"the folder {folder} belongs to another user (uid {info.st_uid})"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not info.st_mode & stat.S_ISVTX:
        return f"the folder {folder} is writable by other users (mode {stat.S_IMODE(info.st_mode):o})"
    return None


def untrusted_file(handle: BinaryIO | int, path: Path) -> str | None:
    """Why the open file ``handle`` (opened from ``path`` with ``open_cached``) cannot be trusted, or None."""
    info = os.fstat(handle if isinstance(handle, int) else handle.fileno())
    if not stat.S_ISREG(info.st_mode):
        return f"{path} is not a regular file"
    if not _owner_ok(info.st_uid):
        return f"{path} belongs to another user (uid {info.st_uid})"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{path} is writable by other users (mode {stat.S_IMODE(info.st_mode):o})"
    return untrusted_folder(path.parent)


def open_cached(path: Path) -> BinaryIO:
    """Open a cached file for reading without following a symbolic link at its name.

    Raises:
      FileNotFoundError: no such file.
      OSError: anything else, a symbolic link included (ELOOP).
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    return os.fdopen(fd, "rb")
