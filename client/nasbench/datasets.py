"""Turn what a user passes to ``NASBench(...)`` into a backend: a store, a .tfrecord file, or a server address.

- a store file (``*.lmdb``): opened in-process, instantly;
- an original ``.tfrecord`` file: built once into a store next to it (or, if that folder is not writable, in
  the cache folder), then opened; later constructions find the store and are instant. A store is reused only
  if it was built from a file of the same name, size and modification time;
- ``grpc://host:port``, ``host:port``, a comma-separated list of those, or ``unix:/path``: a remote server.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from nasbench.backends.base import Backend
from nasbench.cache import default_cache_dir
from nasbench.errors import StoreError
from nasbench.store.reader import Store

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
    if path.suffix == ".tfrecord" or (path.is_file() and _looks_like_tfrecord(path)):
        path = store_for_tfrecord(path, Path(cache_dir) if cache_dir else default_cache_dir() / "stores")
    from nasbench.backends.local import LocalBackend

    return LocalBackend.open(path)


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
        return (
            info.get("name") == source.name
            and info.get("size") == stat.st_size
            and info.get("mtime_ns") == stat.st_mtime_ns
        )
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
    try:
        from nasbench_builder import source as builder_source
        from nasbench_builder import writer
    except ImportError:
        raise StoreError(
            f"{source} must be built into a store once, which needs the builder: pip install 'nasbench-server[builder]'"
        ) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    update, close = builder_source.progress_printer(source.stat().st_size)
    try:
        dataset = builder_source.read_dataset(source, progress=update)
    finally:
        close()
    writer.write_store(dataset, target, overwrite=True)
    return target
