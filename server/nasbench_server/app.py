"""Run the server: bind, answer health at once (NOT_SERVING), open and verify the store off the event loop,
then SERVING; on SIGTERM/SIGINT report NOT_SERVING, drain in-flight calls for the grace period, and stop.

Several worker processes may share one port (SO_REUSEPORT, which balances connections, not requests): one
Python process never uses more than about one core.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from nasbench import keytable
from nasbench.engine import Engine
from nasbench.errors import ConfigurationError
from nasbench.v1 import nasbench_pb2 as pb
from nasbench_server import logs, security
from nasbench_server.config import ServerConfig
from nasbench_server.default_store import ensure_default_store
from nasbench_server.servicer import NasbenchServicer

log = logging.getLogger("nasbench.server")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Nasbench"].full_name


def _options(config: ServerConfig) -> list[tuple[str, int]]:
    return [
        ("grpc.so_reuseport", 1 if config.reuse_port else 0),
        ("grpc.max_receive_message_length", config.max_message_bytes),
        ("grpc.max_send_message_length", config.max_message_bytes),
    ]


async def serve(config: ServerConfig, on_bound: Callable[[int], None] | None = None) -> None:
    """Serve until SIGTERM/SIGINT. ``on_bound(port)`` is called once the port is bound."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    security.check_exposure(config)
    interceptors = [security.TokenInterceptor(config.token)] if config.token else []
    server = grpc.aio.server(
        options=_options(config), maximum_concurrent_rpcs=config.max_concurrent_rpcs, interceptors=interceptors
    )
    servicer = NasbenchServicer(config)
    server.add_generic_rpc_handlers((service_handler(servicer),))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
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
        },
    )
    if on_bound is not None:
        on_bound(port)
    opened = asyncio.ensure_future(asyncio.to_thread(_open_engine, config))
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({opened, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if opened.done():
            engine = opened.result()  # a store that fails to open stops the server with its error
            servicer.attach(engine)
            for name in ("", SERVICE_NAME):
                await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
            log.info(
                "serving",
                extra={
                    "cells": engine.cells,
                    "epochs": list(engine.epochs),
                    "store": str(engine.store.path),
                    "synthetic": bool(engine.store.manifest["source"].get("synthetic")),
                },
            )
            await waiter
    except BaseException:
        await server.stop(0)
        raise
    log.info("draining", extra={"grace_s": config.grace_s})
    await health_servicer.enter_graceful_shutdown()
    await server.stop(config.grace_s)
    log.info("stopped", extra={"requests_served": servicer.requests})


def service_handler(servicer: NasbenchServicer) -> grpc.GenericRpcHandler:
    """The Nasbench service, decoding requests itself so a malformed message gets INVALID_ARGUMENT naming the
    message type (gRPC's own decoding answers UNKNOWN with an internal exception text)."""
    service = pb.DESCRIPTOR.services_by_name["Nasbench"]
    handlers = {}
    for method in service.methods:
        request_type = getattr(pb, method.input_type.name)
        behaviour = getattr(servicer, method.name)
        if method.client_streaming:  # decodes its own messages (see NasbenchServicer.QueryStream)
            make, wrap = grpc.stream_stream_rpc_method_handler, _as_is
        elif method.server_streaming:
            make, wrap = grpc.unary_stream_rpc_method_handler, _parsed_unary_stream
        else:
            make, wrap = grpc.unary_unary_rpc_method_handler, _parsed_unary
        handlers[method.name] = make(wrap(behaviour, request_type), response_serializer=_serialize)
    return grpc.method_handlers_generic_handler(service.full_name, handlers)


def _serialize(message: Any) -> bytes:
    return message.SerializeToString()


async def _parse(raw: bytes, request_type: Any, context: grpc.aio.ServicerContext) -> Any:
    try:
        return request_type.FromString(raw)
    except DecodeError as exc:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"malformed {request_type.DESCRIPTOR.name}: {exc}")


def _parsed_unary(behaviour: Callable[..., Any], request_type: Any) -> Callable[..., Any]:
    async def handle(raw: bytes, context: grpc.aio.ServicerContext) -> Any:
        return await behaviour(await _parse(raw, request_type, context), context)

    return handle


def _parsed_unary_stream(behaviour: Callable[..., Any], request_type: Any) -> Callable[..., Any]:
    async def handle(raw: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        async for response in behaviour(await _parse(raw, request_type, context), context):
            yield response

    return handle


def _as_is(behaviour: Callable[..., Any], request_type: Any) -> Callable[..., Any]:
    return behaviour


def prepare(config: ServerConfig) -> None:
    """Open and verify the store, building the embedded synthetic one if none is given; serve nothing."""
    logs.setup(config.log_level)
    _open_engine(config).close()


def _open_engine(config: ServerConfig) -> Engine:
    started = time.perf_counter()
    path = config.store if config.store is not None else ensure_default_store(config.cache_dir)
    engine = Engine.open(path, verify=config.verify)
    keytable.table()  # specs on the wire are named through the key table: map it (built once per machine) now
    if engine.store.manifest["source"].get("synthetic"):
        log.warning(
            "serving SYNTHETIC data (plausible values, not the NAS-Bench-101 results); to serve the real dataset: "
            "nasbench build nasbench_full.tfrecord nasbench_full.lmdb && nasbench serve --store nasbench_full.lmdb"
        )
    log.info("store open", extra={"seconds": round(time.perf_counter() - started, 3), "verified": config.verify})
    return engine


def run(config: ServerConfig, port_file: Path | None = None) -> None:
    """Serve in this process (workers == 1) or supervise ``workers`` processes sharing the port.

    ``port_file`` receives the bound port once listening (atomically), for callers that asked for port 0.
    """
    logs.setup(config.log_level)
    if config.workers <= 1:
        _run_loop(serve(config, on_bound=None if port_file is None else lambda port: _write_port(port_file, port)))
        return
    if config.port == 0:
        raise ConfigurationError("--workers > 1 needs a fixed --port (each worker would pick its own port)")
    security.check_exposure(config)
    store = config.store if config.store is not None else ensure_default_store(config.cache_dir)
    worker_config = dataclasses.replace(config, store=Path(store), reuse_port=True, workers=1)
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=run, args=(worker_config,), daemon=False) for _ in range(config.workers)]
    for process in processes:
        process.start()
    if port_file is not None:
        _write_port(port_file, config.port)
    log.info("supervising workers", extra={"workers": [p.pid for p in processes], "port": config.port})

    def forward(signum: int, _frame: object) -> None:
        for process in processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for process in processes:
        process.join()


def _write_port(path: Path, port: int) -> None:
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(str(port))
    os.replace(temp, path)


def _run_loop(coroutine: object) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without uvloop
        asyncio.run(coroutine)  # type: ignore[arg-type]
    else:
        uvloop.run(coroutine)  # type: ignore[arg-type]
