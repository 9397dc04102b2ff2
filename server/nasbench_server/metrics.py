"""Prometheus metrics of the server. Every metric is defined here; the rest of the server calls the hooks below.

    nasbench serve --metrics-port 9464          # http://127.0.0.1:9464/metrics (the gRPC server's host)

- Per RPC (an interceptor, outermost, so refused and failed calls count too): ``grpc_server_handled_total`` and
  the histogram ``grpc_server_handling_seconds`` by ``grpc_type``, ``grpc_service``, ``grpc_method``,
  ``grpc_code`` (the names of go-grpc-prometheus, so existing gRPC dashboards work); calls in progress and open
  streams by method.
- From the servicer (one-line hooks): cells answered per budget, cells per QueryBatch and per Sample.
- Per process, refreshed every second on the event loop: request-derived memory held (``set_memory_source``),
  resident memory, health (serving or not); the store's identity once it is open.

With ``--workers N`` the supervising parent gives the workers a private folder (``PROMETHEUS_MULTIPROC_DIR``,
removed at exit), each worker writes its numbers there, and the parent serves the sum on the metrics port
(prometheus_client's multiprocess mode): one scrape sees every worker. Gauges of one process carry a ``pid``
label there (``liveall``); a worker's gauges leave with it (``worker_exited``), its counters stay in the sums.
Info and Enum metrics do not work in multiprocess mode, so the store's identity is an info-style gauge
(``nasbench_store_info``, value 1, the identity in its labels), which is exactly what an Info metric exposes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import inspect
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import grpc
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.process_collector import ProcessCollector

from nasbench import __version__
from nasbench.errors import ConfigurationError

log = logging.getLogger("nasbench.server")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
REFRESH_S = 1.0  # how often a worker re-reads its gauges (memory, health); scrapes are usually 15 s apart
# 25 µs (a cached Query on loopback) to 10 s (a 100,000-cell batch on a loaded machine)
# fmt: off
LATENCY_BUCKETS = (25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                   1.0, 2.5, 5.0, 10.0)
# fmt: on
BATCH_BUCKETS = (1, 10, 100, 1_000, 10_000, 100_000)  # the default --max-batch is 100,000
ALL_BUDGETS = "all"  # the ``budget`` label of answers carrying every budget (Sample, Neighbors, GetMetrics, ...)

_RPC = ("grpc_type", "grpc_service", "grpc_method")

HANDLED = Counter(
    "grpc_server_handled_total", "RPCs completed on the server, by final status code.", [*_RPC, "grpc_code"]
)
LATENCY = Histogram(
    "grpc_server_handling_seconds",
    "Time from the start of an RPC on the server to its status (for streams: the whole stream).",
    [*_RPC, "grpc_code"],
    buckets=LATENCY_BUCKETS,
)
IN_FLIGHT = Gauge(
    "nasbench_in_flight_requests",
    "RPCs in progress (open streams included).",
    ["grpc_method"],
    multiprocess_mode="livesum",
)
OPEN_STREAMS = Gauge(
    "nasbench_open_streams",
    "Streaming RPCs open (QueryStream, ListCells, ...).",
    ["grpc_method"],
    multiprocess_mode="livesum",
)
CELLS = Counter(
    "nasbench_cells_served_total",
    "Cells answered, by budget (epochs); 'all' for answers that carry every budget.",
    ["budget"],
)
BATCH = Histogram(
    "nasbench_batch_cells", "Cells asked per QueryBatch, and k per Sample.", ["grpc_method"], buckets=BATCH_BUCKETS
)
MEMORY_HELD = Gauge(
    "nasbench_request_memory_bytes",
    "Memory held on behalf of requests (memos of request data, buffers), by pool.",
    ["pool"],
    multiprocess_mode="liveall",
)
MEMORY_LIMIT = Gauge(
    "nasbench_request_memory_limit_bytes",
    "The bound on nasbench_request_memory_bytes summed over pools (0: no byte bound configured).",
    multiprocess_mode="liveall",
)
RESIDENT = Gauge(
    "nasbench_process_resident_memory_bytes", "Resident memory of the process.", multiprocess_mode="liveall"
)
SERVING = Gauge(
    "nasbench_serving",
    "1 while the process reports SERVING on the health service; 0 while its store opens or it drains.",
    multiprocess_mode="liveall",
)
STORE = Gauge(
    "nasbench_store_info",
    "The store served (value 1): source file SHA-256, cells, budgets, synthetic or not, schema version.",
    ["source_sha256", "source_name", "cells", "epochs", "synthetic", "schema", "checksum", "server_version"],
    multiprocess_mode="livemax",
)

MemorySource = Callable[[], Mapping[str, int]]
_enabled = False
_memory_source: MemorySource | None = None
_memory_limit = 0
_process = ProcessCollector(registry=None)


# --- the hooks ------------------------------------------------------------------------------------------------


def cells_served(epochs: int, count: int = 1) -> None:
    """``count`` cells answered at budget ``epochs`` (0: every budget)."""
    if _enabled and count:
        _cells_child(epochs).inc(count)


def batch_size(method: str, count: int) -> None:
    if _enabled:
        _batch_child(method).observe(count)


def set_memory_source(source: MemorySource, limit_bytes: int | None = None) -> None:
    """Where ``nasbench_request_memory_bytes`` comes from: ``source()`` returns bytes held per pool, read every
    ``REFRESH_S`` on the worker's event loop (keep it cheap); ``limit_bytes`` is the bound on their sum."""
    global _memory_source, _memory_limit
    _memory_source = source
    _memory_limit = int(limit_bytes or 0)


def interceptors(metrics_port: int | None) -> list[grpc.aio.ServerInterceptor]:
    """A worker's start: enables the hooks and the refresh (inside the running loop) when metrics are on."""
    global _enabled
    if metrics_port is None:
        return []
    _enabled = True
    SERVING.set(0)
    _refresh_every(asyncio.get_running_loop(), REFRESH_S)
    return [MetricsInterceptor()]


def store_opened(engine: Any) -> None:
    """The store is open and the worker reports SERVING."""
    if not _enabled:
        return
    manifest = engine.manifest
    source = manifest.get("source", {})
    STORE.labels(
        source_sha256=source.get("sha256", ""),
        source_name=source.get("name", ""),
        cells=str(engine.cells),
        epochs=",".join(map(str, engine.epochs)),
        synthetic=str(bool(source.get("synthetic"))).lower(),
        schema=str(manifest.get("schema_version", "")),
        checksum=str(manifest.get("checksum", "")),
        server_version=__version__,
    ).set(1)
    SERVING.set(1)


def draining() -> None:
    if _enabled:
        SERVING.set(0)


# --- per RPC ----------------------------------------------------------------------------------------------------


class MetricsInterceptor(grpc.aio.ServerInterceptor):
    """Counts and times every call of a known method (unknown method names add no series)."""

    def __init__(self) -> None:
        self._methods: dict[str, _Method] = {}

    async def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        method = self._methods.get(details.method)
        if method is None:
            method = self._methods[details.method] = _Method(details.method, handler)
        return method.wrap(handler)


class _Method:
    """The series of one method, resolved once (``labels()`` costs more than the increment)."""

    def __init__(self, full_name: str, handler: grpc.RpcMethodHandler[Any, Any]) -> None:
        service, _, name = full_name.lstrip("/").rpartition("/")
        kind = {
            (False, False): "unary",
            (False, True): "server_stream",
            (True, False): "client_stream",
            (True, True): "bidi_stream",
        }[(handler.request_streaming, handler.response_streaming)]
        self.labels = {"grpc_type": kind, "grpc_service": service, "grpc_method": name}
        self.streaming = handler.request_streaming or handler.response_streaming
        self.in_flight = IN_FLIGHT.labels(grpc_method=name)
        self.open_streams = OPEN_STREAMS.labels(grpc_method=name)
        self._done: dict[grpc.StatusCode, tuple[Any, Any]] = {}

    def started(self) -> float:
        self.in_flight.inc()
        if self.streaming:
            self.open_streams.inc()
        return time.perf_counter()

    def finished(self, start: float, code: grpc.StatusCode) -> None:
        elapsed = time.perf_counter() - start
        self.in_flight.dec()
        if self.streaming:
            self.open_streams.dec()
        series = self._done.get(code)
        if series is None:
            labels = {**self.labels, "grpc_code": code.name}
            series = self._done[code] = (HANDLED.labels(**labels), LATENCY.labels(**labels))
        series[0].inc()
        series[1].observe(elapsed)

    def wrap(self, handler: grpc.RpcMethodHandler[Any, Any]) -> grpc.RpcMethodHandler[Any, Any]:
        behaviour: Any  # the one of the handler's four callables that is set
        if handler.unary_unary is not None:
            behaviour, make = handler.unary_unary, grpc.unary_unary_rpc_method_handler
        elif handler.unary_stream is not None:
            behaviour, make = handler.unary_stream, grpc.unary_stream_rpc_method_handler
        elif handler.stream_unary is not None:
            behaviour, make = handler.stream_unary, grpc.stream_unary_rpc_method_handler
        else:
            behaviour, make = handler.stream_stream, grpc.stream_stream_rpc_method_handler
        measured = self._generator(behaviour) if inspect.isasyncgenfunction(behaviour) else self._call(behaviour)
        return make(
            measured,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _call(self, behaviour: Callable[..., Any]) -> Callable[..., Any]:
        async def measured(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            start = self.started()
            code = grpc.StatusCode.UNKNOWN
            try:
                result = behaviour(request, context)
                if inspect.isawaitable(result):
                    result = await result
                code = _final_code(context)
                return result
            except BaseException as exc:
                code = _code_of(exc, context)
                raise
            finally:
                self.finished(start, code)

        return measured

    def _generator(self, behaviour: Callable[..., Any]) -> Callable[..., Any]:
        async def measured(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            start = self.started()
            code = grpc.StatusCode.UNKNOWN
            try:
                async for response in behaviour(request, context):
                    yield response
                code = _final_code(context)
            except BaseException as exc:
                code = _code_of(exc, context)
                raise
            finally:
                self.finished(start, code)

        return measured


def _final_code(context: grpc.aio.ServicerContext[Any, Any]) -> grpc.StatusCode:
    """The status of a handler that returned: CANCELLED if the client went away (a stream then just ends)."""
    if context.cancelled():
        return grpc.StatusCode.CANCELLED
    # the stubs type code() as never None; the guard stays for a context whose code is unset
    return context.code() or grpc.StatusCode.OK  # type: ignore[unreachable]


def _code_of(exc: BaseException, context: grpc.aio.ServicerContext[Any, Any]) -> grpc.StatusCode:
    if isinstance(exc, asyncio.CancelledError | GeneratorExit):
        return grpc.StatusCode.CANCELLED
    if isinstance(exc, grpc.aio.AbortError):
        return context.code() or grpc.StatusCode.UNKNOWN  # type: ignore[unreachable]  # as in _final_code
    return grpc.StatusCode.UNKNOWN  # what gRPC answers for an unexpected exception


_cells: dict[int, Any] = {}
_batches: dict[str, Any] = {}


def _cells_child(epochs: int) -> Any:
    child = _cells.get(epochs)
    if child is None:
        child = _cells[epochs] = CELLS.labels(budget=str(epochs) if epochs else ALL_BUDGETS)
    return child


def _batch_child(method: str) -> Any:
    child = _batches.get(method)
    if child is None:
        child = _batches[method] = BATCH.labels(grpc_method=method)
    return child


# --- per process, refreshed -------------------------------------------------------------------------------------


def _refresh_every(loop: asyncio.AbstractEventLoop, interval: float) -> None:
    def tick() -> None:
        try:
            refresh()
        except Exception:  # a broken memory source must not stop the server; say so once per interval
            log.exception("metrics refresh failed")
        loop.call_later(interval, tick)

    tick()


def refresh() -> None:
    """Re-read the per-process gauges: request memory, resident memory."""
    if _memory_source is not None:
        for pool, held in _memory_source().items():
            MEMORY_HELD.labels(pool=pool).set(held)
        MEMORY_LIMIT.set(_memory_limit)
    for family in _process.collect():
        if family.name == "process_resident_memory_bytes":
            RESIDENT.set(family.samples[0].value)


# --- the scrape endpoint ----------------------------------------------------------------------------------------

MAX_SCRAPE_CONNECTIONS = 16  # open at once; more are answered 503 and closed at once
SCRAPE_TIMEOUT_S = 5.0  # to send a request, and to read the answer; a connection slower than that is closed
RENDER_EVERY_S = 1.0  # the exposition is rendered at most this often; scrapes in between get the same text
MAX_REQUEST_BYTES = 8192


def registry() -> CollectorRegistry:
    """What the endpoint serves: this process's registry, or the sum of the workers' files in multiprocess mode."""
    if not os.environ.get(MULTIPROC_ENV):
        return REGISTRY
    merged = CollectorRegistry()
    multiprocess.MultiProcessCollector(merged)
    return merged


def bind_hosts(host: str) -> list[str]:
    """The addresses the endpoint listens on: those gRPC listens on for ``host`` (gRPC takes 0.0.0.0 and :: alike
    as every IPv4 and IPv6 address; a name, as every address it resolves to); 127.0.0.1 for a unix socket."""
    if host.startswith("unix:"):
        return ["127.0.0.1"]
    bare = host.strip("[]")
    if bare in ("0.0.0.0", "::", ""):
        return ["0.0.0.0", "::"] if socket.has_ipv6 else ["0.0.0.0"]
    if bare == "localhost":  # gRPC takes it as both loopback addresses, whatever the resolver says
        return ["127.0.0.1", "::1"] if socket.has_ipv6 else ["127.0.0.1"]
    return [bare]


class Endpoint:
    """``/metrics`` over HTTP/1.1 on asyncio: one request per connection, at most ``MAX_SCRAPE_CONNECTIONS`` open
    and each at most ``SCRAPE_TIMEOUT_S`` per step, the exposition rendered at most every ``RENDER_EVERY_S`` (off
    the event loop). A flood of scrapes costs the process a bounded number of descriptors, no threads, and one
    rendering per second."""

    def __init__(self) -> None:
        self._open = 0
        self._text = b""
        self._rendered = -RENDER_EVERY_S
        self._rendering: asyncio.Future[bytes] | None = None
        self._server: asyncio.base_events.Server | None = None

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host:port``.

        Raises:
          ConfigurationError: the port cannot be bound.
        """
        hosts = bind_hosts(host)
        ipv4 = [name for name in hosts if ":" not in name]
        try:
            try:
                self._server = await self._listen(hosts, port)
            except OSError as exc:
                if exc.errno not in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT) or ipv4 in ([], hosts):
                    raise
                self._server = await self._listen(ipv4, port)  # IPv6 is off here: gRPC falls back the same way
        except OSError as exc:
            raise ConfigurationError(f"cannot serve metrics on {hosts[0]}:{port}: {exc.strerror or exc}") from None
        log.info("metrics listening", extra={"address": f"{hosts[0]}:{port}", "path": "/metrics", "pid": os.getpid()})

    async def _listen(self, hosts: list[str], port: int) -> asyncio.base_events.Server:
        return await asyncio.start_server(
            self._serve, hosts, port, reuse_address=True, backlog=128, limit=MAX_REQUEST_BYTES
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self._open >= MAX_SCRAPE_CONNECTIONS:
                writer.write(_response(b"503 Service Unavailable", b"too many scrapes at once\n", b"text/plain"))
                return
            self._open += 1
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), SCRAPE_TIMEOUT_S)
                writer.write(await self._answer(head))
                await asyncio.wait_for(writer.drain(), SCRAPE_TIMEOUT_S)
            finally:
                self._open -= 1
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # a client gone, too slow or sending too much: its connection is closed, nothing else
        finally:
            writer.close()

    async def _answer(self, head: bytes) -> bytes:
        method, _, rest = head.partition(b" ")
        path = rest.split(b" ", 1)[0].split(b"?", 1)[0]
        if method != b"GET":
            return _response(b"405 Method Not Allowed", b"only GET\n", b"text/plain")
        if path not in (b"/metrics", b"/"):
            return _response(b"404 Not Found", b"the metrics are at /metrics\n", b"text/plain")
        return _response(b"200 OK", await self._exposition(), CONTENT_TYPE_LATEST.encode())

    async def _exposition(self) -> bytes:
        if time.monotonic() - self._rendered < RENDER_EVERY_S:
            return self._text
        if self._rendering is None:
            self._rendering = asyncio.ensure_future(asyncio.to_thread(generate_latest, registry()))
            try:
                self._text = await self._rendering
                self._rendered = time.monotonic()
            finally:
                self._rendering = None
            return self._text
        return await asyncio.shield(self._rendering)


def _response(status: bytes, body: bytes, content_type: bytes) -> bytes:
    return (
        b"HTTP/1.1 "
        + status
        + b"\r\nContent-Type: "
        + content_type
        + b"\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\nConnection: close\r\n\r\n"
        + body
    )


def serve_http(host: str, port: int) -> Callable[[], None]:
    """Serve ``/metrics`` on ``host:port`` from a thread of its own (its own event loop: for the supervisor of
    ``--workers N``, which serves no gRPC); returns the function that stops it.

    Raises:
      ConfigurationError: the port cannot be bound.
    """
    loop = asyncio.new_event_loop()
    endpoint = Endpoint()
    try:
        loop.run_until_complete(endpoint.start(host, port))
    except BaseException:
        loop.close()
        raise
    thread = threading.Thread(target=loop.run_forever, name="nasbench-metrics", daemon=True)
    thread.start()

    def stop() -> None:
        asyncio.run_coroutine_threadsafe(endpoint.stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()

    return stop


@contextlib.contextmanager
def supervising(host: str, port: int | None) -> Iterator[Callable[[int], None]]:
    """The parent of ``--workers N``: a private multiprocess folder for the workers it spawns inside this block
    (through the environment), the endpoint serving their sum, and the folder removed at exit. Yields
    ``worker_exited(pid)``, to call when a worker has exited."""
    if port is None:
        yield lambda pid: None
        return
    folder = tempfile.mkdtemp(prefix="nasbench-metrics-")
    previous = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = folder
    try:
        stop = serve_http(host, port)
        try:
            yield lambda pid: multiprocess.mark_process_dead(pid, folder)
        finally:
            stop()
    finally:
        if previous is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = previous
        shutil.rmtree(folder, ignore_errors=True)
