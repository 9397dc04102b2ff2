"""Scenario ``remote``: one server, one client. Unary ``Query`` beside an empty ``Ping`` (interleaved, per-call
latency), one bidirectional stream (sync and asyncio clients), ``QueryBatch`` by batch size, and a repeated
cell through the drop-in client (its cache: no round trip)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import numpy as np

from nasbench import api
from nasbench.transport import AsyncTransport, Transport
from nasbench.v1 import nasbench_pb2 as pb
from nasbench_bench.results import Context, ScenarioResult
from nasbench_bench.rpc import random_keys
from nasbench_bench.specs import load_columns, random_specs
from nasbench_bench.timing import per_call, summarize

BATCH_SIZES = (1, 10, 100, 1000, 10000)


def unary_vs_ping(address: str, keys: list[int], rounds: int, calls: int) -> dict[str, list[float]]:
    """Per-call µs of an empty ``Ping`` and of ``Query`` through the client's transport, interleaved by round."""
    server = Transport(address)
    requests = [pb.QueryRequest(cell=pb.CellRef(key=k), epochs=108) for k in keys]
    ping = pb.PingRequest()
    samples: dict[str, list[float]] = {"Ping": [], "Query": []}
    for i in range(100):
        server.call("Ping", ping)
        server.call("Query", requests[i % len(requests)])
    for _ in range(rounds):
        for _ in range(calls):
            started = time.perf_counter_ns()
            server.call("Ping", ping)
            samples["Ping"].append((time.perf_counter_ns() - started) / 1000.0)
        for i in range(calls):
            started = time.perf_counter_ns()
            server.call("Query", requests[i % len(requests)])
            samples["Query"].append((time.perf_counter_ns() - started) / 1000.0)
    return samples


def stream_sync(address: str, keys: list[int], count: int) -> float:
    server = Transport(address)
    requests = [
        pb.QueryRequest(cell=pb.CellRef(key=keys[i % len(keys)]), epochs=108, request_id=i) for i in range(count)
    ]
    list(server.stream("QueryStream", iter(requests[:100])))
    started = time.perf_counter()
    answered = sum(1 for _ in server.stream("QueryStream", iter(requests)))
    return answered / (time.perf_counter() - started)


def stream_aio(address: str, keys: list[int], count: int) -> float:
    async def measure() -> float:
        server = AsyncTransport(address)
        requests = [pb.QueryRequest(cell=pb.CellRef(key=keys[i % len(keys)]), epochs=108) for i in range(count)]

        async def feed() -> AsyncIterator[pb.QueryRequest]:
            for request in requests:
                yield request

        started = time.perf_counter()
        answered = 0
        async for _ in server.stream("QueryStream", feed()):
            answered += 1
        rate = answered / (time.perf_counter() - started)
        await server.close()
        return rate

    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(measure())
    return uvloop.run(measure())


def batch_costs(
    address: str, keys: list[int], sizes: tuple[int, ...], epochs: int, repeats: int
) -> dict[int, list[float]]:
    """µs per cell of QueryBatch (decoding included) by batch size, one sample per call."""
    server = Transport(address)
    costs: dict[int, list[float]] = {}
    for size in sizes:
        request = pb.QueryBatchRequest(keys=[keys[i % len(keys)] for i in range(size)], epochs=epochs)
        server.call("QueryBatch", request)
        costs[size] = []
        for _ in range(repeats):
            started = time.perf_counter_ns()
            response = server.call("QueryBatch", request)
            np.frombuffer(response.metrics, dtype="<f8")
            costs[size].append((time.perf_counter_ns() - started) / 1000.0 / size)
    return costs


def run(context: Context) -> ScenarioResult:
    quick = context.quick
    keys = random_keys(context.address, 5000)
    rounds, calls = (3, 200) if quick else (10, 500)
    result = ScenarioResult(params={"address": context.address, "rounds": rounds, "calls_per_round": calls})
    latency = unary_vs_ping(context.address, keys, rounds, calls)
    ping, query = summarize("unary Ping", latency["Ping"], "µs"), summarize("unary Query", latency["Query"], "µs")
    result.figures += [ping, query]
    result.series["latency"] = latency
    result.ratios["Query p50 / Ping p50"] = query.median / ping.median
    result.target("unary Query p50 over empty RPC p50", query.median / ping.median, "x", 1.25, at_most=True)

    count = 2000 if quick else 20000
    sync_rates = [stream_sync(context.address, keys, count) for _ in range(1 if quick else 3)]
    aio_rates = [stream_aio(context.address, keys, count) for _ in range(1 if quick else 3)]
    result.figures.append(summarize("one stream, sync client", sync_rates, "queries/s"))
    result.figures.append(summarize("one stream, asyncio client", aio_rates, "queries/s"))
    result.target(
        "queries/s on one stream",
        max(np.median(sync_rates), np.median(aio_rates)),
        "queries/s",
        4000,
        at_most=False,
        note="bounded by gRPC's per-message cost in Python",
    )

    sizes = (100, 10000) if quick else BATCH_SIZES
    costs = batch_costs(context.address, keys, sizes, epochs=108, repeats=3 if quick else 7)
    for size, values in costs.items():
        result.figures.append(summarize(f"QueryBatch of {size}, per cell", values, "µs"))
    result.series["batch_cost"] = {size: float(np.median(values)) for size, values in costs.items()}
    best = max(1e6 / float(np.median(values)) for values in costs.values())
    all_budgets = batch_costs(context.address, keys, (10000,), epochs=0, repeats=3)[10000]
    result.figures.append(summarize("QueryBatch of 10000, all budgets, per cell", all_budgets, "µs"))
    result.target("QueryBatch cells/s (one budget)", best, "cells/s", 250_000, at_most=False)

    specs = [api.ModelSpec(m, o) for m, o in random_specs(load_columns(context.store), 200, seed=4)]
    remote = api.NASBench(f"grpc://{context.address}", seed=0)
    remote.query_batch(specs)  # one round trip fills the cache
    cached = per_call("remote query of a cached cell", remote.query, specs, 5 if quick else 11)
    result.figures.append(cached)
    result.target(
        "repeated cell through the remote client",
        cached.median,
        "µs",
        50.0,
        at_most=True,
        note="microseconds, no round trip",
    )
    return result
