"""The remote backends: cells from a nasbench server, cached, for the sync and the asyncio API alike.

Every operation is written once, as an *exchange*: a generator that yields the calls it needs
(``_Call(method, request)``) and receives their answers, and returns the result. ``RemoteBackend`` drives an
exchange with blocking calls, ``AsyncRemoteBackend`` with awaited ones; neither knows anything else about the
service. Cells are immutable, so every fetched cell (all budgets, all repeats) is kept in a bounded cache shared
by nothing but this client: a repeated cell costs a dictionary lookup, while the random draw and the budget stay
in the API, as in the original. The cache holds only cells of the dataset the client is pinned to, and is
emptied the moment a server answers that it holds another one.

A client that keeps asking for cells it has never seen (an optimizer in a long study) would pay a round trip for
each. After ``replicate_after`` such misses, the client fetches the whole dataset once, in bulk (``QueryBatch``
at about 200,000 cells/s: about 2 s for every budget of the space), and answers from that *replica* afterwards,
as fast as a local store, at the memory the dataset takes (325 MB for every budget of the space, 81 MB for one;
never above ``max_replica_bytes``). Like the cache, the replica is the pinned dataset's, fetched over pinned calls.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Sequence
from typing import Any, NamedTuple, TypeVar

import numpy as np

from nasbench import errors, space
from nasbench._backends import wire
from nasbench._backends.base import DEFAULT_MAX_REPLICA_BYTES, DEFAULT_REPLICATE_AFTER
from nasbench._backends.cache import DEFAULT_CACHE_CELLS, CellCache
from nasbench._backends.transport import (
    BATCH_CHUNK,
    DEFAULT_CONNECT_TIMEOUT_S,
    STATS,
    AsyncTransport,
    Transport,
)
from nasbench._engine.engine import Cell, DatasetColumns
from nasbench._engine.filters import SampleFilter
from nasbench._engine.optima import DatasetOptimum
from nasbench._store.layout import METRIC_FIELDS, NUM_REPEATS, hash_prefix
from nasbench.v1 import nasbench_pb2 as pb

_T = TypeVar("_T")
_COLUMNS_MESSAGE_BYTES = 32 << 20  # per QueryBatch answer of ``columns``: well under the 64 MiB default limit
_PER_CELL_BYTES = 16 + 8 + 8 + 4 + 1  # hash, key, representative, parameters, found
_HEX_CHUNK = 16 * 4096  # hashes turned into strings at a time, as they are iterated


class Replica:
    """Every cell of the pinned dataset, fetched in bulk: lookups by key or hash without a round trip."""

    def __init__(self, columns: DatasetColumns) -> None:
        self.columns = columns  # rows in ascending key
        prefixes = hash_prefix(columns.hashes)
        self._hash_order = np.argsort(prefixes, kind="stable")
        self._sorted_prefixes = prefixes[self._hash_order]

    def _cell(self, row: int) -> Cell:
        data = self.columns
        return Cell(data.keys.item(row), data.representatives.item(row), data.parameters.item(row), data.metrics[row])

    def by_key(self, key: int) -> Cell | None:
        keys = self.columns.keys
        row = int(keys.searchsorted(np.uint64(key)))
        return self._cell(row) if row < len(keys) and keys.item(row) == key else None

    def by_digest(self, digest: bytes) -> Cell | None:
        if len(digest) != 16:
            return None
        prefix = np.uint64(int.from_bytes(digest[:8], "big"))
        position = int(self._sorted_prefixes.searchsorted(prefix))
        while position < len(self._sorted_prefixes) and self._sorted_prefixes[position] == prefix:
            row = int(self._hash_order[position])
            if self.columns.hashes[row].tobytes() == digest:
                return self._cell(row)
            position += 1
        return None


class _Call(NamedTuple):
    method: str
    request: Any
    timeout: float | None = None
    stream: bool = False  # a server-streaming call: the answer is the list of its messages


_Exchange = Generator[_Call, Any, _T]


class RemoteCells:
    """What the remote backends know and do, without I/O: the exchanges of every operation, and the cache."""

    def __init__(
        self,
        address: str,
        target: str,
        cache_cells: int,
        timeout: float,
        replicate_after: int | None = DEFAULT_REPLICATE_AFTER,
        max_replica_bytes: int = DEFAULT_MAX_REPLICA_BYTES,
    ) -> None:
        self.address = address
        self.target = target
        self.connect_timeout = min(DEFAULT_CONNECT_TIMEOUT_S, timeout)
        self.cache = CellCache(cache_cells)
        self.replica: Replica | None = None
        self._replicate_after = replicate_after
        self._max_replica_bytes = max_replica_bytes
        self._misses = 0
        self.info = pb.Info()
        self.epochs: tuple[int, ...] = ()
        self.cells = 0
        self.batch_chunk = BATCH_CHUNK
        self._hashes: bytes | None = None  # every hash in file order, fetched once (16 bytes per cell)
        self._optima: dict[int, DatasetOptimum] | None = None

    def connect(self) -> _Exchange[pb.Info]:
        """Read the dataset's identity, budgets and limits (the client is pinned to this identity after)."""
        info: pb.Info = yield _Call("GetInfo", pb.GetInfoRequest(), self.connect_timeout)
        self.info = info
        self.epochs = tuple(info.epochs)
        self.cells = info.cells
        self.batch_chunk = max(1, min(BATCH_CHUNK, info.max_batch or BATCH_CHUNK))
        return info

    def _keep(self, message: pb.CellData) -> Cell:
        try:
            cell, digest = wire.cell_of(message)
        except ValueError as exc:
            raise errors.RemoteError(f"{self.address} sent a malformed cell: {exc}") from None
        return self.cache.keep(cell, digest)

    def _fetch(self, ref: pb.CellRef) -> _Exchange[Cell | None]:
        try:
            message = yield _Call("GetMetrics", pb.GetMetricsRequest(cell=ref))
        except errors.UnknownCellError:
            return None
        return self._keep(message)

    def _missed(self, count: int) -> _Exchange[None]:
        """Count cells fetched one at a time; past ``replicate_after`` of them, fetch the whole dataset once (when it
        fits)."""
        self._misses += count
        after = self._replicate_after
        if self.replica is not None or after is None or self._misses < after:
            return
        per_cell = len(self.epochs) * NUM_REPEATS * len(METRIC_FIELDS) * 8 + _PER_CELL_BYTES
        if self.cells * per_cell > self._max_replica_bytes:
            self._replicate_after = None  # it never will fit: stop counting
            return
        self.replica = Replica((yield from self.columns()))
        self.cache.clear()  # every cell is in the replica now

    def cell_by_key(self, key: int) -> _Exchange[Cell | None]:
        return (yield from self._single(pb.CellRef(key=key), lambda cells: cells.by_key(key)))

    def cell_by_hash(self, digest: bytes) -> _Exchange[Cell | None]:
        return (yield from self._single(pb.CellRef(hash=digest), lambda cells: cells.by_digest(digest)))

    def _single(self, ref: pb.CellRef, look_up: Callable[[Replica | CellCache], Cell | None]) -> _Exchange[Cell | None]:
        """One cell: from the replica, else the cache, else one call (counted towards replicating)."""
        if self.replica is not None:
            STATS.hit(self.target)
            return look_up(self.replica)
        cell = look_up(self.cache)
        if cell is not None:
            STATS.hit(self.target)
            return cell
        STATS.lookups(self.target, 0, 1)
        cell = yield from self._fetch(ref)
        yield from self._missed(1)
        return cell

    def cells_by_keys(self, keys: Sequence[int]) -> _Exchange[list[Cell | None]]:
        """Cached cells, plus the others fetched in chunks the server accepts; the answer is built from what was
        fetched (the cache may already have forgotten it)."""
        if self.replica is not None:
            STATS.lookups(self.target, len(keys), 0)
            return [self.replica.by_key(key) for key in keys]
        cells, chunks = self.cache.partition(keys, self.batch_chunk)
        STATS.lookups(self.target, len(cells), sum(map(len, chunks)))
        for chunk in chunks:
            response = yield _Call("QueryBatch", pb.QueryBatchRequest(keys=chunk))
            try:
                self.cache.keep_batch(chunk, response, cells)
            except ValueError as exc:
                raise errors.RemoteError(f"{self.address} sent a malformed batch answer: {exc}") from None
        return [cells.get(key) for key in keys]  # batches cost a round trip per chunk: no reason to replicate

    def hashes(self) -> _Exchange[bytes]:
        """Every hash in file order: fetched once within the call deadline (6.8 MB for the whole space), then
        kept, so a slow consumer never holds a stream open on the server."""
        if self._hashes is None:
            chunks = yield _Call("ListCells", pb.ListCellsRequest(chunk_size=65536), stream=True)
            self._hashes = b"".join(chunk.hashes for chunk in chunks)
        return self._hashes

    def sample(self, k: int, seed: int, where: SampleFilter) -> _Exchange[list[Cell]]:
        response = yield _Call("Sample", wire.sample_request(k, seed, where))
        return [self._keep(message) for message in response.cells]

    def neighbors(self, key: int) -> _Exchange[list[Cell]]:
        response = yield _Call("Neighbors", pb.NeighborsRequest(cell=pb.CellRef(key=key)))
        return [self._keep(message) for message in response.cells]

    def optima(self) -> _Exchange[dict[int, DatasetOptimum]]:
        """The server's answer (computed there once, from the data), kept: it never changes."""
        if self._optima is None:
            response = yield _Call("GetOptima", pb.GetOptimaRequest())
            self._optima = {
                best.epochs: DatasetOptimum(
                    best.epochs,
                    best.validation_accuracy,
                    best.validation_hash.hex(),
                    best.test_accuracy,
                    best.test_hash.hex(),
                )
                for best in response.optima
            }
        return self._optima

    def columns(self) -> _Exchange[DatasetColumns]:
        """Every cell of the server's store, in ascending key order: ``QueryBatch`` over every key of the space
        (all budgets and repeats) in chunks well under the message limit; the answers' ``found`` flags keep the
        cells the store holds (a store may hold a subset of the space)."""
        cells, epochs = int(self.info.cells), self.epochs
        shape = (len(epochs), NUM_REPEATS, len(METRIC_FIELDS))
        every_key = space.enumerate_cells().keys
        per_cell = int(np.prod(shape)) * 8 + _PER_CELL_BYTES
        chunk = max(1, min(self.batch_chunk, _COLUMNS_MESSAGE_BYTES // per_cell))
        keys = np.empty(cells, dtype=np.uint64)
        hashes = np.empty((cells, 16), dtype=np.uint8)
        representatives = np.empty(cells, dtype=np.uint64)
        parameters = np.empty(cells, dtype=np.int64)
        metrics = np.empty((cells, *shape), dtype=np.float64)
        filled = 0
        for start in range(0, len(every_key), chunk):
            asked = every_key[start : start + chunk]
            response = yield _Call("QueryBatch", pb.QueryBatchRequest(keys=asked.tolist(), repeat=pb.REPEAT_ALL))
            found = np.frombuffer(response.found, dtype=np.uint8).astype(bool)
            count = int(found.sum())
            if len(found) != len(asked) or filled + count > cells:
                raise errors.RemoteError(f"{self.address} answered a batch of {len(asked)} cells inconsistently")
            rows = slice(filled, filled + count)
            keys[rows] = np.frombuffer(response.keys, dtype="<u8")[found]
            hashes[rows] = np.frombuffer(response.hashes, dtype=np.uint8).reshape(-1, 16)[found]
            representatives[rows] = np.frombuffer(response.representatives, dtype="<u8")[found]
            parameters[rows] = np.frombuffer(response.trainable_parameters, dtype="<i4")[found]
            metrics[rows] = np.frombuffer(response.metrics, dtype="<f8").reshape(len(asked), *shape)[found]
            filled += count
        if filled != cells:
            raise errors.RemoteError(f"{self.address} holds {cells} cells but {filled} of them are cells of the space")
        return DatasetColumns(keys, hashes, representatives, parameters, metrics, epochs, self.source())

    def source(self) -> dict[str, Any]:
        """The server's store manifest's source (where its dataset came from)."""
        manifest = json.loads(self.info.manifest_json) if self.info.manifest_json else {}
        found: dict[str, Any] = manifest.get("source", {}) if isinstance(manifest, dict) else {}
        return found


def _run(exchange: _Exchange[_T], transport: Transport, cells: RemoteCells) -> _T:
    """Drive an exchange with blocking calls."""
    try:
        step = next(exchange)
        while True:
            try:
                answer = transport.collect(step.method, step.request) if step.stream else (
                    transport.call(step.method, step.request, step.timeout)
                )
            except errors.NasbenchError as error:
                _forget_if_mismatched(error, cells)
                step = exchange.throw(error)
            else:
                step = exchange.send(answer)
    except StopIteration as stop:
        result: _T = stop.value
        return result


async def _arun(exchange: _Exchange[_T], transport: AsyncTransport, cells: RemoteCells) -> _T:
    """Drive an exchange with awaited calls."""
    try:
        step = next(exchange)
        while True:
            try:
                answer = await (transport.collect(step.method, step.request) if step.stream else (
                    transport.call(step.method, step.request, step.timeout)
                ))
            except errors.NasbenchError as error:
                _forget_if_mismatched(error, cells)
                step = exchange.throw(error)
            else:
                step = exchange.send(answer)
    except StopIteration as stop:
        result: _T = stop.value
        return result


def _forget_if_mismatched(error: errors.NasbenchError, cells: RemoteCells) -> None:
    """A server holding another dataset: nothing cached may answer for the pinned one any more."""
    if isinstance(error, errors.DatasetMismatchError):
        cells.cache.clear()
        cells.replica = None


class RemoteBackend:
    """Cells from a server, with blocking calls (``api.NASBench``)."""

    def __init__(
        self,
        transport: Transport,
        cache_cells: int = DEFAULT_CACHE_CELLS,
        replicate_after: int | None = DEFAULT_REPLICATE_AFTER,
        max_replica_bytes: int = DEFAULT_MAX_REPLICA_BYTES,
    ) -> None:
        self.transport = transport
        self._cells = RemoteCells(
            transport.address, transport.target, cache_cells, transport.timeout, replicate_after, max_replica_bytes
        )
        info = _run(self._cells.connect(), transport, self._cells)
        transport.pin(info.checksum)
        self.epochs = self._cells.epochs
        self.identity = info.checksum
        self.source = self._cells.source()

    @classmethod
    def connect(
        cls,
        address: str,
        *,
        cache_cells: int = DEFAULT_CACHE_CELLS,
        replicate_after: int | None = DEFAULT_REPLICATE_AFTER,
        max_replica_bytes: int = DEFAULT_MAX_REPLICA_BYTES,
        **settings: Any,
    ) -> RemoteBackend:
        """Connect, checking a server answers (ServiceUnavailableError naming the address otherwise)."""
        return cls(Transport(address, **settings), cache_cells, replicate_after, max_replica_bytes)

    def __len__(self) -> int:
        return self._cells.cells

    def _run(self, exchange: _Exchange[_T]) -> _T:
        return _run(exchange, self.transport, self._cells)

    def cell_by_key(self, key: int) -> Cell | None:
        cells = self._cells
        cell = cells.cache.by_key(key) if cells.replica is None else cells.replica.by_key(key)  # without an exchange
        if cell is not None:
            STATS.hit(cells.target)
            return cell
        return None if cells.replica is not None else self._run(cells.cell_by_key(key))

    def cell_by_hash(self, digest: bytes) -> Cell | None:
        return self._run(self._cells.cell_by_hash(digest))

    def cells_by_keys(self, keys: Sequence[int]) -> list[Cell | None]:
        return self._run(self._cells.cells_by_keys(keys))

    def hash_strings(self) -> Iterator[str]:
        hashes = self._run(self._cells.hashes())
        for start in range(0, len(hashes), _HEX_CHUNK):
            yield from space.hex_digests(hashes[start : start + _HEX_CHUNK])

    def sample(self, k: int, seed: int, where: SampleFilter) -> list[Cell]:
        return self._run(self._cells.sample(k, seed, where))

    def neighbors(self, key: int) -> list[Cell]:
        return self._run(self._cells.neighbors(key))

    def optima(self) -> dict[int, DatasetOptimum]:
        return self._run(self._cells.optima())

    def columns(self) -> DatasetColumns:
        return self._run(self._cells.columns())

    def close(self) -> None:
        """Forget the cache and the replica; the process's shared channel stays for other users of the server."""
        self._cells.cache.clear()
        self._cells.replica = None


class AsyncRemoteBackend:
    """Cells from a server, awaited (``aio.AsyncNASBench``); made inside the event loop that uses it."""

    def __init__(self, transport: AsyncTransport, cells: RemoteCells, info: pb.Info) -> None:
        self.transport = transport
        self._cells = cells
        self.epochs = cells.epochs
        self.identity = info.checksum
        self.source = cells.source()

    @classmethod
    async def connect(
        cls,
        address: str,
        *,
        cache_cells: int = DEFAULT_CACHE_CELLS,
        replicate_after: int | None = DEFAULT_REPLICATE_AFTER,
        max_replica_bytes: int = DEFAULT_MAX_REPLICA_BYTES,
        **settings: Any,
    ) -> AsyncRemoteBackend:
        transport = AsyncTransport(address, **settings)
        cells = RemoteCells(
            address, transport.target, cache_cells, transport.timeout, replicate_after, max_replica_bytes
        )
        try:
            info = await _arun(cells.connect(), transport, cells)
        except BaseException:
            await transport.close()
            raise
        transport.pin(info.checksum)
        return cls(transport, cells, info)

    def __len__(self) -> int:
        return self._cells.cells

    async def _run(self, exchange: _Exchange[_T]) -> _T:
        return await _arun(exchange, self.transport, self._cells)

    async def cell_by_key(self, key: int) -> Cell | None:
        return await self._run(self._cells.cell_by_key(key))

    async def cell_by_hash(self, digest: bytes) -> Cell | None:
        return await self._run(self._cells.cell_by_hash(digest))

    async def cells_by_keys(self, keys: Sequence[int]) -> list[Cell | None]:
        return await self._run(self._cells.cells_by_keys(keys))

    async def hash_strings(self) -> AsyncIterator[str]:
        hashes = await self._run(self._cells.hashes())
        for start in range(0, len(hashes), _HEX_CHUNK):
            for module_hash in space.hex_digests(hashes[start : start + _HEX_CHUNK]):
                yield module_hash

    async def sample(self, k: int, seed: int, where: SampleFilter) -> list[Cell]:
        return await self._run(self._cells.sample(k, seed, where))

    async def neighbors(self, key: int) -> list[Cell]:
        return await self._run(self._cells.neighbors(key))

    async def optima(self) -> dict[int, DatasetOptimum]:
        return await self._run(self._cells.optima())

    async def columns(self) -> DatasetColumns:
        return await self._run(self._cells.columns())

    async def close(self) -> None:
        self._cells.cache.clear()
        self._cells.replica = None
        await self.transport.close()
