"""Helpers of the reliability suite: process memory, a server's log, and a health prober in another process."""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def anonymous_mb(pid: int) -> float:
    """The process's anonymous resident memory (what it allocated itself; mapped store pages are not counted:
    they are the page cache, shared by every process and reclaimable)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no RssAnon for {pid}")


def log_events(log: Path) -> list[dict]:
    """The JSON lines of a server's log (other lines, e.g. from faulthandler, are returned as {"raw": line})."""
    events = []
    for line in log.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            events.append({"raw": line})
    return events


def _probe(address: str, stop, results) -> None:
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        latencies = []
        while not stop.is_set():
            started = time.perf_counter()
            try:
                stub.Check(health_pb2.HealthCheckRequest(), timeout=10)
                latencies.append(time.perf_counter() - started)
            except grpc.RpcError:
                latencies.append(float("inf"))
            time.sleep(0.01)
    results.put(latencies)


class HealthProber:
    """Health-check latencies measured from another process (this one's GIL must not skew them)."""

    def __init__(self, address: str) -> None:
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._results = context.Queue()
        self._process = context.Process(target=_probe, args=(address, self._stop, self._results))

    def __enter__(self) -> HealthProber:
        self._process.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.latencies = sorted(self._results.get(timeout=60))
        self._process.join(30)
