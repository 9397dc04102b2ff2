"""From what a user passes to ``NASBench(...)`` or ``AsyncNASBench.connect(...)`` to a backend: one path for
every kind of location (``nasbench._backends.address``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nasbench import _plugins
from nasbench._backends.address import Location, parse
from nasbench._backends.base import AsyncBackend, Backend
from nasbench._backends.local import AsyncLocalBackend, LocalBackend
from nasbench.errors import ConfigurationError, StoreError


def store_of(location: Location, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The store file of a local location: the path of a store; for an original ``.tfrecord`` file or an official
    dataset, the store the builder prepares from it once (and finds again afterwards).

    Raises:
      ConfigurationError: a server address, or the builder extra is needed and missing.
      StoreError, DownloadError, SourceError: as the preparation raises them.
    """
    if location.kind == "server":
        raise ConfigurationError(f"{location.text} is a server address, not a store")
    if location.kind == "store":
        return location.path
    why = f"{location.describe()} must be built into a store once"
    prepare = _plugins.load("prepare_store", "builder", why, StoreError)
    path: Path = prepare(location, None if cache_dir is None else Path(cache_dir))
    return path


def open_backend(dataset: str | os.PathLike[str], cache_dir: str | os.PathLike[str] | None, **remote: Any) -> Backend:
    """The backend of a location; ``remote`` holds the options of a server's (token, tls_ca, timeout)."""
    location = parse(dataset)
    if location.kind == "server":
        from nasbench._backends.remote import RemoteBackend  # only here: local use imports neither grpc nor protobuf

        return RemoteBackend.connect(location.text, **remote)
    return LocalBackend.open(store_of(location, cache_dir))


async def open_async_backend(
    dataset: str | os.PathLike[str], cache_dir: str | os.PathLike[str] | None, **remote: Any
) -> AsyncBackend:
    """``open_backend`` for asyncio (a store to prepare is prepared on a worker thread)."""
    location = parse(dataset)
    if location.kind == "server":
        from nasbench._backends.remote import AsyncRemoteBackend

        return await AsyncRemoteBackend.connect(location.text, **remote)
    import asyncio  # only here: sync clients do without it

    path = await asyncio.to_thread(store_of, location, cache_dir)
    return AsyncLocalBackend(LocalBackend.open(path))
