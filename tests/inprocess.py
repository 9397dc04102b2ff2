"""The service inside the test process, on a thread with its own event loop: the same servicer, request
decoding, health and token check as ``nasbench serve``, without the process around them (signals, workers).

Only mutation testing uses it (``NASBENCH_TEST_INPROCESS_SERVER=1``, see tests/conftest.py): mutmut records
which tests reach a function, and runs its mutants, only inside the test process.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from nasbench.engine import Engine
from nasbench_server import app, security
from nasbench_server.config import ServerConfig
from nasbench_server.servicer import NasbenchServicer


class InProcessServer:
    """``with InProcessServer(store) as server: server.address`` (host:port on 127.0.0.1)."""

    def __init__(self, store: Path, token: str | None = None) -> None:
        self.config = ServerConfig(store=store, port=0, token=token)
        self.address = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="inprocess-server", daemon=True)
        self._server: Any = None
        self._engine: Engine | None = None

    def __enter__(self) -> InProcessServer:
        self._thread.start()
        port = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(60)
        self.address = f"127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._server.stop(0), self._loop).result(60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(60)
        self._loop.close()
        if self._engine is not None:
            self._engine.close()

    async def _start(self) -> int:
        config = self.config
        interceptors = [security.TokenInterceptor(config.token)] if config.token else []
        self._server = grpc.aio.server(options=app._options(config), interceptors=interceptors)
        servicer = NasbenchServicer(config)
        self._server.add_generic_rpc_handlers((app.service_handler(servicer),))
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, self._server)
        port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()
        self._engine = Engine.open(config.store, verify=True)
        servicer.attach(self._engine)
        for name in ("", app.SERVICE_NAME):
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        return port

    def stop(self) -> int:
        return 0
