"""The Nasbench service: decode a request, ask the engine, encode the answer. Nothing else.

Small answers (microseconds) are computed on the event loop; big ones (batches and samples of more than
``limits.INLINE_CELLS`` cells) on a worker thread, after taking their size from the answer budget, so health and
small calls never wait behind them. Streams take a slot and end when their client stops reading. Errors leave
through ``status.py``'s table. Until the store is open (and verified), and whenever it stops being trustworthy,
every RPC but health answers UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple, TypeAlias

import grpc
import numpy as np
from google.protobuf.message import DecodeError

from nasbench import __version__, _wire, domain
from nasbench._wire import NAME_OF_OP, cell_data
from nasbench.engine import Engine, hashed_repeat
from nasbench.errors import (
    InvalidSpecError,
    NasbenchError,
    OutOfDomainError,
    RequestRejectedError,
    ServiceUnavailableError,
)
from nasbench.lib import config as nasbench_config
from nasbench.store.layout import NUM_REPEATS
from nasbench.v1 import nasbench_pb2 as pb
from nasbench.v1 import nasbench_pb2_grpc as pb_grpc
from nasbench_server import cells, limits, status
from nasbench_server.config import DEFAULT_LIST_CHUNK, MAX_LIST_CHUNK, ServerConfig
from nasbench_server.metrics import batch_size, cells_served  # Prometheus hooks (no-ops without --metrics-port)

log = logging.getLogger("nasbench.server")
_Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
_HALFWAY = slice(0, 4)
_FINAL = slice(4, 8)


class NasbenchServicer(pb_grpc.NasbenchServicer):
    """The service over one engine (set once the store is open)."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.engine: Engine | None = None
        self.unavailable: str | None = _LOADING  # why calls are refused (None while serving)
        self.requests = 0
        self._cfg = nasbench_config.build_config()
        self.answers = limits.AnswerBudget(config.answer_budget_bytes)
        self.streams = limits.StreamSlots(config.max_streams)
        self.request_bytes = limits.RequestBytes()
        self._heavy = ThreadPoolExecutor(max_workers=limits.HEAVY_THREADS, thread_name_prefix="nasbench-heavy")

    def attach(self, engine: Engine) -> None:
        self.engine = engine
        self._valid_epochs = domain.epoch_set(engine.epochs)
        self._epoch_index = {epochs: index for index, epochs in enumerate(engine.epochs)}
        self._all_epochs = tuple(engine.epochs)
        self.unavailable = None

    def suspend(self, reason: str | None) -> None:
        """Refuse every call with UNAVAILABLE and ``reason`` (None: serve again)."""
        self.unavailable = reason

    def close(self) -> None:
        self._heavy.shutdown(wait=False, cancel_futures=True)

    # --- helpers -----------------------------------------------------------------------------------------

    def _ready(self) -> Engine:
        if self.unavailable is not None or self.engine is None:
            raise _NotReady(self.unavailable or _LOADING)
        return self.engine

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
        return cell_data(engine.cell(row, span), engine.store.hashes[row].tobytes(), epochs, into)

    def _query(self, request: pb.QueryRequest) -> pb.QueryResponse:
        engine = self._ready()
        budget = self._budgets(request.epochs)
        row = cells.row_of_ref(request.cell, engine, self._cfg)
        response = pb.QueryResponse(request_id=request.request_id)
        self._cell(engine, row, budget, into=response.cell)
        if request.epochs:
            runs = engine.store.metrics[row, budget[0].start]  # float64[3, 8]
            chosen = _select(runs, request, engine.store.keys.item(row), request.epochs)
            add = response.runs.add
            for time_s, train, valid, test in chosen[:, _HALFWAY if request.stop_halfway else _FINAL].tolist():
                add(training_time=time_s, train_accuracy=train, validation_accuracy=valid, test_accuracy=test)
        cells_served(request.epochs)
        return response

    async def _guard(self, context: _Context, call: Callable[..., Any], *args: Any, cells: int = 0) -> Any:
        """Run ``call``, mapping errors to statuses; answers of more than INLINE_CELLS cells are computed on the
        worker thread once their size fits in the answer budget (given back when the call ends)."""
        self.requests += 1
        try:
            if cells <= limits.INLINE_CELLS:
                return call(*args)
            self._ready()
            taken = await self.answers.acquire(cells * limits.cell_answer_bytes(len(self._all_epochs)))
            # the stubs want an instance of their _DoneCallback class, which no callable is
            context.add_done_callback(lambda _: self.answers.release(taken))  # type: ignore[arg-type]
            return await self.off_loop(_serialized(_deadline(context), call), *args)
        except (_NotReady, NasbenchError) as exc:
            failure = _failure(exc)
        await _fail(context, failure)  # outside the except: the error, its frames and the request are freed

    async def off_loop(self, call: Callable[..., Any], *args: Any) -> Any:
        """``call(*args)`` on the worker thread, so the event loop keeps answering meanwhile."""
        return await asyncio.get_running_loop().run_in_executor(self._heavy, call, *args)

    def _open_stream(self) -> _Failure | None:
        """Take a stream slot; the failure to end the call with when there is none (or no store)."""
        try:
            self._ready()
            self.streams.take()
        except (_NotReady, NasbenchError) as exc:
            return _failure(exc)
        return None

    async def _write(self, context: _Context, message: Any) -> None:
        """Write one stream message; a client that reads nothing for the stall time loses the stream."""
        try:
            await asyncio.wait_for(context.write(message), self.config.stream_stall_s)
        except asyncio.TimeoutError:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the stream was ended: its client read nothing for {self.config.stream_stall_s:g} s",
            )

    # --- RPCs --------------------------------------------------------------------------------------------

    # The generated base class types each RPC as returning its response message (or an iterator of them). The
    # overrides marked `type: ignore[override]` answer as app.service_handler expects instead: pre-encoded
    # bytes (_wire.Encoded, or bytes serialized on the worker thread), or through the read/write stream API.

    async def Query(self, request: pb.QueryRequest, context: _Context) -> pb.QueryResponse:
        answer: pb.QueryResponse = await self._guard(context, self._query, request)
        return answer

    async def QueryStream(  # type: ignore[override]
        self, raw_requests: AsyncIterator[bytes], context: _Context
    ) -> None:
        """Reads raw requests and writes answers with the read/write API (no generator layers per message):
        one message costs a fraction of the async-iterator form. A malformed message ends the stream."""
        failure = self._open_stream()
        if failure is not None:
            await _fail(context, failure)
        try:
            await self._query_stream(context)
        finally:
            self.streams.give_back()

    async def _query_stream(self, context: _Context) -> None:
        while True:
            raw = await context.read()
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
                response = self._query(request)
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
            await self._write(context, response)

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
        span, epochs = self._budgets(request.epochs)
        keys = np.fromiter(request.keys, dtype=np.uint64, count=len(request.keys))
        rows = engine.rows_of_keys(keys)
        if request.cells:
            extra = [self._row_or_absent(ref, engine, f"cells[{i}]") for i, ref in enumerate(request.cells)]
            rows = np.concatenate([rows, np.array(extra, dtype=np.int64)])
        found = rows >= 0
        safe = np.where(found, rows, 0)
        store = engine.store
        metrics = store.metrics[safe, span]  # [n, budgets, 3, 8]
        if request.repeat != pb.REPEAT_ALL:
            metrics = _select_batch(metrics, request, store.keys[safe], list(epochs))
            metrics = metrics[..., _HALFWAY if request.stop_halfway else _FINAL]
        columns = [store.keys[safe], store.representatives[safe], store.parameters[safe], store.hashes[safe]]
        if not found.all():  # absent cells read as zeros
            metrics = np.where(found[:, None, None, None], metrics, 0.0)
            columns = [np.where(found.reshape(-1, *[1] * (c.ndim - 1)), c, 0).astype(c.dtype) for c in columns]
        keys_out, representatives, parameters, hashes = columns
        cells_served(request.epochs, int(found.sum()))
        head = pb.QueryBatchResponse(count=count, epochs=epochs, repeats=metrics.shape[2], values=metrics.shape[3])
        field = pb.QueryBatchResponse.DESCRIPTOR.fields_by_name
        pieces = [head.SerializeToString()]
        for name, column in (
            ("found", found.astype(np.uint8)),
            ("keys", keys_out),
            ("representatives", representatives),
            ("trainable_parameters", parameters),
            ("hashes", hashes),
            ("metrics", metrics),  # C order after the gather; the store is little-endian
        ):
            pieces += _wire.length_delimited(field[name].number, column.tobytes())
        return _wire.Encoded(pieces)

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
        unknown = [op for op in request.ops if op not in NAME_OF_OP]
        if unknown:
            raise InvalidSpecError(f"ops has an unknown op value {unknown[0]}")
        rows = engine.sample(
            request.k,
            np.random.default_rng(request.seed),
            num_vertices=list(request.num_vertices) or None,
            num_edges=list(request.num_edges) or None,
            min_parameters=request.min_parameters if request.HasField("min_parameters") else None,
            max_parameters=request.max_parameters if request.HasField("max_parameters") else None,
            ops=[NAME_OF_OP[op] for op in request.ops] or None,
        )
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
        rows = engine.neighbors(engine.store.keys.item(row))
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
        failure = (
            _failure(InvalidSpecError(f"chunk_size must be 1 to {MAX_LIST_CHUNK}, got {chunk}"))
            if chunk > MAX_LIST_CHUNK
            else self._open_stream()
        )
        if failure is not None:
            await _fail(context, failure)
        try:
            engine = self._ready()  # no await since _open_stream: cannot fail here
            hashes = engine.store.hashes
            for start in range(min(request.start, engine.cells), engine.cells, chunk):
                message = pb.ListCellsResponse(start=start, hashes=hashes[start : start + chunk].tobytes())
                await self._write(context, message)
        finally:
            self.streams.give_back()

    async def GetInfo(self, request: pb.GetInfoRequest, context: _Context) -> pb.Info:
        answer: pb.Info = await self._guard(context, self._info)
        return answer

    def _info(self) -> pb.Info:
        engine = self._ready()
        manifest = engine.store.manifest
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
        """The engine's optima (one pass over the metrics the first time, on the worker thread; then kept)."""
        self.requests += 1
        failure = None
        try:
            engine = self._ready()
        except _NotReady as exc:
            failure = _failure(exc)
        if failure is not None:
            await _fail(context, failure)
        found = await self.off_loop(engine.optima)
        hashes = engine.store.hashes
        return pb.GetOptimaResponse(
            optima=[
                pb.Optimum(
                    epochs=epochs,
                    validation_accuracy=best.validation_accuracy,
                    validation_hash=hashes[best.validation_row].tobytes(),
                    test_accuracy=best.test_accuracy,
                    test_hash=hashes[best.test_row].tobytes(),
                )
                for epochs, best in sorted(found.items())
            ]
        )


_LOADING = "the store is still loading; retry shortly"


class _NotReady(Exception):
    """The store is not open yet, or not trustworthy any more (the message says which)."""


class _Expired(ServiceUnavailableError):
    """The call's deadline passed while it waited for the worker thread."""


def _deadline(context: _Context) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


def _serialized(deadline: float | None, call: Callable[..., Any]) -> Callable[..., bytes]:
    """``call`` returning its answer serialized (a big answer takes long to serialize: not on the event loop),
    skipped (an error instead) when it starts after ``deadline``, as nobody waits for the answer then."""

    def run(*args: Any) -> bytes:
        if deadline is not None and time.monotonic() > deadline:
            raise _Expired("the deadline passed before the answer could be computed")
        serialized: bytes = call(*args).SerializeToString()
        return serialized

    return run


def _check_repeat(request: Any) -> None:
    if request.repeat not in (pb.REPEAT_ALL, pb.REPEAT_INDEX, pb.REPEAT_MEAN, pb.REPEAT_HASHED):
        raise InvalidSpecError(f"repeat has an unknown value {request.repeat}")
    if request.repeat == pb.REPEAT_INDEX and request.repeat_index >= NUM_REPEATS:
        raise InvalidSpecError(f"repeat_index must be 0 to {NUM_REPEATS - 1}, got {request.repeat_index}")


def _select(runs: np.ndarray, request: pb.QueryRequest, key: int, epochs: int) -> np.ndarray:
    """The runs (float64[r, 8]) a repeat mode picks from the three of one budget."""
    _check_repeat(request)
    if request.repeat == pb.REPEAT_ALL:
        return runs
    if request.repeat == pb.REPEAT_INDEX:
        return runs[request.repeat_index : request.repeat_index + 1]
    if request.repeat == pb.REPEAT_MEAN:
        mean: np.ndarray = runs.mean(axis=0, keepdims=True)
        return mean
    index = hashed_repeat(key, epochs, request.seed)
    return runs[index : index + 1]


def _select_batch(
    metrics: np.ndarray, request: pb.QueryBatchRequest, keys: np.ndarray, epochs: list[int]
) -> np.ndarray:
    """``_select`` over [n, budgets, 3, 8]: one repeat per cell and budget."""
    _check_repeat(request)
    if request.repeat == pb.REPEAT_INDEX:
        return metrics[:, :, request.repeat_index : request.repeat_index + 1]
    if request.repeat == pb.REPEAT_MEAN:
        mean: np.ndarray = metrics.mean(axis=2, keepdims=True)
        return mean
    key_list = keys.tolist()
    picks = np.array([[hashed_repeat(k, e, request.seed) for e in epochs] for k in key_list], dtype=np.int64)
    return np.take_along_axis(metrics, picks.reshape(len(key_list), len(epochs), 1, 1), axis=2)


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
