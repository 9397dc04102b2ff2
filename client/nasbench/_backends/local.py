"""The local backends: a store opened in this process, read through the engine (for the sync and the asyncio
API: the asyncio one answers at once, as every answer takes microseconds)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import numpy as np

from nasbench._engine.engine import Cell, DatasetColumns, Engine
from nasbench._engine.filters import SampleFilter
from nasbench._engine.optima import DatasetOptimum


class LocalBackend:
    """Serves cells straight from a memory-mapped store (zero-copy metrics views)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.epochs = engine.epochs
        self.identity = engine.identity
        self.source: dict[str, Any] = dict(engine.manifest.get("source", {}))
        self.cell_by_key = engine.cell_by_key
        self.cell_by_hash = engine.cell_by_hash

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> LocalBackend:
        return cls(Engine.open(path))

    def __len__(self) -> int:
        return self.engine.cells

    def cells_by_keys(self, keys: Sequence[int]) -> list[Cell | None]:
        rows = self.engine.rows_of_keys(keys)
        return [None if row < 0 else self.engine.cell(row) for row in rows.tolist()]

    def hash_strings(self) -> Iterator[str]:
        return self.engine.hash_strings()

    def sample(self, k: int, seed: int, where: SampleFilter) -> list[Cell]:
        rows = self.engine.sample(k, np.random.default_rng(seed), where)
        return [self.engine.cell(row) for row in rows.tolist()]

    def neighbors(self, key: int) -> list[Cell]:
        return [self.engine.cell(row) for row in self.engine.neighbors(key).tolist()]

    def optima(self) -> dict[int, DatasetOptimum]:
        return self.engine.dataset_optima()

    def columns(self) -> DatasetColumns:
        return self.engine.columns()

    def close(self) -> None:
        self.engine.close()


class AsyncLocalBackend:
    """``LocalBackend`` behind the asyncio interface."""

    def __init__(self, local: LocalBackend) -> None:
        self._local = local
        self.epochs = local.epochs
        self.identity = local.identity
        self.source = local.source

    def __len__(self) -> int:
        return len(self._local)

    async def cell_by_key(self, key: int) -> Cell | None:
        return self._local.cell_by_key(key)

    async def cell_by_hash(self, digest: bytes) -> Cell | None:
        return self._local.cell_by_hash(digest)

    async def cells_by_keys(self, keys: Sequence[int]) -> list[Cell | None]:
        return self._local.cells_by_keys(keys)

    async def hash_strings(self) -> AsyncIterator[str]:
        for module_hash in self._local.hash_strings():
            yield module_hash

    async def sample(self, k: int, seed: int, where: SampleFilter) -> list[Cell]:
        return self._local.sample(k, seed, where)

    async def neighbors(self, key: int) -> list[Cell]:
        return self._local.neighbors(key)

    async def optima(self) -> dict[int, DatasetOptimum]:
        return self._local.optima()

    async def columns(self) -> DatasetColumns:
        return self._local.columns()

    async def close(self) -> None:
        self._local.close()
