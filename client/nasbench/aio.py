"""The drop-in API for asyncio optimizers: ``AsyncNASBench`` answers like ``api.NASBench``, over a server or a store.

Same answers, errors, budget and randomness as ``api.NASBench``; the methods that fetch cells are coroutines.

Usage::

    from nasbench import aio, api

    async def search():
        async with await aio.AsyncNASBench.connect("grpc://127.0.0.1:50051", seed=0) as nasbench:
            data = await nasbench.query(api.ModelSpec(matrix, ops))
            many = await asyncio.gather(*(nasbench.query(spec) for spec in specs))
            hashes = [h async for h in nasbench.hash_iterator()]

Seeded runs repeat exactly, concurrency included: the repeat of each query is drawn (from Python's global
``random``, one ``randint`` per successful query, as the original) and the budget charged in the order the calls
*start* (for ``asyncio.gather``, the order of its arguments), whatever order their answers arrive in: the same
sequence a synchronous client making the same calls one after another gets. A call waits for the calls started
before it to draw first (their fetches still overlap). ``repeat='hashed'`` draws nothing at all.

A server's channel belongs to the event loop that connected it and to its process: connect inside the loop that
uses it, and again in a child process after ``fork``; anything else raises ``UsageError`` saying so.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Collection, Sequence
from typing import Any

from nasbench import errors
from nasbench._backends.base import DEFAULT_REPLICATE_AFTER, AsyncBackend
from nasbench._backends.opening import open_async_backend
from nasbench._cells import domain
from nasbench._engine.engine import Cell, DatasetColumns
from nasbench._engine.optima import DatasetOptimum
from nasbench._surface import DEFAULT, Surface, digest
from nasbench.lib.model_spec import ModelSpec

__all__ = ["AsyncNASBench"]


class _Turns:
    """Tickets taken in call order; a ticket's holder waits until every earlier ticket is done."""

    def __init__(self) -> None:
        self._last: asyncio.Future[None] | None = None

    def take(self) -> tuple[asyncio.Future[None] | None, asyncio.Future[None]]:
        """(the previous ticket, this one): taken synchronously, before the call's first await."""
        previous, mine = self._last, asyncio.get_running_loop().create_future()
        self._last = mine
        return previous, mine


class AsyncNASBench(Surface):
    """``api.NASBench`` for asyncio. Create it with ``await AsyncNASBench.connect(...)``."""

    def __init__(self, backend: AsyncBackend, seed: int | None, repeat: Any) -> None:
        self._setup(seed, repeat)
        self._backend = backend
        self._set_epochs(backend.epochs)
        self._turns = _Turns()

    @classmethod
    async def connect(
        cls,
        dataset: str | os.PathLike[str],
        seed: int | None = None,
        *,
        repeat: Any = None,
        cache_dir: str | os.PathLike[str] | None = None,
        token: str | None = None,
        tls_ca: str | os.PathLike[str] | bytes | None = None,
        timeout: float | None = None,
        replicate_after: int | None = DEFAULT_REPLICATE_AFTER,
    ) -> AsyncNASBench:
        """Open a dataset as ``api.NASBench`` does (a server address, a store, a ``.tfrecord``, a dataset name).

        Raises:
          ServiceUnavailableError: no server answers at the address (named).
          StoreError: the store is missing, damaged or of an unknown schema.
        """
        remote = {"token": token, "tls_ca": tls_ca, "timeout": timeout, "replicate_after": replicate_after}
        backend = await open_async_backend(dataset, cache_dir, **remote)
        return cls(backend, seed, repeat)

    async def __aenter__(self) -> AsyncNASBench:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._backend.close()

    # --- the original surface, as coroutines -----------------------------------------------------------------

    async def query(
        self, model_spec: ModelSpec, epochs: int = 108, stop_halfway: bool = False, *, repeat: Any = DEFAULT
    ) -> dict[str, Any]:
        """As ``api.NASBench.query``; the repeat is drawn in the order calls start (see the module docstring)."""
        previous, mine = self._turns.take()
        try:
            self._check_epochs(epochs)
            policy = self._policy(repeat)
            cell = await self._cell_of_spec(model_spec)
            if previous is not None:
                await asyncio.shield(previous)
            return self._answer(cell, epochs, stop_halfway, policy)
        finally:
            mine.set_result(None)

    async def query_batch(
        self, model_specs: Sequence[ModelSpec], epochs: int = 108, stop_halfway: bool = False, *, repeat: Any = DEFAULT
    ) -> list[dict[str, Any]]:
        """As ``api.NASBench.query_batch`` (all or nothing), drawn in call order as ``query``."""
        previous, mine = self._turns.take()
        try:
            self._check_epochs(epochs)
            policy = self._policy(repeat)
            keys = [domain.check_spec(spec, self.config) for spec in model_specs]
            found = iter(await self._backend.cells_by_keys([key for key in keys if key is not None]))
            cells = []
            for spec, key in zip(model_specs, keys, strict=True):
                cell = None if key is None else next(found)
                cells.append(cell if cell is not None else await self._cell_of_unkeyed_spec(spec, key))
            if previous is not None:
                await asyncio.shield(previous)
            return [self._answer(cell, epochs, stop_halfway, policy) for cell in cells]
        finally:
            mine.set_result(None)

    async def get_metrics_from_hash(self, module_hash: str) -> tuple[dict[str, Any], dict[int, list[dict[str, float]]]]:
        """As ``api.NASBench.get_metrics_from_hash``."""
        found = digest(module_hash)
        cell = None if found is None else await self._backend.cell_by_hash(found)
        if cell is None:
            raise errors.UnknownCellError(module_hash)
        return self._fixed(cell), self._computed(cell)

    async def get_metrics_from_spec(
        self, model_spec: ModelSpec
    ) -> tuple[dict[str, Any], dict[int, list[dict[str, float]]]]:
        """As ``api.NASBench.get_metrics_from_spec``."""
        cell = await self._cell_of_spec(model_spec)
        return self._fixed(cell), self._computed(cell)

    async def hash_iterator(self) -> AsyncIterator[str]:
        """Every hash in the original order (a server's are fetched within the call deadline, then iterated)."""
        async for module_hash in self._backend.hash_strings():
            yield module_hash

    async def sample(
        self,
        k: int = 1,
        *,
        seed: int | None = None,
        num_vertices: Collection[int] | int | None = None,
        num_edges: Collection[int] | int | None = None,
        min_parameters: int | None = None,
        max_parameters: int | None = None,
        ops: Collection[str] | None = None,
    ) -> list[ModelSpec]:
        """As ``api.NASBench.sample``."""
        draw_seed, where = self._sample_filter(seed, num_vertices, num_edges, min_parameters, max_parameters, ops)
        return [self._spec_of(cell) for cell in await self._backend.sample(k, draw_seed, where)]

    async def neighbors(self, model_spec: ModelSpec) -> list[ModelSpec]:
        """As ``api.NASBench.neighbors``."""
        return [self._spec_of(cell) for cell in await self._backend.neighbors(self._neighbors_key(model_spec))]

    async def optima(self) -> dict[int, DatasetOptimum]:
        """As ``api.NASBench.optima``."""
        return dict(await self._backend.optima())

    async def columns(self) -> DatasetColumns:
        """As ``api.NASBench.columns``."""
        return await self._backend.columns()

    @property
    def dataset_identity(self) -> str:
        """As ``api.NASBench.dataset_identity``."""
        return self._backend.identity

    @property
    def dataset_source(self) -> dict[str, Any]:
        """As ``api.NASBench.dataset_source``."""
        return dict(self._backend.source)

    def __len__(self) -> int:
        return len(self._backend)

    # --- internals -------------------------------------------------------------------------------------------

    async def _cell_of_spec(self, model_spec: ModelSpec) -> Cell:
        key = domain.check_spec(model_spec, self.config)
        cell = None if key is None else await self._backend.cell_by_key(key)
        return cell if cell is not None else await self._cell_of_unkeyed_spec(model_spec, key)

    async def _cell_of_unkeyed_spec(self, model_spec: ModelSpec, key: int | None) -> Cell:
        """The cell of a spec that passed the checks but was not found by key: by hash, else KeyError(hash)."""
        module_hash = self._hash_spec(model_spec)
        cell = None if key is not None else await self._backend.cell_by_hash(bytes.fromhex(module_hash))
        if cell is None:
            raise errors.UnknownCellError(module_hash)
        return cell
