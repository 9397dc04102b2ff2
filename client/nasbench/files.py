"""Writing files so that readers see all of a file or none of it, and a crash or a full disk loses nothing.

The one helper every part of the project writes through (stores, tables, reports, caches, downloads): the bytes go
to a temporary file beside the target, which is synced, renamed over the target and followed by a sync of the
folder (so the rename itself survives a power loss). On any error the temporary file is removed and the target
is untouched.

Usage::

    from nasbench import files

    files.write_atomically(path, lambda handle: handle.write(data))
    with files.atomic_path(path) as temp:      # for writers that want a path (matplotlib, pyarrow, LMDB)
        figure.savefig(temp)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from nasbench.errors import NasbenchError

__all__ = ["atomic_path", "exclusive", "replace_atomically", "sync_folder", "write_atomically"]


def sync_folder(folder: str | os.PathLike[str]) -> None:
    """fsync a folder, so that renames and new entries in it are durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on folders; the rename is still atomic
        pass
    finally:
        os.close(fd)


def replace_atomically(temp: str | os.PathLike[str], path: str | os.PathLike[str]) -> None:
    """Sync the finished file ``temp``, rename it over ``path`` and sync the folder."""
    with open(temp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(temp, path)
    sync_folder(Path(path).parent)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, mode: int = 0o644) -> Iterator[Path]:
    """A fresh temporary path beside ``path`` to write the whole file to; when the block ends without an error the
    file is synced and renamed over ``path`` (permissions ``mode`` less the umask), otherwise it is removed.

    The folder is created if needed. The temporary name starts with a dot and ends in ``.partial``, so globs for
    the real files never see it.
    """
    import tempfile  # only here: it imports more than the rest of this module

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(fd)
    temp = Path(name)
    try:
        yield temp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, mode & ~umask)
        replace_atomically(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise


def write_atomically(path: str | os.PathLike[str], write: Callable[[BinaryIO], object], *, mode: int = 0o644) -> None:
    """Write a file through ``write(handle)`` so that readers see all of it or none (see ``atomic_path``)."""
    with atomic_path(path, mode=mode) as temp, open(temp, "wb") as handle:
        write(handle)


@contextlib.contextmanager
def exclusive(lock_path: Path, waiting_message: str, error: type[NasbenchError]) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (an empty file, removed on release) for the block: processes sharing a
    folder (replicas on one volume) prepare a file once; the others wait (saying so in a warning: ``waiting_message``
    names what they wait for), then find the result.

    Raises:
      error: the lock file cannot be created (its message names it).
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no cross-process exclusion
        yield
        return
    waited = False
    while True:
        try:
            handle = open(lock_path, "a+b")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise error(f"cannot create the lock file {lock_path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not waited:
                import logging

                logging.getLogger("nasbench").warning(
                    f"{waiting_message}: waiting for it to finish", extra={"lock": str(lock_path)}
                )
                waited = True
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:  # the holder we waited for removed the file: lock the new one instead
            current = os.stat(lock_path).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(handle.fileno()).st_ino:
            break
        handle.close()
    with handle:
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.unlink(lock_path)  # while still locked: a waiter then sees a stale inode and retries
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
