"""Fetch the original NAS-Bench-101 files (or any file at a URL) into a folder: resumable, verified, atomic.

Usage::

    from nasbench_builder import download

    path = download.download("only108")  # ~/.cache/nasbench/datasets/nasbench_only108.tfrecord, about 499 MB
    path = download.download("full", "/scratch/nasbench", url="https://mirror.example.org/nasbench_full.tfrecord")
    path = download.download("file:///shared/subset.tfrecord", "/tmp", sha256="9f86d0...")  # any URL, any digest
    path = download.download(CIFAR10.url, md5=CIFAR10.md5, file_name=CIFAR10.file_name)  # published with an MD5

A download streams into ``<file>.partial`` next to the target. An interrupted download is resumed with an HTTP
``Range`` request, by the automatic retries and by running the same call again (a server without Range support
answers 200, and the download starts over cleanly). The SHA-256 of the whole file (the pinned official digest of
a named dataset, or the one passed; or the MD5 passed, for a file whose publisher gives only that) must match
before the file is renamed into place, so a file at the target path is always complete and verified. Only the
standard library is used (urllib, hashlib); a tqdm bar is shown on a terminal when tqdm is installed, periodic
log lines otherwise.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import logging
import os
import re
import shutil
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from nasbench import __version__, files
from nasbench._cache import downloads_folder
from nasbench.errors import DownloadError
from nasbench.model import cifar

log = logging.getLogger("nasbench.download")


@dataclass(frozen=True)
class DatasetFile:
    """One official file of NAS-Bench-101 (google-research/nasbench, README: "Download the dataset")."""

    name: str  # what users type: "only108", "full"
    file_name: str
    url: str
    sha256: str
    size: str  # approximate, for messages (the digest, not the size, is what is checked)
    records: int
    epochs: tuple[int, ...]


DATASETS: dict[str, DatasetFile] = {
    "only108": DatasetFile(
        name="only108",
        file_name="nasbench_only108.tfrecord",
        url="https://storage.googleapis.com/nasbench/nasbench_only108.tfrecord",
        sha256="4c39c3936e36a85269881d659e44e61a245babcb72cb374eacacf75d0e5f4fd1",
        size="about 499 MB",
        records=1_270_872,
        epochs=(108,),
    ),
    "full": DatasetFile(
        name="full",
        file_name="nasbench_full.tfrecord",
        url="https://storage.googleapis.com/nasbench/nasbench_full.tfrecord",
        sha256="3d64db8180fb1b0207212f9032205064312b6907a3bbc81eabea10db2f5c7e9c",
        size="about 1.95 GB",
        records=5_083_488,
        epochs=(4, 12, 36, 108),
    ),
}


@dataclass(frozen=True)
class PublishedFile:
    """A file published with an MD5 only: CIFAR-10, which ``nasbench train`` reads."""

    name: str
    file_name: str
    url: str
    md5: str
    size: str


# https://www.cs.toronto.edu/~kriz/cifar.html: the python version and the MD5 published beside it
CIFAR10 = PublishedFile(
    name="cifar10",
    file_name=cifar.ARCHIVE_NAME,
    url=cifar.URL,
    md5=cifar.MD5,
    size="about 163 MB",
)
DEFAULT_CHUNK_BYTES = 1 << 20  # read and write unit; at most this much is fetched twice after a dropped connection
DEFAULT_TIMEOUT_S = 60.0  # per connect and per read, not for the whole file
DEFAULT_RETRIES = 3  # consecutive attempts that bring no new byte; an attempt that makes progress resets the count
_BACKOFF_S = (1.0, 4.0, 15.0)
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_MD5 = re.compile(r"^[0-9a-fA-F]{32}$")
_DIGEST_NAMES = {"sha256": "SHA-256", "md5": "MD5"}
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")

Progress = Callable[[int, "int | None"], None]  # (bytes in the file so far, full size if known)


@dataclass(frozen=True)
class _Source:
    url: str
    file_name: str
    digest: str
    algorithm: str = "sha256"  # a hashlib name: "sha256", or "md5" where the publisher gives only that

    @property
    def digest_name(self) -> str:
        return _DIGEST_NAMES[self.algorithm]


def _resolve(
    dataset: str, url: str | None, sha256: str | None, md5: str | None = None, file_name: str | None = None
) -> _Source:
    if sha256 is not None and not _SHA256.match(sha256):
        raise DownloadError(f"not a SHA-256 digest (64 hex digits): {sha256!r}")
    if md5 is not None and not _MD5.match(md5):
        raise DownloadError(f"not an MD5 digest (32 hex digits): {md5!r}")
    known = DATASETS.get(dataset)
    if known is not None:
        return _Source(url or known.url, known.file_name, (sha256 or known.sha256).lower())
    if urllib.parse.urlsplit(dataset).scheme not in ("http", "https", "file"):
        raise DownloadError(f"unknown dataset {dataset!r}: expected one of {', '.join(DATASETS)}, or a URL")
    if url is not None:
        raise DownloadError("pass either a URL or url=, not both")
    if sha256 is None and md5 is None:
        raise DownloadError(f"{dataset}: pass the file's SHA-256 (sha256=, --sha256) so the download can be verified")
    name = file_name or urllib.parse.unquote(urllib.parse.urlsplit(dataset).path.rstrip("/").rsplit("/", 1)[-1])
    if name in ("", ".", "..") or "\\" in name or "/" in name:
        raise DownloadError(f"{dataset}: the URL names no file")
    if sha256 is not None:
        return _Source(dataset, name, sha256.lower())
    assert md5 is not None
    return _Source(dataset, name, md5.lower(), "md5")


def download(
    dataset: str,
    folder: str | os.PathLike[str] | None = None,
    *,
    url: str | None = None,
    sha256: str | None = None,
    md5: str | None = None,
    file_name: str | None = None,
    progress: Progress | Literal["auto"] | None = "auto",
    retries: int = DEFAULT_RETRIES,
    timeout: float = DEFAULT_TIMEOUT_S,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    cancel: threading.Event | None = None,
) -> Path:
    """Download a dataset file into ``folder`` and verify it; returns its path.

    A file already at the target path is checked against the digest and returned (no network access).

    Args:
      dataset: ``"only108"`` or ``"full"`` (the official files), or an http(s):// or file:// URL.
      folder: where the file goes; default: ``<cache folder>/datasets`` ($NASBENCH_CACHE_DIR or ~/.cache/nasbench).
      url: a mirror of the named dataset (http, https or file://); the file keeps its official name.
      sha256: the digest the file must have; default: the official digest of the named dataset (required for a
        URL). Pass it for a mirror of a different file.
      progress: ``"auto"`` (a tqdm bar on a terminal, log lines on logger ``nasbench.download`` otherwise),
        None, or a callable ``progress(bytes_done, total_bytes_or_None)`` (with a ``close()`` method if needed).
      retries: attempts in a row that may fail without bringing a new byte (dropped connections, timeouts, HTTP
        5xx), each resuming where the last stopped; an attempt that makes progress resets the count.
      timeout: seconds for the connection and for each read.
      chunk_bytes: the read and write unit.
      cancel: set it (from another thread) to stop the download; the partial file is kept for a later resume.

    Raises:
      DownloadError: unknown dataset, network failure, HTTP error status, truncated body after the retries,
        checksum mismatch (the bad file removed), full disk or another write failure; never leaves a file at the
        target path unless it is complete and verified.
    """
    source = _resolve(dataset, url, sha256, md5, file_name)
    folder = Path(folder) if folder is not None else downloads_folder()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create the folder {folder}: {exc.strerror or exc}") from None
    target = folder / source.file_name
    lock = folder / f".{source.file_name}.lock"
    with files.exclusive(lock, f"another process is downloading {target}", DownloadError):
        if target.exists():
            actual = _file_digest(target, source.algorithm)
            if actual != source.digest:
                raise DownloadError(
                    f"{target} exists but its {source.digest_name} is {actual}, expected {source.digest}: "
                    "remove it (or pass its digest) and run again"
                )
            return target
        reporter = _auto_progress(source.file_name) if isinstance(progress, str) else progress
        try:
            _Transfer(source, target, reporter, timeout, chunk_bytes, cancel).run(retries)
        finally:
            close = getattr(reporter, "close", None)
            if close is not None:
                close()
    return target


class _Transient(Exception):
    """A failure worth retrying (the connection dropped, a timeout, HTTP 5xx); the message says which."""


class _Transfer:
    """One download: the partial file, its running digest, and the attempts to complete it."""

    def __init__(
        self,
        source: _Source,
        target: Path,
        progress: Progress | None,
        timeout: float,
        chunk_bytes: int,
        cancel: threading.Event | None,
    ) -> None:
        self.source = source
        self.target = target
        self.partial = target.with_name(target.name + ".partial")
        self.progress = progress
        self.timeout = timeout
        self.chunk_bytes = chunk_bytes
        self.cancel = cancel
        self.total: int | None = None
        self.size, self.hasher = self._hash_partial()
        self.contacted = False  # the server answered once: later connection errors are worth retrying

    def _hash_partial(self) -> tuple[int, Any]:
        """The digest of what a previous attempt left, so resuming never reads the file twice."""
        hasher = hashlib.new(self.source.algorithm)
        try:
            size = self.partial.stat().st_size
        except FileNotFoundError:
            return 0, hasher
        with open(self.partial, "rb") as handle:
            left = size
            while left and (chunk := handle.read(min(8 << 20, left))):
                hasher.update(chunk)
                left -= len(chunk)
        if size:
            log.info("resuming a partial download", extra={"path": str(self.partial), "bytes": size})
        return size, hasher

    def run(self, retries: int) -> None:
        failures = 0
        while True:
            before = self.size
            try:
                self._attempt()
                break
            except _Transient as exc:
                failures = 0 if self.size > before else failures + 1
                if failures > retries:
                    if self.size == 0:
                        with contextlib.suppress(FileNotFoundError):
                            self.partial.unlink()
                        raise DownloadError(f"{self.source.url}: {exc}") from None
                    raise DownloadError(
                        f"{self.source.url}: {exc} ({self._kept()}; run the same command again to resume)"
                    ) from None
                delay = 0.0 if failures == 0 else _BACKOFF_S[min(failures, len(_BACKOFF_S)) - 1]
                log.warning(
                    "download interrupted, resuming",
                    extra={"reason": str(exc), "bytes": self.size, "retry_in_s": delay, "url": self.source.url},
                )
                if self.cancel is None:
                    time.sleep(delay)
                elif self.cancel.wait(delay):
                    raise DownloadError(f"{self.source.url}: download cancelled ({self._kept()})") from None
        self._finish()

    def _kept(self) -> str:
        of = f" of {self.total:,}" if self.total else ""
        return f"{self.size:,}{of} bytes kept in {self.partial}"

    def _restart(self, reason: str) -> None:
        if self.size:
            log.warning("starting the download over", extra={"reason": reason, "discarded_bytes": self.size})
        self.size, self.hasher = 0, hashlib.new(self.source.algorithm)
        with contextlib.suppress(FileNotFoundError):
            self.partial.unlink()

    def _attempt(self) -> None:
        with self._open() as stream:
            if stream is None:  # the server says the partial file is already complete (416)
                return
            self._check_space()
            self._copy(stream)
        if self.total is not None and self.size < self.total:
            raise _Transient(f"the connection closed after {self.size:,} of {self.total:,} bytes")

    @contextlib.contextmanager
    def _open(self) -> Iterator[IO[bytes] | None]:
        """The body from byte ``self.size`` on; sets ``self.total``. Restarts (truncates) when the server cannot
        resume; yields None when the partial file already holds the whole file."""
        parts = urllib.parse.urlsplit(self.source.url)
        if parts.scheme == "file":
            path = urllib.request.url2pathname(parts.path)
            try:
                handle = open(path, "rb")  # noqa: SIM115 - closed below
            except OSError as exc:
                raise DownloadError(f"{self.source.url}: cannot read {path}: {exc.strerror or exc}") from None
            with handle:
                self.total = os.fstat(handle.fileno()).st_size
                if self.size > self.total:
                    self._restart(f"the partial file is larger than {path}")
                handle.seek(self.size)
                yield handle
            return
        if parts.scheme not in ("http", "https"):
            raise DownloadError(f"{self.source.url}: only http://, https:// and file:// URLs can be downloaded")
        headers = {"User-Agent": f"nasbench/{__version__}", "Accept-Encoding": "identity"}
        if self.size:
            headers["Range"] = f"bytes={self.size}-"
        try:
            response = urllib.request.urlopen(  # the scheme is checked above
                urllib.request.Request(self.source.url, headers=headers), timeout=self.timeout
            )
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code == 416 and self.size:  # nothing after byte N: complete, or a different file
                match = re.match(r"^bytes \*/(\d+)$", exc.headers.get("Content-Range", ""))
                if match is None or int(match.group(1)) != self.size:
                    self._restart("the server refused the resume range")
                    raise _Transient("the server refused the resume range; starting over") from None
                response = None  # the partial file already holds the whole file
            elif exc.code >= 500 or exc.code == 429:
                raise _Transient(f"HTTP {exc.code} {exc.reason}") from None
            else:
                raise DownloadError(f"{self.source.url}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or exc
            if self.contacted:
                raise _Transient(f"connection failed: {reason}") from None
            name = self.source.file_name
            raise DownloadError(
                f"cannot reach {self.source.url}: {reason}; download it elsewhere (curl -fLO {self.source.url}) and "
                f"copy it to {self.target} or run `nasbench build {name} {Path(name).stem}.lmdb`, "
                "or pass --url with a mirror (http, https or file://)"
            ) from None
        self.contacted = True
        if response is None:
            self.total = self.size
            yield None
            return
        with response:
            self._accept(response.status, response.headers)
            yield response

    def _accept(self, status: int, headers: Any) -> None:
        """Check the answer to a (range) request and set ``self.total``; restart when resuming is impossible."""
        length = headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if status == 206:
            match = _CONTENT_RANGE.match(headers.get("Content-Range", ""))
            if match is None or int(match.group(1)) != self.size:
                self._restart("the server answered another byte range than asked")
                raise _Transient("the server answered another byte range than asked; starting over")
            self.total = int(match.group(3)) if match.group(3) != "*" else None
            if self.total is None and length is not None:
                self.total = self.size + length
            return
        if status != 200:
            raise DownloadError(f"{self.source.url}: unexpected HTTP {status}")
        if self.size:
            self._restart("the server does not support resuming (no Range support)")
        self.total = length

    def _check_space(self) -> None:
        if self.total is None:
            return
        needed = self.total - self.size
        free = shutil.disk_usage(self.partial.parent).free
        if free < needed:
            raise DownloadError(
                f"not enough disk space in {self.partial.parent}: {self.source.file_name} needs {needed / 1e6:,.0f} "
                f"MB more, {free / 1e6:,.0f} MB free; free some space or choose another folder (--dir)"
            )

    def _copy(self, stream: IO[bytes]) -> None:
        try:
            handle = open(self.partial, "ab")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise DownloadError(f"cannot write {self.partial}: {exc.strerror or exc}") from None
        # read1: what has arrived, up to a chunk, so progress and cancellation do not wait for a whole chunk
        read = stream.read1 if isinstance(stream, http.client.HTTPResponse) else stream.read
        try:
            with handle:
                while True:
                    if self.cancel is not None and self.cancel.is_set():
                        raise DownloadError(f"{self.source.url}: download cancelled ({self._kept()})")
                    try:
                        chunk = read(self.chunk_bytes)
                    except (OSError, http.client.HTTPException) as exc:  # reset, timeout, incomplete chunk
                        raise _Transient(f"the connection failed after {self.size:,} bytes: {exc}") from None
                    if not chunk:
                        break
                    handle.write(chunk)
                    handle.flush()  # what was received is on disk before it counts (resume after a crash)
                    self.hasher.update(chunk)
                    self.size += len(chunk)
                    if self.progress is not None:
                        self.progress(self.size, self.total)
        except OSError as exc:
            self._write_failed(exc)

    def _write_failed(self, exc: OSError) -> None:
        with contextlib.suppress(OSError):
            self.partial.unlink()
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            need = f"{self.total / 1e6:,.0f} MB" if self.total else "the whole file"
            raise DownloadError(
                f"disk full writing {self.partial} after {self.size:,} bytes: the partial file was removed; "
                f"{self.source.file_name} needs {need}: free some space or choose another folder (--dir)"
            ) from None
        reason = exc.strerror or exc
        raise DownloadError(f"cannot write {self.partial}: {reason}; the partial file was removed") from None

    def _finish(self) -> None:
        actual = self.hasher.hexdigest()
        if actual != self.source.digest:
            with contextlib.suppress(FileNotFoundError):
                self.partial.unlink()
            raise DownloadError(
                f"{self.source.url}: {self.source.digest_name} mismatch: expected {self.source.digest}, got {actual}; "
                "the downloaded file was removed"
            )
        try:
            if not self.partial.exists():  # an empty file: nothing was ever written
                self.partial.touch()
            files.replace_atomically(self.partial, self.target)
        except OSError as exc:
            self._write_failed(exc)
        extra = {"path": str(self.target), "bytes": self.size, self.source.algorithm: actual}
        log.info("downloaded and verified", extra=extra)


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file, read in 8 MiB pieces."""
    return _file_digest(path, "sha256")


def _file_digest(path: str | os.PathLike[str], algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while chunk := handle.read(8 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class LogProgress:
    """Progress as log lines (bytes, percent, rate, ETA) every ``step_percent`` or ``every_s`` seconds, whichever
    comes first, for servers and non-terminals."""

    def __init__(
        self, label: str, logger: logging.Logger | None = None, step_percent: float = 5.0, every_s: float = 10.0
    ) -> None:
        self.label = label
        self.logger = logger or log
        self.step = step_percent
        self.every_s = every_s
        self.started = time.monotonic()
        self.first: int | None = None
        self.last_time = self.started
        self.last_percent = -step_percent

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        if self.first is None:
            self.first = done
        percent = 100.0 * done / total if total else None
        due = now - self.last_time >= self.every_s or (percent is not None and percent - self.last_percent >= self.step)
        if not due and done != total:
            return
        self.last_time = now
        self.last_percent = percent if percent is not None else self.last_percent
        rate = (done - self.first) / max(now - self.started, 1e-9)
        extra: dict[str, Any] = {"file": self.label, "bytes": done, "mb_per_s": round(rate / 1e6, 2)}
        if total:
            extra.update(total_bytes=total, percent=round(percent or 0.0, 1))
            extra["eta_s"] = round((total - done) / rate, 1) if rate > 0 else None
        message = f"downloading {self.label}: {done / 1e6:,.1f}"
        message += f" of {total / 1e6:,.1f} MB ({percent:.0f}%)" if total else " MB"
        self.logger.info(message, extra=extra)


class _TqdmProgress:
    def __init__(self, label: str) -> None:
        from tqdm import tqdm

        self.bar = tqdm(desc=label, unit="B", unit_scale=True, unit_divisor=1024, dynamic_ncols=True)

    def __call__(self, done: int, total: int | None) -> None:
        if total is not None and self.bar.total != total:
            self.bar.total = total
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def _auto_progress(label: str) -> Progress:
    """A tqdm bar on a terminal (if tqdm is installed), log lines otherwise."""
    if sys.stderr.isatty():
        try:
            return _TqdmProgress(label)
        except ImportError:
            pass
    return LogProgress(label)
