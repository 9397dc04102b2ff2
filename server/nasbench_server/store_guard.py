"""Answers only from store bytes that cannot change while they are read: a read lease on the file, or a private
sealed copy; neither only when the operator says so.

A store written in place under a running server (``dd conv=notrunc``, ``rsync --inplace``, ``cp`` onto it)
would otherwise be read half old, half new until a watcher noticed. ``--store-guard`` chooses how that is made
impossible (Linux):

- ``lease``: a read lease on the file (``fcntl(F_SETLEASE, F_RDLCK)``). A writer's ``open`` (or ``truncate``)
  then waits until the server has stopped answering, waited for the calls computing, and let go (the kernel's
  ``lease-break-time``, 45 s by default, bounds the wait), and every answer is sent only if the lease was held,
  unbroken, from before it was computed until after. Once the writer is done the server takes the lease again,
  verifies the checksums against the manifest it opened, and answers again only if they hold. Needs the file's
  owner or CAP_LEASE, a local filesystem (where every write goes through this kernel) and no writer when it
  starts.
- ``copy``: a private copy in memory (a sealed memfd: nothing can write, shrink or grow it), verified as copied
  and shared by the workers of ``--workers N``. Costs the store's size in shared memory and about 0.4 s per
  350 MB at start. Changes to the file are logged; the copy keeps being served until a restart.
- ``auto`` (default): ``lease`` where it can be taken, else ``copy``, saying why.
- ``watch``: neither: the file is served as it is, a change to it stops the answers within about a second
  (``app._watch_store``), and answers in that second may come from changed bytes. Only for stores nobody writes
  in place (replace them by rename: ``nasbench build`` does).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from stat import S_ISREG

from nasbench._engine.engine import Engine
from nasbench.errors import ConfigurationError, StoreError, StoreNotFoundError

log = logging.getLogger("nasbench.server")

MODES = ("auto", "lease", "copy", "watch")
BREAK_SIGNAL = signal.SIGIO  # what the kernel sends the lease holder when a writer opens the file


def _lease_break_time() -> float:
    try:
        return float(Path("/proc/sys/fs/lease-break-time").read_text())
    except (OSError, ValueError):
        return 45.0  # the kernel's default


# how long a server lets a writer wait while the calls computing finish: less than the kernel waits for it
LEASE_WAIT_S = max(1.0, _lease_break_time() - 5.0)
_SEALS = fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW
# filesystems on which every write to a file goes through this kernel, so that it breaks a lease
# (fstatfs f_type): ext2/3/4, xfs, btrfs, tmpfs, f2fs, overlayfs (a container's view; see docs/reliability.md),
# zfs, bcachefs
_LOCAL_FILESYSTEMS = {
    0xEF53: "ext4",
    0x58465342: "xfs",
    0x9123683E: "btrfs",
    0x01021994: "tmpfs",
    0xF2F52010: "f2fs",
    0x794C7630: "overlayfs",
    0x2FC12FC1: "zfs",
    0xCA451A4E: "bcachefs",
}


class Guard:
    """What keeps the bytes behind answers unchanged: ``token()`` before computing an answer, ``intact(token)``
    after; an answer whose check fails is not sent."""

    mode = "watch"

    def token(self) -> int:
        return 0

    def intact(self, token: int) -> bool:
        return True


class SealedCopy(Guard):
    """The store is a sealed memfd: its bytes cannot change. ``source`` is the file it was copied from, as it was
    then (None for a copy made by another process)."""

    mode = "copy"

    def __init__(self, fd: int, source: tuple[Path, os.stat_result] | None = None) -> None:
        self.fd = fd
        self.source = source

    def source_changed(self) -> bool:
        """True (once per change) when the file copied from is not what it was when copied."""
        if self.source is None:
            return False
        path, before = self.source
        try:
            now = os.stat(path)
        except OSError:
            return False
        fields = ("st_dev", "st_ino", "st_size", "st_mtime_ns", "st_ctime_ns")
        if all(getattr(now, field) == getattr(before, field) for field in fields):
            return False
        self.source = (path, now)
        return True


class Lease(Guard):
    """A read lease on the store file (``fd`` open read-only)."""

    mode = "lease"

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.generation = 0  # one more at every break: answers computed across a break are not sent

    def take(self) -> None:
        """Raises OSError: EAGAIN while the file is open for writing, EACCES without ownership or CAP_LEASE."""
        fcntl.fcntl(self.fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)

    def held(self) -> bool:
        """True while the lease is held and no writer waits for it (a pending break reads F_UNLCK)."""
        return fcntl.fcntl(self.fd, fcntl.F_GETLEASE) == fcntl.F_RDLCK

    def broken(self) -> None:
        """A writer waits: answers computed from now on, or still computing, are not sent."""
        self.generation += 1

    def release(self) -> None:
        fcntl.fcntl(self.fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)

    def token(self) -> int:
        return self.generation

    def intact(self, token: int) -> bool:
        return token == self.generation and self.held()


def open_guarded(path: Path, mode: str, verify: bool | None) -> tuple[Engine, Guard]:
    """The engine over the store at ``path`` and the guard of its bytes, as ``mode`` says (see the module).

    ``BREAK_SIGNAL`` must be handled already: its default action ends the process, and a lease makes the
    kernel send it.

    Raises:
      ConfigurationError: ``lease`` asked for and impossible (the reason named), or an unknown mode.
      StoreError: as ``Store.open``.
    """
    if mode not in MODES:
        raise ConfigurationError(f"unknown store guard {mode!r}: expected one of {', '.join(MODES)}")
    if mode == "watch":
        log.warning(
            "store guard 'watch': a store written in place is noticed within a second, and answers in that "
            "second may come from changed bytes; replace the store by renaming a new file over it",
            extra={"store": str(path)},
        )
        return Engine.open(path, verify=verify), Guard()
    fd = _open(path)
    try:
        if _is_sealed(fd):  # already a private copy (the supervisor's, for its workers)
            return _engine(fd, path, verify=True), SealedCopy(fd)
        if mode in ("auto", "lease"):
            reason = _lease_refused(fd)
            if reason is None:
                return _engine(fd, path, verify=verify), Lease(fd)
            if mode == "lease":
                raise ConfigurationError(f"--store-guard lease: cannot take a read lease on {path}: {reason}")
            log.warning(
                "no read lease on the store: serving a private copy of it instead",
                extra={"store": str(path), "reason": reason},
            )
        source = (path, os.fstat(fd))
        copy = private_copy(fd, path)
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)  # the copy holds the bytes now
    try:
        return _engine(copy, path, verify=True), SealedCopy(copy, source)
    except BaseException:
        os.close(copy)
        raise


def probe(path: Path, mode: str) -> str:
    """For the supervisor of several workers: ``lease`` if each worker can take its own lease (``auto`` or
    ``lease``), else ``copy`` (``auto`` or ``copy``), or ``watch``.

    Raises:
      ConfigurationError: ``lease`` asked for and impossible.
    """
    if mode not in ("auto", "lease"):
        return mode
    fd = _open(path)
    try:
        with _ignored(BREAK_SIGNAL):
            reason = _lease_refused(fd)
            if reason is None:
                fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
    finally:
        os.close(fd)
    if reason is None:
        return "lease"
    if mode == "lease":
        raise ConfigurationError(f"--store-guard lease: cannot take a read lease on {path}: {reason}")
    log.warning("no read lease on the store: the workers serve a private copy of it", extra={"reason": reason})
    return "copy"


def copy_file(path: Path) -> int:
    """A sealed memfd holding the store at ``path`` (for the workers of a supervisor to share)."""
    fd = _open(path)
    try:
        return private_copy(fd, path)
    finally:
        os.close(fd)


def private_copy(fd: int, path: Path) -> int:
    """A sealed memfd holding the bytes of the open file ``fd`` (nothing can write, shrink or grow it)."""
    size = os.fstat(fd).st_size
    copy = os.memfd_create(f"nasbench-store:{path.name}", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        offset = 0
        while offset < size:
            sent = os.sendfile(copy, fd, offset, size - offset)
            if not sent:
                break  # the file shrank meanwhile: the copy is checked (length, checksums) when opened
            offset += sent
        fcntl.fcntl(copy, fcntl.F_ADD_SEALS, _SEALS | fcntl.F_SEAL_SEAL)
    except BaseException:
        os.close(copy)
        raise
    log.info("serving a private copy of the store", extra={"store": str(path), "bytes": offset})
    return copy


def _open(path: Path) -> int:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise StoreNotFoundError(f"no store at {path}") from None
    except OSError as exc:
        raise StoreError(f"cannot open the store {path}: {exc.strerror}") from None
    if not S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise StoreError(f"{path} is not a regular file; a store is a single LMDB file")
    return fd


def _engine(fd: int, path: Path, verify: bool | None) -> Engine:
    """The engine over the file open as ``fd`` (through /proc, so the bytes guarded are the bytes read), named by
    ``path`` in its messages."""
    engine = Engine.open(f"/proc/self/fd/{fd}", verify=verify)
    engine.store.path = path
    return engine


def _is_sealed(fd: int) -> bool:
    try:
        return fcntl.fcntl(fd, fcntl.F_GET_SEALS) & _SEALS == _SEALS
    except OSError:  # not a memfd
        return False


def _lease_refused(fd: int) -> str | None:
    """Take a read lease on ``fd``; None once held, else why it cannot be."""
    filesystem = _filesystem(fd)
    if filesystem is not None and filesystem not in _LOCAL_FILESYSTEMS:
        return (
            f"the file is on a filesystem (type 0x{filesystem:x}) where writes may not go through this kernel "
            "(a network or FUSE filesystem): they would not break a lease"
        )
    try:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM):
            return (
                f"the file belongs to uid {os.fstat(fd).st_uid} and this server runs as uid {os.geteuid()} "
                "without CAP_LEASE (make the server's user own the file, or grant CAP_LEASE)"
            )
        if exc.errno == errno.EAGAIN:
            return "another process has the file open for writing"
        return f"the kernel refuses leases here ({exc.strerror})"
    return None


def _filesystem(fd: int) -> int | None:
    """The filesystem type of ``fd`` (fstatfs's f_type), or None where it cannot be read."""
    buffer = ctypes.create_string_buffer(256)  # struct statfs is 120 bytes on 64-bit Linux; f_type comes first
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.fstatfs(fd, buffer) != 0:
            return None
    except (OSError, AttributeError):
        return None
    return ctypes.c_long.from_buffer(buffer).value & 0xFFFFFFFF


@contextlib.contextmanager
def _ignored(signum: int) -> Iterator[None]:
    """``signum`` ignored inside the block (a lease taken only to see whether it can be)."""
    previous = signal.signal(signum, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signum, previous)
