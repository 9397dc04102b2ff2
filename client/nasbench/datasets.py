"""Turn what a user passes to ``NASBench(...)`` into a backend: a store, a .tfrecord file, or a server address.

- a store file (``*.lmdb``): opened in-process, instantly;
- an original ``.tfrecord`` file: built once into a store next to it (or, if that folder is not writable, in
  the cache folder), then opened; later constructions find the store and are instant. A store is reused only
  if it was built from a file of the same name, size and modification time;
- ``grpc://host:port``, ``host:port``, a comma-separated list of those, or ``unix:/path``: a remote server;
- ``"only108"`` or ``"full"``: the official file, downloaded into ``<cache>/datasets`` and verified, then built
  once into ``<cache>/stores``; later constructions open the store directly (no network, no build). A path that
  exists on disk wins over a dataset name.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from nasbench.backends.base import Backend
from nasbench.cache import default_cache_dir
from nasbench.errors import StoreError
from nasbench.store import layout
from nasbench.store.reader import Store

if TYPE_CHECKING:  # imported where used: local stores open without the download and hashing machinery
    from nasbench import download, space

log = logging.getLogger("nasbench.datasets")

_ADDRESS = re.compile(r"^(?:grpcs?://|unix:|dns:)|^(?:[\w.-]+|\[[0-9a-fA-F:.]+\]):\d+(?:,|$)")


def is_address(dataset: str) -> bool:
    """True for server addresses (``grpc://``, ``unix:``, ``dns:``, ``host:port[,host:port...]``)."""
    return bool(_ADDRESS.match(dataset)) and not Path(dataset).exists()


def open_backend(
    dataset: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str] | None = None,
    remote: dict[str, Any] | None = None,
) -> Backend:
    """The backend for a store path, a .tfrecord path or a server address (see the module docstring);
    ``remote`` holds the options of a remote backend (token, tls_ca, timeout)."""
    text = os.fspath(dataset)
    if is_address(text):
        from nasbench.backends.remote import RemoteBackend

        return RemoteBackend.connect(text, **(remote or {}))
    path = Path(text)
    if not path.exists() and _is_dataset_name(text):
        path = store_for_dataset(text, cache_dir)
    elif path.suffix == ".tfrecord" or (path.is_file() and _looks_like_tfrecord(path)):
        path = store_for_tfrecord(path, Path(cache_dir) if cache_dir else default_cache_dir() / "stores")
    from nasbench.backends.local import LocalBackend

    return LocalBackend.open(path)


def _is_dataset_name(text: str) -> bool:
    from nasbench import download

    return text in download.DATASETS


def _looks_like_tfrecord(path: Path) -> bool:
    """A TFRecord of NAS-Bench records: a 12-byte header, then a JSON list."""
    with open(path, "rb") as handle:
        return handle.read(14)[12:14] == b'["'


def _source_matches(store_path: Path, source: Path) -> bool:
    try:
        store = Store.open(store_path)
    except StoreError:
        return False
    try:
        info = store.manifest.get("source", {})
        stat = source.stat()
        matches: bool = (
            info.get("name") == source.name
            and info.get("size") == stat.st_size
            and info.get("mtime_ns") == stat.st_mtime_ns
        )
        return matches
    finally:
        store.close()


def store_for_tfrecord(source: Path, cache_dir: Path) -> Path:
    """A store built from ``source``: an existing matching one, or a new one (with progress on a terminal)."""
    if not source.is_file():
        raise StoreError(f"no dataset file at {source}")
    beside = source.with_suffix(".lmdb")
    cached = cache_dir / f"{source.stem}-{source.stat().st_size}.lmdb"
    for candidate in (beside, cached):
        if candidate.exists() and _source_matches(candidate, source):
            return candidate
    target = beside if os.access(source.parent, os.W_OK) else cached
    _require_builder(f"{source} must be built into a store once")
    _build(source, target)
    return target


def _require_builder(why: str) -> None:
    try:
        import nasbench_builder  # noqa: F401
    except ImportError:
        raise StoreError(f"{why}, which needs the builder: pip install 'nasbench-server[builder]'") from None


def _build(source: Path, target: Path, table: space.SpaceTable | None = None) -> None:
    """Build ``target`` from ``source`` through the builder (progress: a bar on a terminal, log lines otherwise)."""
    from nasbench_builder import source as builder_source
    from nasbench_builder import writer

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the folder {target.parent} for the store: {exc.strerror or exc}") from None
    writer.check_target(target, source.stat().st_size // 4, overwrite=True)  # before the long read
    update, close = builder_source.progress_printer(source.stat().st_size)
    try:
        dataset = builder_source.read_dataset(source, progress=update, table=table)
    finally:
        close()
    writer.write_store(dataset, target, overwrite=True)


def dataset_store_path(name: str, cache_dir: str | os.PathLike[str] | None = None, sha256: str | None = None) -> Path:
    """Where the store of a named dataset (or of a mirror of another file, by its digest) is cached."""
    from nasbench import download

    known = download.DATASETS[name]
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    digest = (sha256 or known.sha256).lower()
    return root / "stores" / f"{Path(known.file_name).stem}-{digest[:16]}-schema{layout.SCHEMA_VERSION}.lmdb"


def store_for_dataset(
    name: str,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    url: str | None = None,
    sha256: str | None = None,
    progress: download.Progress | Literal["auto"] | None = "auto",
    cancel: threading.Event | None = None,
) -> Path:
    """The store of an official dataset: the cached one, or downloaded, verified and built once.

    The file goes to ``<cache_dir>/datasets`` and the store to ``<cache_dir>/stores`` (``cache_dir`` defaults
    to $NASBENCH_CACHE_DIR or ~/.cache/nasbench). Processes sharing the cache folder download and build once.

    Args:
      name: ``"only108"`` or ``"full"``.
      cache_dir: the cache folder.
      url: a mirror (http, https or file://) instead of the official URL.
      sha256: the digest of the mirrored file, if it is not the official file.
      progress: passed to ``download.download``.
      cancel: set it to stop the download (the partial file is kept for a later resume).

    Raises:
      DownloadError: the file could not be fetched or verified.
      StoreError: the builder is not installed.
      SourceError: the file is not a valid dataset file.
    """
    from nasbench import download, space

    if name not in download.DATASETS:
        raise StoreError(f"unknown dataset {name!r}: expected one of {', '.join(download.DATASETS)}")
    store = dataset_store_path(name, cache_dir, sha256)
    if store.exists():
        return store
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    _require_builder(f"the dataset {name!r} must be built into a store once")  # before downloading gigabytes
    store.parent.mkdir(parents=True, exist_ok=True)
    with download.exclusive(store.parent / f".{store.name}.lock", f"another process is preparing {store}"):
        if store.exists():  # built by the process we waited for
            return store
        known = download.DATASETS[name]
        size = known.size if sha256 is None or sha256.lower() == known.sha256 else "a mirror of another file"
        log.info(
            f"preparing the {name} dataset once: download ({size}), verify, build the store",
            extra={"store": str(store), "url": url or known.url},
        )
        source = download.download(name, root / "datasets", url=url, sha256=sha256, progress=progress, cancel=cancel)
        started = time.perf_counter()
        log.info("building the store (once)", extra={"source": str(source), "store": str(store)})
        _build(source, store, space.load_space(cache_dir=root))
        log.info("built the store", extra={"store": str(store), "seconds": round(time.perf_counter() - started, 1)})
    return store
