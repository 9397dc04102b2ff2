"""The Nasbench service: decode a request, ask the engine, encode the answer. Nothing else.

Every handler runs in the event loop (answers take microseconds); errors leave through ``status.py``'s table.
Until the store is open (and verified) every RPC but health answers UNAVAILABLE.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

import grpc
import numpy as np
from google.protobuf.message import DecodeError

from nasbench import __version__, domain
from nasbench._wire import NAME_OF_OP, cell_data
from nasbench.engine import Engine, hashed_repeat
from nasbench.errors import InvalidSpecError, NasbenchError, OutOfDomainError, RequestRejectedError
from nasbench.lib import config as nasbench_config
from nasbench.store.layout import NUM_REPEATS
from nasbench.v1 import nasbench_pb2 as pb
from nasbench.v1 import nasbench_pb2_grpc as pb_grpc
from nasbench_server import cells, status
from nasbench_server.config import DEFAULT_LIST_CHUNK, MAX_LIST_CHUNK, ServerConfig
from nasbench_server.metrics import batch_size, cells_served  # Prometheus hooks (no-ops without --metrics-port)

log = logging.getLogger("nasbench.server")
_HALFWAY = slice(0, 4)
_FINAL = slice(4, 8)


class NasbenchServicer(pb_grpc.NasbenchServicer):
    """The service over one engine (set once the store is open)."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.engine: Engine | None = None
        self.requests = 0
        self._cfg = nasbench_config.build_config()

    def attach(self, engine: Engine) -> None:
        self.engine = engine
        self._valid_epochs = domain.epoch_set(engine.epochs)
        self._epoch_index = {epochs: index for index, epochs in enumerate(engine.epochs)}
        self._all_epochs = tuple(engine.epochs)

    # --- helpers -----------------------------------------------------------------------------------------

    def _ready(self) -> Engine:
        self.requests += 1
        if self.engine is None:
            raise _NotReady
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

    async def _guard(self, context: grpc.aio.ServicerContext, call: Any, *args: Any) -> Any:
        try:
            return call(*args)
        except _NotReady:
            await context.abort(grpc.StatusCode.UNAVAILABLE, _LOADING)
        except NasbenchError as exc:
            await _abort(context, exc)

    # --- RPCs --------------------------------------------------------------------------------------------

    async def Query(self, request: pb.QueryRequest, context: grpc.aio.ServicerContext) -> pb.QueryResponse:
        return await self._guard(context, self._query, request)

    async def QueryStream(self, raw_requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> None:
        """Reads raw requests and writes answers with the read/write API (no generator layers per message):
        one message costs a fraction of the async-iterator form. A malformed message ends the stream."""
        while True:
            raw = await context.read()
            if raw is grpc.aio.EOF:
                return
            try:
                request = pb.QueryRequest.FromString(raw)
            except DecodeError as exc:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"malformed QueryRequest: {exc}")
            try:
                response = self._query(request)
            except _NotReady:
                await context.abort(grpc.StatusCode.UNAVAILABLE, _LOADING)
            except NasbenchError as exc:
                response = pb.QueryResponse(
                    request_id=request.request_id,
                    error=pb.Error(
                        code=status.status_of(exc).value[0], kind=type(exc).__name__, message=status.details_of(exc)
                    ),
                )
            await context.write(response)

    async def QueryBatch(
        self, request: pb.QueryBatchRequest, context: grpc.aio.ServicerContext
    ) -> pb.QueryBatchResponse:
        return await self._guard(context, self._query_batch, request)

    def _query_batch(self, request: pb.QueryBatchRequest) -> pb.QueryBatchResponse:
        engine = self._ready()
        count = len(request.keys) + len(request.cells)
        if count > self.config.max_batch:
            raise RequestRejectedError(f"a batch of {count} cells exceeds the limit of {self.config.max_batch}")
        batch_size("QueryBatch", count)
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
        return pb.QueryBatchResponse(
            count=count,
            found=found.astype(np.uint8).tobytes(),
            keys=keys_out.tobytes(),
            representatives=representatives.tobytes(),
            trainable_parameters=parameters.tobytes(),
            hashes=hashes.tobytes(),
            epochs=epochs,
            repeats=metrics.shape[2],
            values=metrics.shape[3],
            metrics=metrics.tobytes(),  # C order after the gather; the store is little-endian
        )

    def _row_or_absent(self, ref: pb.CellRef, engine: Engine, field: str) -> int:
        try:
            return cells.row_of_ref(ref, engine, self._cfg, field)
        except NasbenchError as exc:
            if isinstance(exc, (OutOfDomainError, InvalidSpecError)):
                raise type(exc)(f"{field}: {exc}") from None
            return -1

    async def Sample(self, request: pb.SampleRequest, context: grpc.aio.ServicerContext) -> pb.CellsResponse:
        return await self._guard(context, self._sample, request)

    def _sample(self, request: pb.SampleRequest) -> pb.CellsResponse:
        engine = self._ready()
        if request.k > self.config.max_sample:
            raise RequestRejectedError(f"k = {request.k} exceeds the limit of {self.config.max_sample}")
        batch_size("Sample", request.k)
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
        return pb.CellsResponse(cells=[self._cell(engine, row, every) for row in rows.tolist()])

    async def Neighbors(self, request: pb.NeighborsRequest, context: grpc.aio.ServicerContext) -> pb.CellsResponse:
        return await self._guard(context, self._neighbors, request)

    def _neighbors(self, request: pb.NeighborsRequest) -> pb.CellsResponse:
        engine = self._ready()
        row = cells.row_of_ref(request.cell, engine, self._cfg)
        every = self._budgets(0)
        rows = engine.neighbors(engine.store.keys.item(row))
        cells_served(0, len(rows))
        return pb.CellsResponse(cells=[self._cell(engine, neighbor, every) for neighbor in rows.tolist()])

    async def GetMetrics(self, request: pb.GetMetricsRequest, context: grpc.aio.ServicerContext) -> pb.CellData:
        return await self._guard(context, self._get_metrics, request)

    def _get_metrics(self, request: pb.GetMetricsRequest) -> pb.CellData:
        engine = self._ready()
        row = cells.row_of_ref(request.cell, engine, self._cfg)
        cells_served(0)
        return self._cell(engine, row, self._budgets(0))

    async def ListCells(
        self, request: pb.ListCellsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ListCellsResponse]:
        try:
            engine = self._ready()
        except _NotReady:
            await context.abort(grpc.StatusCode.UNAVAILABLE, _LOADING)
        chunk = request.chunk_size or DEFAULT_LIST_CHUNK
        if chunk > MAX_LIST_CHUNK:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"chunk_size must be 1 to {MAX_LIST_CHUNK}, got {chunk}"
            )
        hashes = engine.store.hashes
        for start in range(min(request.start, engine.cells), engine.cells, chunk):
            yield pb.ListCellsResponse(start=start, hashes=hashes[start : start + chunk].tobytes())

    async def GetInfo(self, request: pb.GetInfoRequest, context: grpc.aio.ServicerContext) -> pb.Info:
        return await self._guard(context, self._info)

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

    async def Ping(self, request: pb.PingRequest, context: grpc.aio.ServicerContext) -> pb.PingResponse:
        self.requests += 1
        return pb.PingResponse()


_LOADING = "the store is still loading; retry shortly"


class _NotReady(Exception):
    """The store is not open yet."""


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
        return runs.mean(axis=0, keepdims=True)
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
        return metrics.mean(axis=2, keepdims=True)
    key_list = keys.tolist()
    picks = np.array([[hashed_repeat(k, e, request.seed) for e in epochs] for k in key_list], dtype=np.int64)
    return np.take_along_axis(metrics, picks.reshape(len(key_list), len(epochs), 1, 1), axis=2)


async def _abort(context: grpc.aio.ServicerContext, error: NasbenchError) -> None:
    code = status.status_of(error)
    if code == grpc.StatusCode.INTERNAL:
        log.exception("internal error")
    await context.abort(
        code, status.details_of(error), trailing_metadata=((status.ERROR_KIND_KEY, type(error).__name__),)
    )
