"""Scenario ``concurrency``: N client processes issuing unary queries at once: aggregate calls/s, latency, and
the server's memory (its own, and the shared store pages it maps) under that load."""

from __future__ import annotations

import multiprocessing
import time
from typing import Any

from nasbench.transport import Transport
from nasbench.v1 import nasbench_pb2 as pb
from nasbench_bench.results import Context, ScenarioResult
from nasbench_bench.rpc import random_keys, rss_mb
from nasbench_bench.timing import summarize

CLIENTS = (1, 2, 4, 8, 16)


def client(args: tuple[str, list[int], float]) -> list[float]:
    """One client process: unary queries for ``duration`` seconds; per-call latencies in µs."""
    address, keys, duration = args
    server = Transport(address)
    latencies = []
    deadline = time.perf_counter() + duration
    i = 0
    while time.perf_counter() < deadline:
        started = time.perf_counter_ns()
        server.call("Query", pb.QueryRequest(cell=pb.CellRef(key=keys[i % len(keys)]), epochs=108))
        latencies.append((time.perf_counter_ns() - started) / 1000.0)
        i += 1
    return latencies


def load(address: str, keys: list[int], clients: int, duration: float, pids: list[int]) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    with context.Pool(clients) as pool:
        pool.map(client, [(address, keys, 0.05)] * clients)  # processes up and connected before timing
        started = time.perf_counter()
        pending = pool.map_async(client, [(address, keys[c::clients] or keys, duration) for c in range(clients)])
        own, shared = [], []
        while not pending.ready():
            memory = [rss_mb(pid) for pid in pids]
            own.append(max((m[0] for m in memory), default=float("nan")))
            shared.append(max((m[1] for m in memory), default=float("nan")))
            pending.wait(0.25)
        latencies = [value for values in pending.get() for value in values]
        elapsed = time.perf_counter() - started
    return {"calls_per_s": len(latencies) / elapsed, "latencies": latencies, "own_mb": own, "shared_mb": shared}


def run(context: Context) -> ScenarioResult:
    counts = (1, 2) if context.quick else CLIENTS
    duration = 1.5 if context.quick else 5.0
    keys = random_keys(context.address, 4000, seed=9)
    result = ScenarioResult(params={"clients": list(counts), "duration_s": duration, "address": context.address})
    throughput = {}
    for clients in counts:
        outcome = load(context.address, keys, clients, duration, context.server_pids)
        throughput[clients] = outcome["calls_per_s"]
        result.figures.append(summarize(f"unary Query latency, {clients} client processes", outcome["latencies"], "µs"))
        result.figures.append(
            summarize(f"aggregate calls/s, {clients} client processes", [outcome["calls_per_s"]], "calls/s")
        )
        result.series.setdefault("latency", {})[clients] = outcome["latencies"]
        if context.server_pids and outcome["own_mb"]:
            result.figures.append(summarize(f"server own RSS, {clients} clients", outcome["own_mb"], "MB"))
            result.figures.append(
                summarize(f"server shared store pages, {clients} clients", outcome["shared_mb"], "MB")
            )
            result.target(
                f"server own RSS with {clients} clients",
                max(outcome["own_mb"]),
                "MB",
                200.0,
                at_most=True,
                note="plus shared page cache",
            )
    result.series["throughput"] = throughput
    return result
