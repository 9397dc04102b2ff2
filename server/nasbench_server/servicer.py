"""The Nasbench service: decode a request, ask the engine, encode the answer. Nothing else.

Small answers (microseconds) are computed on the event loop; big ones (batches and samples of more than
``limits.INLINE_CELLS`` cells) on a lane's thread (``limits.Lanes``), in their client's turn and after taking
their size from the answer budget, so health and small calls never wait behind them, nor medium calls behind
heavy ones. Streams take a slot and end when their client stops reading or sending. An answer is sent only if
the store's bytes stayed unchanged while it was computed (``store_guard``). Errors leave through ``status.py``'s
table. Until the store is open (and verified), and whenever it stops being trustworthy, every RPC but health
answers UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, NamedTuple, TypeAlias

import grpc
import numpy as np
from google.protobuf.message import DecodeError

from nasbench import __version__
from nasbench._backends import wire as _wire
from nasbench._backends.wire import cell_data
from nasbench._cells import domain
from nasbench._engine.engine import Engine
from nasbench._store.layout import NUM_REPEATS
from nasbench.errors import (
    DatasetMismatchError,
    InvalidSpecError,
    NasbenchError,
    OutOfDomainError,
    RequestRejectedError,
)
from nasbench.lib import config as nasbench_config
from nasbench.v1 import nasbench_pb2 as pb
from nasbench.v1 import nasbench_pb2_grpc as pb_grpc
from nasbench_server import cells, limits, status, store_guard
from nasbench_server.config import DEFAULT_LIST_CHUNK, MAX_LIST_CHUNK, ServerConfig
from nasbench_server.metrics import batch_size, cells_served  # Prometheus hooks (no-ops without --metrics-port)

log = logging.getLogger("nasbench.server")
_Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


class NasbenchServicer(pb_grpc.NasbenchServicer):
    """The service over one engine (set once the store is open)."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.engine: Engine | None = None
        self.guard = store_guard.Guard()  # what keeps the store's bytes unchanged while answers are computed
        self.unavailable: str | None = _LOADING  # why calls are refused (None while serving)
        self.requests = 0
        self._cfg = nasbench_config.build_config()
        self.answers = limits.Lanes(config.answer_budget_bytes)  # where big answers are computed, and their bytes
        self.streams = limits.StreamSlots(config.max_streams, config.stream_stall_s)
        self.request_bytes = limits.RequestBytes()

    def attach(self, engine: Engine, guard: store_guard.Guard | None = None) -> None:
        self.engine = engine
        self.guard = guard or store_guard.Guard()
        self._valid_epochs = domain.epoch_set(engine.epochs)
        self._epoch_index = {epochs: index for index, epochs in enumerate(engine.epochs)}
        self._all_epochs = tuple(engine.epochs)
        self.unavailable = None

    def suspend(self, reason: str | None) -> None:
        """Refuse every call with UNAVAILABLE and ``reason`` (None: serve again)."""
        self.unavailable = reason

    def close(self) -> None:
        self.answers.close()

    # --- helpers -----------------------------------------------------------------------------------------

    def _ready(self) -> Engine:
        if self.unavailable is not None or self.engine is None:
            raise _NotReady(self.unavailable or _LOADING)
        return self.engine

    def _intact(self, token: int) -> None:
        """Raises _NotReady unless the store's bytes stayed what they were when ``token`` was taken (the answer
        computed meanwhile is then not sent)."""
        if not self.guard.intact(token):
            raise _NotReady(_CHANGING)

    def _budgets(self, epochs: int) -> tuple[slice, tuple[int, ...]]:
        """The span of the epochs axis and its budgets: all for 0, else one (OutOfDomainError as the original)."""
        if epochs == 0:
            return slice(None), self._all_epochs
        index = self._epoch_index.get(epochs)
        if index is None:
            raise domain.invalid_epochs(self._valid_epochs)
        return slice(index, index + 1), (epochs,)

    def _cell(self, engine: Engine, row: int, budget: tuple[slice, tuple[int, ...]], into: Any = None) -> pb.CellData:
        span, epochs = budget
        return cell_data(engine.cell(row, span), engine.digest(row), epochs, into)

    def _query(self, request: pb.QueryRequest) -> pb.QueryResponse:
        engine = self._ready()
        budget = self._budgets(request.epochs)
        repeat = _wire.repeat_of(request)
        row = cells.row_of_ref(request.cell, engine, self._cfg)
        response = pb.QueryResponse(request_id=request.request_id)
        self._cell(engine, row, budget, into=response.cell)
        if request.epochs:
            add = response.runs.add
            for time_s, train, valid, test in engine.runs(row, request.epochs, repeat, request.stop_halfway).tolist():
                add(training_time=time_s, train_accuracy=train, validation_accuracy=valid, test_accuracy=test)
        cells_served(request.epochs)
        return response

    def _check_dataset(self, context: _Context) -> None:
        """Refuse a client pinned to another dataset than this server's (``nasbench-dataset`` metadata)."""
        engine = self.engine
        if engine is None:
            return
        for key, value in context.invocation_metadata() or ():
            if key == _wire.DATASET_KEY and value != engine.identity:
                raise DatasetMismatchError(
                    f"this server holds the dataset {_describe(engine)}, but the client is pinned to the dataset "
                    f"with checksum {str(value)[:64]}: it connected to a server holding another store (a replica "
                    "serving another store, or a server restarted onto another one); connect again to use this one"
                )

    async def _guard(self, context: _Context, call: Callable[..., Any], *args: Any, cells: int = 0) -> Any:
        """Run ``call``, mapping errors to statuses; answers of more than INLINE_CELLS cells are computed on a lane
        (``limits.Lanes``) once their turn comes and their size fits in its budget (given back when the call
        ends)."""
        self.requests += 1
        try:
            self._check_dataset(context)
            if cells <= limits.INLINE_CELLS:
                return self._checked(call, *args)
            self._ready()
            lane = self.answers.for_cells(cells)
            deadline = _deadline(context)
            ticket = lane.ticket(context.peer(), cells * limits.cell_answer_bytes(len(self._all_epochs)), deadline)
            # the stubs want an instance of their _DoneCallback class, which no callable is
            context.add_done_callback(lambda _: lane.release(ticket))  # type: ignore[arg-type]
            return await lane.run(ticket, _serialized(deadline, call, self._checked), *args)
        except (_NotReady, NasbenchError) as exc:
            failure = _failure(exc)
        await _fail(context, failure)  # outside the except: the error, its frames and the request are freed

    def _checked(self, call: Callable[..., Any], *args: Any) -> Any:
        """``call(*args)``, raising _NotReady if the store's bytes may have changed meanwhile (any thread)."""
        token = self.guard.token()
        answer = call(*args)
        self._intact(token)
        return answer

    async def off_loop(self, context: _Context, cells: int, call: Callable[..., Any], *args: Any) -> Any:
        """``call(*args)`` (work of about ``cells`` cells, holding no answer bytes) on a lane's thread in the
        calling client's turn, so the event loop keeps answering meanwhile."""
        lane = self.answers.for_cells(cells)
        ticket = lane.ticket(context.peer(), 0)
        try:
            return await lane.run(ticket, call, *args)
        finally:
            lane.release(ticket)

    def _open_stream(self, context: _Context) -> limits.Stream | _Failure:
        """Take a stream slot for the calling client; the failure to end the call with when there is none (or no
        store, or the client is pinned to another dataset)."""
        try:
            self._ready()
            self._check_dataset(context)
            return self.streams.take(context.peer())
        except (_NotReady, NasbenchError) as exc:
            return _failure(exc)

    async def _read(self, context: _Context, stream: limits.Stream) -> Any:
        """The client's next message (or EOF); the slots' watch ends the stream if the client sends nothing."""
        stream.wait(limits.READING)
        message = await context.read()
        stream.wait(None)
        return message

    async def _write(self, context: _Context, stream: limits.Stream, message: Any) -> None:
        """Write one stream message; the slots' watch ends the stream if the client reads nothing."""
        stream.wait(limits.WRITING)
        await context.write(message)
        stream.wait(None)

    async def _streaming(self, context: _Context, stream: limits.Stream, body: Any) -> None:
        """Run a stream's body in its slot; a stream the slots ended (idle, stalled, evicted) ends RESOURCE_EXHAUSTED
        with the reason."""
        failure = None
        try:
            await body
        except asyncio.CancelledError:
            if stream.ended is None:
                raise  # the client went away
            failure = _Failure(grpc.StatusCode.RESOURCE_EXHAUSTED, stream.ended, ())
        except _NotReady as exc:
            failure = _failure(exc)
        finally:
            self.streams.give_back(stream)
        if failure is not None:
            await _fail(context, failure)

    # --- RPCs --------------------------------------------------------------------------------------------

    # The generated base class types each RPC as returning its response message (or an iterator of them). The
    # overrides marked `type: ignore[override]` answer as app.service_handler expects instead: pre-encoded
    # bytes (_wire.Encoded, or bytes serialized on a lane's thread), or through the read/write stream API.

    async def Query(self, request: pb.QueryRequest, context: _Context) -> pb.QueryResponse:
        answer: pb.QueryResponse = await self._guard(context, self._query, request)
        return answer

    async def QueryStream(  # type: ignore[override]
        self, raw_requests: AsyncIterator[bytes], context: _Context
    ) -> None:
        """Reads raw requests and writes answers with the read/write API (no generator layers per message):
        one message costs a fraction of the async-iterator form. A malformed message ends the stream."""
        stream = self._open_stream(context)
        if isinstance(stream, _Failure):
            await _fail(context, stream)
            return
        await self._streaming(context, stream, self._query_stream(context, stream))

    async def _query_stream(self, context: _Context, stream: limits.Stream) -> None:
        while True:
            raw = await self._read(context, stream)
            if raw is grpc.aio.EOF:
                return
            self.requests += 1
            self.request_bytes.note(len(raw))
            failure = None
            try:
                request = pb.QueryRequest.FromString(raw)
            except DecodeError as exc:
                failure = _Failure(grpc.StatusCode.INVALID_ARGUMENT, f"malformed QueryRequest: {exc}", ())
            if failure is not None:
                await _fail(context, failure)
            try:
                response = self._checked(self._query, request)
            except _NotReady as exc:
                failure = _failure(exc)
            except NasbenchError as exc:
                response = pb.QueryResponse(
                    request_id=request.request_id,
                    error=pb.Error(
                        code=status.status_of(exc).value[0], kind=type(exc).__name__, message=status.details_of(exc)
                    ),
                )
            if failure is not None:
                await _fail(context, failure)
            await self._write(context, stream, response)

    async def QueryBatch(  # type: ignore[override]
        self, request: pb.QueryBatchRequest, context: _Context
    ) -> _wire.Encoded | bytes:
        count = len(request.keys) + len(request.cells)
        answer: _wire.Encoded | bytes = await self._guard(
            context, self._query_batch, request, cells=min(count, self.config.max_batch)
        )
        return answer

    def _query_batch(self, request: pb.QueryBatchRequest) -> _wire.Encoded:
        count = len(request.keys) + len(request.cells)
        if count > self.config.max_batch:
            raise RequestRejectedError(f"a batch of {count} cells exceeds the limit of {self.config.max_batch}")
        batch_size("QueryBatch", count)
        engine = self._ready()
        span, _ = self._budgets(request.epochs)
        repeat = _wire.repeat_of(request)
        rows = engine.rows_of_keys(np.fromiter(request.keys, dtype=np.uint64, count=len(request.keys)))
        if request.cells:
            extra = [self._row_or_absent(ref, engine, f"cells[{i}]") for i, ref in enumerate(request.cells)]
            rows = np.concatenate([rows, np.array(extra, dtype=np.int64)])
        batch = engine.batch(rows, span, repeat, request.stop_halfway)
        cells_served(request.epochs, int(batch.found.sum()))
        return _wire.batch_response(batch, count)

    def _row_or_absent(self, ref: pb.CellRef, engine: Engine, field: str) -> int:
        try:
            return cells.row_of_ref(ref, engine, self._cfg, field)
        except NasbenchError as exc:
            if isinstance(exc, (OutOfDomainError, InvalidSpecError)):
                raise type(exc)(f"{field}: {exc}") from None
            return -1

    async def Sample(  # type: ignore[override]
        self, request: pb.SampleRequest, context: _Context
    ) -> _wire.Encoded | bytes:
        answer: _wire.Encoded | bytes = await self._guard(
            context, self._sample, request, cells=min(request.k, self.config.max_sample)
        )
        return answer

    def _sample(self, request: pb.SampleRequest) -> _wire.Encoded:
        if request.k > self.config.max_sample:
            raise RequestRejectedError(f"k = {request.k} exceeds the limit of {self.config.max_sample}")
        batch_size("Sample", request.k)
        engine = self._ready()
        rows = engine.sample(request.k, np.random.default_rng(request.seed), _wire.sample_filter(request))
        every = self._budgets(0)
        cells_served(0, len(rows))
        return _wire.cells_response([self._cell(engine, row, every) for row in rows.tolist()])

    async def Neighbors(  # type: ignore[override]
        self, request: pb.NeighborsRequest, context: _Context
    ) -> _wire.Encoded:
        answer: _wire.Encoded = await self._guard(context, self._neighbors, request)
        return answer

    def _neighbors(self, request: pb.NeighborsRequest) -> _wire.Encoded:
        engine = self._ready()
        row = cells.row_of_ref(request.cell, engine, self._cfg)
        every = self._budgets(0)
        rows = engine.neighbors(engine.key(row))
        cells_served(0, len(rows))
        return _wire.cells_response([self._cell(engine, neighbor, every) for neighbor in rows.tolist()])

    async def GetMetrics(self, request: pb.GetMetricsRequest, context: _Context) -> pb.CellData:
        answer: pb.CellData = await self._guard(context, self._get_metrics, request)
        return answer

    def _get_metrics(self, request: pb.GetMetricsRequest) -> pb.CellData:
        engine = self._ready()
        row = cells.row_of_ref(request.cell, engine, self._cfg)
        cells_served(0)
        return self._cell(engine, row, self._budgets(0))

    async def ListCells(self, request: pb.ListCellsRequest, context: _Context) -> None:  # type: ignore[override]
        """Writes the hashes in chunks (write API: each write waits until the client makes room for it)."""
        self.requests += 1
        chunk = request.chunk_size or DEFAULT_LIST_CHUNK
        stream = (
            _failure(InvalidSpecError(f"chunk_size must be 1 to {MAX_LIST_CHUNK}, got {chunk}"))
            if chunk > MAX_LIST_CHUNK
            else self._open_stream(context)
        )
        if isinstance(stream, _Failure):
            await _fail(context, stream)
            return
        await self._streaming(context, stream, self._list_cells(context, stream, request.start, chunk))

    async def _list_cells(self, context: _Context, stream: limits.Stream, start: int, chunk: int) -> None:
        cells = self._ready().cells
        for first in range(min(start, cells), cells, chunk):
            engine = self._ready()  # suspended meanwhile: the stream ends UNAVAILABLE
            token = self.guard.token()
            message = pb.ListCellsResponse(start=first, hashes=engine.hashes_between(first, first + chunk))
            self._intact(token)
            await self._write(context, stream, message)

    async def GetInfo(self, request: pb.GetInfoRequest, context: _Context) -> pb.Info:
        answer: pb.Info = await self._guard(context, self._info)
        return answer

    def _info(self) -> pb.Info:
        engine = self._ready()
        manifest = engine.manifest
        return pb.Info(
            epochs=list(engine.epochs),
            cells=engine.cells,
            repeats=NUM_REPEATS,
            schema_version=manifest["schema_version"],
            checksum=manifest["checksum"],
            manifest_json=json.dumps(manifest, sort_keys=True),
            server_version=__version__,
            requests_served=self.requests,
            max_batch=self.config.max_batch,
            max_sample=self.config.max_sample,
            synthetic=bool(manifest["source"].get("synthetic")),
            pid=os.getpid(),
        )

    async def Ping(self, request: pb.PingRequest, context: _Context) -> pb.PingResponse:
        self.requests += 1
        return pb.PingResponse()

    async def GetOptima(self, request: pb.GetOptimaRequest, context: _Context) -> pb.GetOptimaResponse:
        """The engine's optima (one pass over the metrics the first time, on the heavy lane; then kept)."""
        self.requests += 1
        failure = None
        try:
            engine = self._ready()
            self._check_dataset(context)
        except (_NotReady, NasbenchError) as exc:
            failure = _failure(exc)
        if failure is not None:
            await _fail(context, failure)
        found = await self.off_loop(context, engine.cells, self._checked, engine.optima)
        return pb.GetOptimaResponse(
            optima=[
                pb.Optimum(
                    epochs=epochs,
                    validation_accuracy=best.validation_accuracy,
                    validation_hash=engine.digest(best.validation_row),
                    test_accuracy=best.test_accuracy,
                    test_hash=engine.digest(best.test_row),
                )
                for epochs, best in sorted(found.items())
            ]
        )


_LOADING = "the store is still loading; retry shortly"
_CHANGING = "the store file is being written by another process; not answering until it verifies again"


class _NotReady(Exception):
    """The store is not open yet, or not trustworthy any more (the message says which)."""


def _deadline(context: _Context) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


def _serialized(deadline: float | None, call: Callable[..., Any], checked: Callable[..., Any]) -> Callable[..., bytes]:
    """``call`` returning its answer serialized (a big answer takes long to serialize: not on the event loop) and
    ``checked`` (sent only if the store's bytes stayed unchanged), skipped (an error instead) when it starts after
    ``deadline``, as nobody waits for the answer then."""

    def run(*args: Any) -> bytes:
        if deadline is not None and time.monotonic() > deadline:
            raise limits.DeadlineExpiredError()
        serialized: bytes = checked(lambda: call(*args).SerializeToString())
        return serialized

    return run


def _describe(engine: Engine) -> str:
    source = engine.manifest.get("source", {})
    return f"{source.get('name', '?')} ({engine.cells:,} cells, checksum {engine.identity})"


class _Failure(NamedTuple):
    code: grpc.StatusCode
    details: str
    metadata: tuple[tuple[str, str], ...]


def _failure(error: Exception) -> _Failure:
    """The status of an error, as plain values: the error itself (its message may quote a huge input, its
    traceback holds the request) is not kept alive by the abort that follows."""
    if isinstance(error, _NotReady):
        return _Failure(grpc.StatusCode.UNAVAILABLE, str(error), ())
    code = status.status_of(error)
    if code == grpc.StatusCode.INTERNAL:
        log.error("internal error", exc_info=error)
    return _Failure(code, status.details_of(error), ((status.ERROR_KIND_KEY, type(error).__name__),))


async def _fail(context: _Context, failure: _Failure) -> None:
    await context.abort(failure.code, failure.details, trailing_metadata=failure.metadata)
