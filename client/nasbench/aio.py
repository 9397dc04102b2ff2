"""The drop-in API for asyncio optimizers: ``AsyncNASBench`` answers like ``api.NASBench`` over a server.

Same answers, errors, budget and randomness as ``api.NASBench`` (the repeat is drawn in this process from the
global ``random``, one ``randint`` per successful query); the methods that talk to the server are coroutines.

Usage::

    from nasbench import aio, api

    async def search():
        async with await aio.AsyncNASBench.connect("grpc://127.0.0.1:50051", seed=0) as nasbench:
            data = await nasbench.query(api.ModelSpec(matrix, ops))
            hashes = [h async for h in nasbench.hash_iterator()]

The channel belongs to the event loop that connected it: connect inside the loop that uses it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Collection, Sequence
from typing import Any

import grpc

from nasbench import _wire, domain, errors
from nasbench.api import _DEFAULT, ModelSpec, _as_collection, _check_policy, _digest, _Surface
from nasbench.backends.cache import DEFAULT_CACHE_CELLS, CellCache
from nasbench.backends.remote import (
    BATCH_CHUNK,
    DEFAULT_CONNECT_TIMEOUT_S,
    DEFAULT_TIMEOUT_S,
    STATS,
    channel_credentials,
    channel_options,
    grpc_target,
    translate,
)
from nasbench.engine import Cell
from nasbench.space import hex_digests
from nasbench.v1 import nasbench_pb2 as pb
from nasbench.v1 import nasbench_pb2_grpc as pb_grpc


class AsyncNASBench(_Surface):
    """``api.NASBench`` for asyncio, over a server. Create it with ``await AsyncNASBench.connect(...)``."""

    def __init__(
        self,
        address: str,
        seed: int | None = None,
        *,
        repeat: Any = None,
        timeout: float | None = None,
        cache_cells: int = DEFAULT_CACHE_CELLS,
        tls_ca: str | os.PathLike[str] | bytes | None = None,
        token: str | None = None,
    ) -> None:
        self._setup(seed, repeat)
        self.address = address
        self.timeout = timeout or DEFAULT_TIMEOUT_S
        target = self._target = grpc_target(address)
        credentials = channel_credentials(address, tls_ca)
        self._channel = (
            grpc.aio.secure_channel(target, credentials, options=channel_options())
            if credentials is not None
            else grpc.aio.insecure_channel(target, options=channel_options())
        )
        self._stub = pb_grpc.NasbenchStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None
        self._cache = CellCache(cache_cells)
        self._cells = 0
        self._batch_chunk = BATCH_CHUNK

    @classmethod
    async def connect(cls, address: str, seed: int | None = None, **kwargs: Any) -> AsyncNASBench:
        """Connect and read the dataset's budgets (ServiceUnavailableError naming the address if none answers)."""
        nasbench = cls(address, seed, **kwargs)
        info = await nasbench._call("GetInfo", pb.GetInfoRequest(), DEFAULT_CONNECT_TIMEOUT_S)
        nasbench._set_epochs(info.epochs)
        nasbench._cells = info.cells
        nasbench._batch_chunk = max(1, min(BATCH_CHUNK, info.max_batch or BATCH_CHUNK))
        return nasbench

    async def __aenter__(self) -> AsyncNASBench:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def _call(self, method: str, request: Any, timeout: float | None = None) -> Any:
        try:
            with STATS.counted(self._target, method):
                return await getattr(self._stub, method)(
                    request, timeout=timeout or self.timeout, metadata=self._metadata
                )
        except grpc.RpcError as error:
            raise translate(error, self.address) from error

    def _keep(self, message: pb.CellData) -> Cell:
        try:
            cell, digest = _wire.cell_of(message)
        except ValueError as exc:
            raise errors.RemoteError(f"{self.address} sent a malformed cell: {exc}") from None
        return self._cache.keep(cell, digest)

    async def _fetch(self, ref: pb.CellRef) -> Cell | None:
        try:
            return self._keep(await self._call("GetMetrics", pb.GetMetricsRequest(cell=ref)))
        except errors.UnknownCellError:
            return None

    async def _cell_of_spec(self, model_spec: ModelSpec) -> Cell:
        key = domain.check_spec(model_spec, self.config)
        if key is not None:
            cached = self._cache.by_key(key)
            STATS.lookups(self._target, cached is not None, cached is None)
            cell = cached or await self._fetch(pb.CellRef(key=key))
            if cell is not None:
                return cell
        module_hash = self._hash_spec(model_spec)
        cell = None if key is not None else await self._fetch(pb.CellRef(hash=bytes.fromhex(module_hash)))
        if cell is None:
            raise errors.UnknownCellError(module_hash)
        return cell

    async def _cell_of_hash(self, module_hash: Any) -> Cell:
        digest = _digest(module_hash)
        cell = None if digest is None else self._cache.by_digest(digest)
        STATS.lookups(self._target, cell is not None, cell is None)
        if cell is None and digest is not None:
            cell = await self._fetch(pb.CellRef(hash=digest))
        if cell is None:
            raise errors.UnknownCellError(module_hash)
        return cell

    # --- the original surface, as coroutines -----------------------------------------------------------------

    async def query(
        self, model_spec: ModelSpec, epochs: int = 108, stop_halfway: bool = False, *, repeat: Any = _DEFAULT
    ) -> dict[str, Any]:
        """As ``api.NASBench.query``."""
        self._check_epochs(epochs)
        cell = await self._cell_of_spec(model_spec)
        return self._answer(cell, epochs, stop_halfway, self._repeat if repeat is _DEFAULT else _check_policy(repeat))

    async def query_batch(
        self, model_specs: Sequence[ModelSpec], epochs: int = 108, stop_halfway: bool = False, *, repeat: Any = _DEFAULT
    ) -> list[dict[str, Any]]:
        """As ``api.NASBench.query_batch`` (all or nothing)."""
        self._check_epochs(epochs)
        policy = self._repeat if repeat is _DEFAULT else _check_policy(repeat)
        keys = [domain.check_spec(spec, self.config) for spec in model_specs]
        fetched = await self._cells_by_keys([key for key in keys if key is not None])
        cells = []
        for spec, key in zip(model_specs, keys, strict=True):
            cell = fetched.get(key) if key is not None else None
            cells.append(cell if cell is not None else await self._cell_of_spec(spec))
        return [self._answer(cell, epochs, stop_halfway, policy) for cell in cells]

    async def _cells_by_keys(self, keys: Sequence[int]) -> dict[int, Cell]:
        """The cells of these keys that exist: cached ones, the others in batches (as RemoteBackend does)."""
        cells, chunks = self._cache.partition(keys, self._batch_chunk)
        for chunk in chunks:
            response = await self._call("QueryBatch", pb.QueryBatchRequest(keys=chunk))
            try:
                self._cache.keep_batch(chunk, response, cells)
            except ValueError as exc:
                raise errors.RemoteError(f"{self.address} sent a malformed batch answer: {exc}") from None
        return cells

    async def get_metrics_from_hash(self, module_hash: str) -> tuple[dict[str, Any], dict[int, list[dict[str, float]]]]:
        cell = await self._cell_of_hash(module_hash)
        return self._fixed(cell), self._computed(cell)

    async def get_metrics_from_spec(
        self, model_spec: ModelSpec
    ) -> tuple[dict[str, Any], dict[int, list[dict[str, float]]]]:
        cell = await self._cell_of_spec(model_spec)
        return self._fixed(cell), self._computed(cell)

    async def hash_iterator(self) -> AsyncIterator[str]:
        """Every hash in the original order (fetched within the call deadline, then iterated locally)."""
        try:
            call = self._stub.ListCells(
                pb.ListCellsRequest(chunk_size=65536), timeout=self.timeout, metadata=self._metadata
            )
            hashes = b"".join([chunk.hashes async for chunk in call])
        except grpc.RpcError as error:
            raise translate(error, self.address) from error
        for module_hash in hex_digests(hashes):
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
        draw_seed = self._sample_seed(seed, {"num_vertices": num_vertices, "num_edges": num_edges, "ops": ops})
        request = _wire.sample_request(
            k,
            draw_seed,
            _as_collection(num_vertices),
            _as_collection(num_edges),
            min_parameters,
            max_parameters,
            ops,
        )
        response = await self._call("Sample", request)
        return [self._spec_of(self._keep(message)) for message in response.cells]

    async def neighbors(self, model_spec: ModelSpec) -> list[ModelSpec]:
        """As ``api.NASBench.neighbors``."""
        key = domain.check_spec(model_spec, self.config)
        if key is None:
            raise errors.UnknownCellError(self._hash_spec(model_spec))
        response = await self._call("Neighbors", pb.NeighborsRequest(cell=pb.CellRef(key=key)))
        return [self._spec_of(self._keep(message)) for message in response.cells]

    def __len__(self) -> int:
        return self._cells
