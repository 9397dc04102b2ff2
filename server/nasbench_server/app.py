"""Run the server: bind, answer health at once (NOT_SERVING), open and verify the store off the event loop,
then SERVING; on SIGTERM/SIGINT report NOT_SERVING, drain in-flight calls for the grace period, and stop.

Several worker processes may share one port (SO_REUSEPORT, which balances connections, not requests): one
Python process never uses more than about one core.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import faulthandler
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from nasbench._cells import keytable
from nasbench._engine.engine import Engine
from nasbench.errors import ConfigurationError, StoreCorruptError
from nasbench.v1 import nasbench_pb2 as pb
from nasbench_server import connections, limits, logs, metrics, security, store_guard
from nasbench_server.config import ServerConfig
from nasbench_server.servicer import NasbenchServicer
from nasbench_server.supervisor import Supervisor, die_with_parent, write_port

log = logging.getLogger("nasbench.server")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Nasbench"].full_name


def _options(config: ServerConfig) -> list[tuple[str, int]]:
    return [
        ("grpc.so_reuseport", 1 if config.reuse_port else 0),
        ("grpc.max_receive_message_length", config.max_message_bytes),
        ("grpc.max_send_message_length", config.max_send_bytes),
    ]


async def serve(
    config: ServerConfig,
    on_bound: Callable[[int], None] | None = None,
    on_serving: Callable[[], None] | None = None,
    parent_pid: int | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT (or until the process ``parent_pid`` is gone).

    ``on_bound(port)`` is called once the port is bound, ``on_serving()`` once the store is open and health
    says SERVING.
    """
    faulthandler.enable()  # a fatal signal (a store truncated under the server: SIGBUS) still leaves a traceback
    security.check_exposure(config)
    endpoint = None
    if config.metrics_port is not None and not config.reuse_port:  # a supervised worker's parent serves them all
        endpoint = metrics.Endpoint()
        await endpoint.start(config.host, config.metrics_port)
    try:
        await _serve(config, on_bound, on_serving, parent_pid)
    finally:
        if endpoint is not None:
            await endpoint.stop()


async def _serve(
    config: ServerConfig,
    on_bound: Callable[[int], None] | None,
    on_serving: Callable[[], None] | None,
    parent_pid: int | None,
) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    connection_limits = connections.limits_for(connections.raise_descriptor_limit(), config.max_connections_per_peer)
    interceptors = [*metrics.interceptors(config.metrics_port)]  # outermost: refused calls count too
    interceptors += [security.TokenInterceptor(config.token)] if config.token else []
    server = grpc.aio.server(
        options=_options(config) + connections.grpc_options(connection_limits, config.idle_timeout_s),
        maximum_concurrent_rpcs=config.max_concurrent_rpcs,
        interceptors=interceptors,
    )
    servicer = NasbenchServicer(config)
    metrics.set_memory_source(lambda: limits.held(servicer.answers), limits.bound(servicer.answers))
    server.add_generic_rpc_handlers((service_handler(servicer),))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    await _set_health(health_servicer, health_pb2.HealthCheckResponse.NOT_SERVING)
    credentials = security.server_credentials(config)
    port = (
        server.add_secure_port(config.address, credentials)
        if credentials is not None
        else server.add_insecure_port(config.address)
    )
    if port == 0 and not config.host.startswith("unix:"):
        raise OSError(f"could not bind {config.address}")
    await server.start()
    log.info(
        "listening",
        extra={
            "address": f"{config.host}:{port}",
            "pid": os.getpid(),
            "tls": credentials is not None,
            "token": bool(config.token),
            "max_connections": connection_limits.allowed_connections,
            "max_connections_per_peer": connection_limits.max_per_peer,
        },
    )
    if on_bound is not None:
        on_bound(port)
    watch = None if config.host.startswith("unix:") else connections.ConnectionWatch(connection_limits, port)
    watching = None if watch is None else asyncio.ensure_future(watch.run())
    try:
        await _serve_until_stopped(config, server, servicer, health_servicer, stop, on_serving, parent_pid)
    finally:
        if watching is not None:
            watching.cancel()


async def _serve_until_stopped(
    config: ServerConfig,
    server: grpc.aio.Server,
    servicer: NasbenchServicer,
    health_servicer: Any,
    stop: asyncio.Event,
    on_serving: Callable[[], None] | None,
    parent_pid: int | None,
) -> None:
    """Open the store (SERVING once it is), serve until ``stop``, then drain."""
    cancel = threading.Event()  # stops a dataset download in _open_engine when the server stops first
    breaks = asyncio.Event()  # a writer waits for the store's lease (set from the signal the kernel sends)
    asyncio.get_running_loop().add_signal_handler(store_guard.BREAK_SIGNAL, breaks.set)  # before any lease
    opened = asyncio.ensure_future(asyncio.to_thread(_open_engine, config, cancel))
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({opened, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if opened.done():
            engine, guard = opened.result()  # a store that fails to open stops the server with its error
            servicer.attach(engine, guard)
            metrics.store_opened(engine)
            await _set_health(health_servicer, health_pb2.HealthCheckResponse.SERVING)
            log.info(
                "serving",
                extra={
                    "cells": engine.cells,
                    "epochs": list(engine.epochs),
                    "store": str(engine.store.path),
                    "synthetic": bool(engine.store.manifest["source"].get("synthetic")),
                    "store_guard": guard.mode,
                },
            )
            if on_serving is not None:
                on_serving()
            if isinstance(guard, store_guard.Lease):
                watching = _hold_lease(engine, guard, servicer, health_servicer, breaks)
            elif isinstance(guard, store_guard.SealedCopy):
                watching = _watch_copied(engine, guard)
            else:
                watching = _watch_store(engine, servicer, health_servicer)
            watchers = [asyncio.ensure_future(watching)]
            if parent_pid is not None:
                watchers.append(asyncio.ensure_future(_watch_parent(parent_pid, stop)))
            try:
                await waiter
            finally:
                for watcher in watchers:
                    watcher.cancel()
    except BaseException:
        cancel.set()
        await server.stop(0)
        servicer.close()
        raise
    cancel.set()
    log.info("draining", extra={"grace_s": config.grace_s})
    metrics.draining()
    await health_servicer.enter_graceful_shutdown()
    await server.stop(config.grace_s)
    servicer.close()
    log.info("stopped", extra={"requests_served": servicer.requests})


STORE_CHECK_S = 1.0  # how often a serving process looks at its store file for changes


async def _watch_store(engine: Engine, servicer: NasbenchServicer, health_servicer: Any) -> None:
    """Stop answering as soon as the store file changes under the server (written to, truncated), and answer
    again only if it still verifies: a changed store is never served as it is (a private copy never changes;
    without a lease or a copy, answers in the second before the change is seen may come from changed bytes)."""
    while True:
        await asyncio.sleep(STORE_CHECK_S)
        change = engine.store.changed()
        if change is None:
            continue
        servicer.suspend(f"the store file changed on disk ({change}); not answering until it verifies again")
        await _set_health(health_servicer, health_pb2.HealthCheckResponse.NOT_SERVING)
        log.error(
            "store changed under the server: checking it again",
            extra={"store": str(engine.store.path), "change": change},
        )
        await _verify_again(engine, servicer, health_servicer)


async def _watch_copied(engine: Engine, copy: store_guard.SealedCopy) -> None:
    """Say so when the file the private copy was taken from changes: the copy keeps being served."""
    while True:
        await asyncio.sleep(STORE_CHECK_S)
        if copy.source_changed():
            log.warning(
                "the store file changed on disk: this server keeps serving the private copy it took at start; "
                "restart it to serve the new file",
                extra={"store": str(engine.store.path)},
            )


async def _hold_lease(
    engine: Engine, lease: store_guard.Lease, servicer: NasbenchServicer, health_servicer: Any, breaks: asyncio.Event
) -> None:
    """Hold the store's read lease: when a writer opens the file, stop answering, wait for the calls computing,
    let the writer in, take the lease again once it is done, and answer again only if the file still verifies.
    (Every answer is also checked against the lease after it is computed: ``servicer._intact``.)"""
    while True:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(breaks.wait(), STORE_CHECK_S)
        if not breaks.is_set() and lease.held() and engine.store.changed() is None:
            continue
        breaks.clear()
        lease.broken()
        servicer.suspend("the store file is being written by another process; not answering until it verifies again")
        await _set_health(health_servicer, health_pb2.HealthCheckResponse.NOT_SERVING)
        log.error("store opened for writing under the server: suspended", extra={"store": str(engine.store.path)})
        with contextlib.suppress(asyncio.TimeoutError):  # the kernel lets the writer in after lease-break-time
            await asyncio.wait_for(servicer.answers.wait_idle(), store_guard.LEASE_WAIT_S)
        with contextlib.suppress(OSError):
            lease.release()
        while True:  # until the writer has closed the file
            await asyncio.sleep(STORE_CHECK_S)
            try:
                lease.take()
                break
            except BlockingIOError:
                continue
            except OSError as exc:
                servicer.suspend(f"the store's lease cannot be taken again ({exc.strerror}): restart the server")
                log.error("store lease lost: refusing every call", extra={"error": str(exc)})
                return
        change = engine.store.changed() or "its size and times are unchanged"
        log.error(
            "store changed under the server: checking it again",
            extra={"store": str(engine.store.path), "change": change},
        )
        await _verify_again(engine, servicer, health_servicer, change, lambda: lease.held() and not breaks.is_set())


async def _verify_again(
    engine: Engine,
    servicer: NasbenchServicer,
    health_servicer: Any,
    change: str | None = None,
    unchanged_since: Callable[[], bool] = lambda: True,
) -> None:
    """Verify the store against the manifest it was opened with; serve again if it holds (and
    ``unchanged_since()`` says nothing changed during the check), else refuse every call saying why."""
    try:
        await asyncio.to_thread(engine.store.verify_checksums)
    except StoreCorruptError as exc:
        why = f" ({change})" if change else ""
        servicer.suspend(
            f"the store file changed on disk{why} and no longer verifies: {exc}; restart the server with a good store"
        )
        log.error("store no longer verifies: refusing every call", extra={"error": str(exc)})
        engine.store.accept_change()  # report again only on a further change
        return
    if not unchanged_since():
        return  # written again during the check: the watch starts over
    engine.store.accept_change()
    servicer.suspend(None)
    await _set_health(health_servicer, health_pb2.HealthCheckResponse.SERVING)
    log.warning(
        "store changed under the server but still verifies: serving again", extra={"store": str(engine.store.path)}
    )


async def _watch_parent(parent_pid: int, stop: asyncio.Event) -> None:
    """A worker stops (draining) when its supervisor is gone, instead of holding the port as an orphan."""
    while os.getppid() == parent_pid:
        await asyncio.sleep(1.0)
    log.error("the supervisor is gone: stopping", extra={"supervisor": parent_pid})
    stop.set()


async def _set_health(health_servicer: Any, status: int) -> None:
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, status)


def service_handler(servicer: NasbenchServicer) -> grpc.GenericRpcHandler:
    """The Nasbench service, decoding requests itself so a malformed message gets INVALID_ARGUMENT naming the
    message type (gRPC's own decoding answers UNKNOWN with an internal exception text)."""
    service = pb.DESCRIPTOR.services_by_name["Nasbench"]
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in service.methods:
        request_type = getattr(pb, method.input_type.name)
        behaviour = getattr(servicer, method.name)
        if method.client_streaming:  # decodes its own messages (see NasbenchServicer.QueryStream)
            make, wrap = grpc.stream_stream_rpc_method_handler, _as_is
        elif method.server_streaming:
            make, wrap = grpc.unary_stream_rpc_method_handler, _parsed_unary_stream
        else:
            make, wrap = grpc.unary_unary_rpc_method_handler, _parsed_unary
        handlers[method.name] = make(wrap(behaviour, request_type, servicer), response_serializer=_serialize)
    return grpc.method_handlers_generic_handler(service.full_name, handlers)


def _serialize(message: Any) -> bytes:
    """Messages are serialized here; big answers arrive already serialized (by a lane's thread)."""
    return message if isinstance(message, bytes) else message.SerializeToString()


PARSE_INLINE_BYTES = 256 << 10  # bigger requests are decoded on a lane's thread, not the event loop
PARSE_BYTES_PER_CELL = 160  # about what a cell named by its full matrix takes in a request (the lane's measure)


async def _parse(
    raw: bytes, request_type: Any, context: grpc.aio.ServicerContext[Any, Any], servicer: NasbenchServicer
) -> Any:
    servicer.request_bytes.note(len(raw))
    try:
        if len(raw) <= PARSE_INLINE_BYTES:
            return request_type.FromString(raw)
        return await servicer.off_loop(context, len(raw) // PARSE_BYTES_PER_CELL, request_type.FromString, raw)
    except DecodeError as exc:
        details = f"malformed {request_type.DESCRIPTOR.name}: {exc}"
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, details)  # outside the except: no exception chain kept


def _parsed_unary(behaviour: Callable[..., Any], request_type: Any, servicer: NasbenchServicer) -> Callable[..., Any]:
    async def handle(raw: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return await behaviour(await _parse(raw, request_type, context, servicer), context)

    return handle


def _parsed_unary_stream(
    behaviour: Callable[..., Any], request_type: Any, servicer: NasbenchServicer
) -> Callable[..., Any]:
    """A server-streaming handler that writes its messages itself (``context.write``)."""

    async def handle(raw: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await behaviour(await _parse(raw, request_type, context, servicer), context)

    return handle


def _as_is(behaviour: Callable[..., Any], request_type: Any, servicer: NasbenchServicer) -> Callable[..., Any]:
    return behaviour


def prepare(config: ServerConfig) -> None:
    """Open and verify the store, building the embedded synthetic one if none is given; serve nothing."""
    logs.setup(config.log_level)
    started = time.perf_counter()
    engine = Engine.open(_store_path(config), verify=config.verify)
    _opened(engine, started, config.verify, "none")
    engine.close()


def _store_path(config: ServerConfig, cancel: threading.Event | None = None) -> Path:
    """The store to serve: --store (a store, a .tfrecord or a dataset name: prepared once), --dataset (downloaded
    and built once), else the embedded synthetic store."""
    from nasbench._backends.address import parse
    from nasbench._backends.opening import store_of
    from nasbench_builder import download, prepare

    location = parse(config.store if config.store is not None else (config.dataset or "synthetic"))
    if location.kind == "dataset" and location.text in download.DATASETS:
        return prepare.store_for_dataset(
            location.text,
            config.cache_dir,
            url=config.dataset_url,
            sha256=config.dataset_sha256,
            progress=download.LogProgress(download.DATASETS[location.text].file_name, log),
            cancel=cancel,
        )
    if location.kind == "dataset":
        return prepare.store_for_dataset(location.text, config.cache_dir)
    return store_of(location, config.cache_dir)


def _open_engine(config: ServerConfig, cancel: threading.Event | None = None) -> tuple[Engine, store_guard.Guard]:
    """The engine over the store, opened and verified, and what keeps its bytes unchanged while served."""
    started = time.perf_counter()
    engine, guard = store_guard.open_guarded(_store_path(config, cancel), config.store_guard, config.verify)
    _opened(engine, started, config.verify, guard.mode)
    return engine, guard


def _opened(engine: Engine, started: float, verify: bool | None, guard: str) -> None:
    keytable.table()  # specs on the wire are named through the key table: map it (built once per machine) now
    if engine.store.manifest["source"].get("synthetic"):
        log.warning(
            "serving SYNTHETIC data (plausible values, not the NAS-Bench-101 results); to serve the real dataset: "
            "nasbench build nasbench_full.tfrecord nasbench_full.lmdb && nasbench serve --store nasbench_full.lmdb, "
            "or nasbench serve --dataset full (downloads and builds it once)"
        )
    log.info(
        "store open", extra={"seconds": round(time.perf_counter() - started, 3), "verified": verify, "guard": guard}
    )


def worker_main(config: ServerConfig, ready: Any, parent_pid: int) -> None:
    """One worker of ``run``'s supervisor: this module's server, reporting SERVING, ending with its parent."""
    die_with_parent()
    logs.setup(config.log_level)
    run_loop(serve(config, on_serving=lambda: ready.send(os.getpid()), parent_pid=parent_pid))


def run(config: ServerConfig, port_file: Path | None = None) -> int:
    """Serve in this process (workers == 1) or supervise ``workers`` processes sharing the port; returns the
    process exit status.

    ``port_file`` receives the bound port (atomically) once ready: listening, for one process (ask health for
    SERVING); every worker serving, for several.
    """
    logs.setup(config.log_level)
    if config.workers <= 1:
        run_loop(serve(config, on_bound=None if port_file is None else lambda port: write_port(port_file, port)))
        return 0
    if config.port == 0:
        raise ConfigurationError("--workers > 1 needs a fixed --port (each worker would pick its own port)")
    security.check_exposure(config)
    with metrics.supervising(config.host, config.metrics_port) as worker_exited:
        store = _store_path(config)
        mode = store_guard.probe(store, config.store_guard)  # each worker takes its own lease, or ...
        copy = store_guard.copy_file(store) if mode == "copy" else None  # ... they share one private copy
        served = store if copy is None else Path(f"/proc/{os.getpid()}/fd/{copy}")
        worker_config = dataclasses.replace(config, store=served, store_guard=mode, reuse_port=True, workers=1)
        try:
            return Supervisor(worker_config, config.workers, port_file, worker_main, on_exit=worker_exited).run()
        finally:
            if copy is not None:
                os.close(copy)


def run_loop(coroutine: object) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without uvloop
        asyncio.run(coroutine)  # type: ignore[arg-type]
    else:
        uvloop.run(coroutine)  # type: ignore[arg-type]
