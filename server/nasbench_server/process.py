"""Run ``nasbench serve`` as a child process and wait until it reports SERVING (for tests and benchmarks)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def free_ports(count: int = 1) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1 (held together while probing, so they differ)."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


class ServerProcess:
    """``nasbench serve`` in a child process; ``address`` is host:port once it reports SERVING."""

    def __init__(
        self,
        store: Path | None,
        folder: Path,
        port: int = 0,
        extra: list[str] | None = None,
        env: dict[str, str] | None = None,
        wrapper: list[str] | None = None,
    ) -> None:
        """``wrapper``: a command the server runs under (e.g. ``setpriv`` to run it as another user)."""
        self.port_file = folder / f"port-{time.monotonic_ns()}"
        self.log = folder / f"server-{time.monotonic_ns()}.log"
        command = [
            *(wrapper or []),
            sys.executable,
            "-m",
            "nasbench._cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--port-file",
            str(self.port_file),
            *(["--store", str(store)] if store else []),
            *(extra or []),
        ]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
            )
        self.port = port
        self.address = ""

    def wait_serving(self, timeout: float = 120.0) -> ServerProcess:
        deadline = time.monotonic() + timeout
        while not self.port_file.exists():
            self._check_alive(deadline)
            time.sleep(0.02)
        self.port = int(self.port_file.read_text())
        self.address = f"127.0.0.1:{self.port}"
        with grpc.insecure_channel(self.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                self._check_alive(deadline)
                try:
                    status = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2).status
                except grpc.RpcError:
                    status = None
                if status == health_pb2.HealthCheckResponse.SERVING:
                    return self
                time.sleep(0.05)

    def _check_alive(self, deadline: float) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            self.stop()
            raise TimeoutError(f"server not serving in time:\n{self.log.read_text()[-3000:]}")

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def _probe_health(address: str, stop: Any, results: Any) -> None:
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        latencies = []
        while not stop.is_set():
            started = time.perf_counter()
            try:
                stub.Check(health_pb2.HealthCheckRequest(), timeout=30)
                latencies.append(time.perf_counter() - started)
            except grpc.RpcError:
                latencies.append(float("inf"))
            time.sleep(0.01)
    results.put(latencies)


class HealthProber:
    """Health-check latencies (seconds, sorted; inf for a failed check) of a server, measured from another
    process, so that the measuring process's own work (its GIL) does not skew them::

        with HealthProber(address) as prober:
            ...  # the load
        prober.latencies
    """

    def __init__(self, address: str) -> None:
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._results = context.Queue()
        self._process = context.Process(target=_probe_health, args=(address, self._stop, self._results))
        self.latencies: list[float] = []

    def __enter__(self) -> HealthProber:
        self._process.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.latencies = sorted(self._results.get(timeout=60))
        self._process.join(30)
