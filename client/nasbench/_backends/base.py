"""The interfaces the API calls: a backend holds the cells, in this process (``local``) or on a server
(``remote``); ``api.NASBench`` calls a ``Backend``, ``aio.AsyncNASBench`` an ``AsyncBackend`` with the same
methods as coroutines."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, Protocol

from nasbench._engine.engine import Cell, DatasetColumns
from nasbench._engine.filters import SampleFilter
from nasbench._engine.optima import DatasetOptimum

DEFAULT_REPLICATE_AFTER = 4096  # remote misses (about 2.5 s of round trips) before fetching the whole dataset once
DEFAULT_MAX_REPLICA_BYTES = 1 << 30  # the largest dataset a remote client copies


class Backend(Protocol):
    """Cells by canonical key or by hash, in bulk, sampled, or as neighbours; every cell fully, at once.

    ``epochs`` lists the budgets in the order of the ``metrics`` axis of every Cell (ascending); ``identity``
    names the dataset (its store's checksum) and ``source`` says where it came from (the store manifest's).
    """

    epochs: tuple[int, ...]
    identity: str
    source: dict[str, Any]

    def __len__(self) -> int: ...

    def cell_by_key(self, key: int) -> Cell | None: ...

    def cell_by_hash(self, digest: bytes) -> Cell | None: ...

    def cells_by_keys(self, keys: Sequence[int]) -> list[Cell | None]: ...

    def hash_strings(self) -> Iterator[str]: ...

    def sample(self, k: int, seed: int, where: SampleFilter) -> list[Cell]: ...

    def neighbors(self, key: int) -> list[Cell]: ...

    def optima(self) -> dict[int, DatasetOptimum]: ...

    def columns(self) -> DatasetColumns: ...

    def close(self) -> None: ...


class AsyncBackend(Protocol):
    """``Backend`` for asyncio: the same methods, awaited."""

    epochs: tuple[int, ...]
    identity: str
    source: dict[str, Any]

    def __len__(self) -> int: ...

    async def cell_by_key(self, key: int) -> Cell | None: ...

    async def cell_by_hash(self, digest: bytes) -> Cell | None: ...

    async def cells_by_keys(self, keys: Sequence[int]) -> list[Cell | None]: ...

    def hash_strings(self) -> AsyncIterator[str]: ...

    async def sample(self, k: int, seed: int, where: SampleFilter) -> list[Cell]: ...

    async def neighbors(self, key: int) -> list[Cell]: ...

    async def optima(self) -> dict[int, DatasetOptimum]: ...

    async def columns(self) -> DatasetColumns: ...

    async def close(self) -> None: ...
