"""The remote client's own counters, exported to a Prometheus registry when asked: calls by method and code,
cache hits and misses, and gRPC's retries (a real servicer answering UNAVAILABLE while its store "loads");
without the opt-in, the client never imports prometheus_client."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from prometheus_client import CollectorRegistry

from nasbench import api, client_metrics, errors
from nasbench._backends.remote import RemoteBackend
from nasbench._backends.transport import grpc_target
from nasbench._engine.engine import Engine
from nasbench_server import app
from nasbench_server.config import ServerConfig
from nasbench_server.servicer import NasbenchServicer


def test_the_client_does_not_import_prometheus_client() -> None:
    code = (
        "import sys; from nasbench import api, aio; import nasbench._backends.remote;"
        "assert 'prometheus_client' not in sys.modules, 'imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_calls_and_cache_are_counted(server_address: str, full_store: Path) -> None:
    registry = CollectorRegistry()
    client_metrics.register(registry)
    target = grpc_target(server_address)

    def sample(name: str, **labels: str) -> float:
        return registry.get_sample_value(name, {"target": target, **labels}) or 0.0

    before = {
        "GetMetrics": sample("nasbench_client_calls_total", method="GetMetrics", code="OK"),
        "NOT_FOUND": sample("nasbench_client_calls_total", method="GetMetrics", code="NOT_FOUND"),
        "hits": sample("nasbench_client_cache_hits_total"),
        "misses": sample("nasbench_client_cache_misses_total"),
    }
    nasbench = api.NASBench(server_address, seed=0)
    specs = api.NASBench(full_store, seed=0).sample(10, seed=5)
    for spec in specs:  # each fetched once ...
        nasbench.query(spec)
    for spec in specs * 2:  # ... then answered from the cache
        nasbench.query(spec)
    with pytest.raises(KeyError):
        nasbench.get_metrics_from_hash("0" * 32)  # asks the server: NOT_FOUND
    assert sample("nasbench_client_calls_total", method="GetMetrics", code="OK") - before["GetMetrics"] == 10
    assert sample("nasbench_client_calls_total", method="GetMetrics", code="NOT_FOUND") - before["NOT_FOUND"] == 1
    assert sample("nasbench_client_cache_misses_total") - before["misses"] == 11
    assert sample("nasbench_client_cache_hits_total") - before["hits"] == 20
    assert sample("nasbench_client_calls_total", method="GetInfo", code="OK") >= 1
    assert registry.get_sample_value("nasbench_client_retries_total", {"target": target}) is not None


@pytest.fixture()
def loading_server() -> Iterator[tuple[NasbenchServicer, int, asyncio.AbstractEventLoop]]:
    """The real service in a thread of this process, its store not attached yet: every call but health answers
    UNAVAILABLE ("still loading; retry shortly"), which the client's retry policy retries."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    servicer = NasbenchServicer(ServerConfig())

    async def start() -> tuple[grpc.aio.Server, int]:
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((app.service_handler(servicer),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        return server, port

    server, port = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield servicer, port, loop
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(0), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_retries_are_counted(loading_server, small_store: Path) -> None:
    servicer, port, loop = loading_server
    registry = CollectorRegistry()
    client_metrics.register(registry)
    address = f"grpc://127.0.0.1:{port}"
    target = grpc_target(address)
    with pytest.raises(errors.ServiceUnavailableError):
        RemoteBackend.connect(address)  # GetInfo: 5 attempts (the retry policy's maxAttempts), all UNAVAILABLE
    assert registry.get_sample_value("nasbench_client_retries_total", {"target": target}) == 4
    labels = {"target": target, "method": "GetInfo", "code": "UNAVAILABLE"}
    assert registry.get_sample_value("nasbench_client_calls_total", labels) == 1

    engine = Engine.open(small_store)

    async def attach() -> None:  # the store is open now
        servicer.attach(engine)

    asyncio.run_coroutine_threadsafe(attach(), loop).result(10)
    backend = RemoteBackend.connect(address)
    assert len(backend) == engine.cells
    assert registry.get_sample_value("nasbench_client_calls_total", {**labels, "code": "OK"}) == 1
    assert registry.get_sample_value("nasbench_client_retries_total", {"target": target}) == 4  # no new retry
