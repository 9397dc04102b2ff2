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
from grpc_reflection.v1alpha import reflection

from nasbench._engine.engine import Engine
from nasbench_server import app, security
from nasbench_server.config import ServerConfig
from nasbench_server.servicer import NasbenchServicer


class InProcessServer:
    """``with InProcessServer(store) as server: server.address`` (host:port on 127.0.0.1)."""

    def __init__(self, store: Path, token: str | None = None, **settings: Any) -> None:
        self.config = ServerConfig(store=store, port=0, token=token, **settings)
        self.address = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="inprocess-server", daemon=True)
        self._server: Any = None
        self._engine: Engine | None = None
        self.servicer: NasbenchServicer | None = None

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
        self._server = grpc.aio.server(
            options=app._options(config), maximum_concurrent_rpcs=config.max_concurrent_rpcs, interceptors=interceptors
        )
        servicer = self.servicer = NasbenchServicer(config)
        self._server.add_generic_rpc_handlers((app.service_handler(servicer),))
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, self._server)
        names = (app.SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME)
        reflection.enable_server_reflection(names, self._server)  # as app.serve does
        port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()
        self._engine = Engine.open(config.store, verify=True)
        servicer.attach(self._engine)
        for name in ("", app.SERVICE_NAME):
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        return port

    def stop(self) -> int:
        return 0


class served:
    """``with served(store, folder) as server:`` a server over ``store`` for tests of the service (not of the
    process): a real ``nasbench serve`` process, or the in-process one under mutation testing."""

    def __init__(self, store: Path, folder: Path, token: str | None = None) -> None:
        self._store, self._folder, self._token = store, folder, token
        self._server: Any = None

    def __enter__(self) -> Any:
        import os

        if os.environ.get("NASBENCH_TEST_INPROCESS_SERVER"):
            self._server = InProcessServer(self._store, token=self._token).__enter__()
            return self._server
        from nasbench_server.process import ServerProcess

        extra = []
        if self._token is not None:
            token_file = self._folder / "token.txt"
            token_file.write_text(self._token + "\n")
            extra = ["--token-file", str(token_file)]
        self._server = ServerProcess(self._store, self._folder, extra=extra).wait_serving()
        return self._server

    def __exit__(self, *exc: object) -> None:
        if isinstance(self._server, InProcessServer):
            self._server.__exit__(*exc)
        else:
            self._server.stop()
