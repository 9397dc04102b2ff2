"""Remote benchmarks against a real server on 127.0.0.1 (or any deployment with --target).

- cached repeated query through the drop-in client (no round trip) beside the in-process query;
- unary ``Query`` latency beside an empty ``Ping`` on the same server, interleaved (target: p50 within 1.25x);
- one bidirectional stream: queries per second (target: 4,000);
- ``QueryBatch`` cells per second by batch size (target: 250,000 from one server process);
- aggregate throughput and latency with N client processes, and the server's RSS under that load.

Run: ``python -m nasbench_bench.query_remote [--store STORE | --target HOST:PORT] [--quick]``
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from nasbench import api
from nasbench.v1 import nasbench_pb2 as pb
from nasbench.v1 import nasbench_pb2_grpc as pb_grpc
from nasbench_bench.canonicalization import random_specs
from nasbench_bench.timing import Stats, summarize, time_per_call


def _stub(target: str) -> tuple[grpc.Channel, pb_grpc.NasbenchStub]:
    channel = grpc.insecure_channel(
        target, options=[("grpc.max_receive_message_length", 256 << 20), ("grpc.so_reuseport", 0)]
    )
    return channel, pb_grpc.NasbenchStub(channel)


def random_keys(stub: pb_grpc.NasbenchStub, count: int, seed: int = 0) -> list[int]:
    return [cell.key for cell in stub.Sample(pb.SampleRequest(k=count, seed=seed)).cells]


def unary_vs_ping(target: str, keys: list[int], rounds: int, calls: int) -> dict[str, Stats]:
    """Per-call latency (µs) of Query and of Ping, alternating rounds on one channel."""
    channel, stub = _stub(target)
    samples: dict[str, list[float]] = {"Ping": [], "Query": []}
    requests = [pb.QueryRequest(cell=pb.CellRef(key=k), epochs=108) for k in keys]
    for call in (lambda i: stub.Ping(pb.PingRequest()), lambda i: stub.Query(requests[i % len(requests)])):
        for i in range(50):
            call(i)  # warm up
    for _ in range(rounds):
        for name in ("Ping", "Query"):
            for i in range(calls):
                started = time.perf_counter_ns()
                if name == "Ping":
                    stub.Ping(pb.PingRequest())
                else:
                    stub.Query(requests[i % len(requests)])
                samples[name].append((time.perf_counter_ns() - started) / 1000.0)
    channel.close()
    return {name: summarize(f"unary {name}", values, "µs") for name, values in samples.items()}


def stream_rate(target: str, keys: list[int], count: int) -> float:
    """Queries per second on one bidirectional stream (requests pipelined)."""
    channel, stub = _stub(target)
    requests = [
        pb.QueryRequest(cell=pb.CellRef(key=keys[i % len(keys)]), epochs=108, request_id=i) for i in range(count)
    ]
    list(stub.QueryStream(iter(requests[:100])))
    started = time.perf_counter()
    answered = sum(1 for _ in stub.QueryStream(iter(requests)))
    elapsed = time.perf_counter() - started
    channel.close()
    return answered / elapsed


def stream_rate_aio(target: str, keys: list[int], count: int) -> float:
    """Queries per second on one stream from the asyncio client (a writer task and a reader, pipelined)."""

    async def measure() -> float:
        channel = grpc.aio.insecure_channel(target)
        stub = pb_grpc.NasbenchStub(channel)
        requests = [
            pb.QueryRequest(cell=pb.CellRef(key=keys[i % len(keys)]), epochs=108, request_id=i) for i in range(count)
        ]
        call = stub.QueryStream()

        async def write() -> None:
            for request in requests:
                await call.write(request)
            await call.done_writing()

        started = time.perf_counter()
        writer = asyncio.ensure_future(write())
        answered = 0
        while await call.read() is not grpc.aio.EOF:
            answered += 1
        await writer
        elapsed = time.perf_counter() - started
        await channel.close()
        return answered / elapsed

    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(measure())
    return uvloop.run(measure())


def batch_rates(target: str, keys: list[int], sizes: list[int], epochs: int, repeats: int = 5) -> dict[int, float]:
    """Cells per second of QueryBatch (all three repeats; one budget, or all for epochs=0) by batch size;
    median of ``repeats`` calls, client decoding of the columns into numpy included."""
    channel, stub = _stub(target)
    rates = {}
    for size in sizes:
        request = pb.QueryBatchRequest(keys=[keys[i % len(keys)] for i in range(size)], epochs=epochs)
        stub.QueryBatch(request)
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            response = stub.QueryBatch(request)
            np.frombuffer(response.metrics, dtype="<f8")
            times.append(time.perf_counter() - started)
        rates[size] = size / float(np.median(times))
    channel.close()
    return rates


def _client_load(args: tuple[str, list[int], float]) -> tuple[int, list[float]]:
    target, keys, duration = args
    channel, stub = _stub(target)
    latencies = []
    deadline = time.perf_counter() + duration
    i = 0
    while time.perf_counter() < deadline:
        started = time.perf_counter_ns()
        stub.Query(pb.QueryRequest(cell=pb.CellRef(key=keys[i % len(keys)]), epochs=108))
        latencies.append((time.perf_counter_ns() - started) / 1000.0)
        i += 1
    channel.close()
    return i, latencies


def rss_mb(pid: int) -> tuple[float, float]:
    """(anonymous, file-backed) resident MB of a process: its own memory, and shared page cache it maps."""
    values = {"RssAnon:": float("nan"), "RssFile:": float("nan")}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                name = line.split(":")[0] + ":"
                if name in values:
                    values[name] = int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return values["RssAnon:"], values["RssFile:"]


def concurrency(target: str, keys: list[int], clients: int, duration: float, server_pids: list[int]) -> dict[str, Any]:
    """Aggregate unary Query throughput and latency with ``clients`` processes; server RSS at the end."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(clients) as pool:
        started = time.perf_counter()
        result = pool.map_async(_client_load, [(target, keys[c::clients] or keys, duration) for c in range(clients)])
        peak_anon, peak_file = 0.0, 0.0
        while not result.ready():
            for pid in server_pids:
                anon, file_backed = rss_mb(pid)
                peak_anon, peak_file = max(peak_anon, anon), max(peak_file, file_backed)
            result.wait(0.2)
        outcomes = result.get()
        elapsed = time.perf_counter() - started
    calls = sum(count for count, _ in outcomes)
    latencies = [value for _, values in outcomes for value in values]
    return {
        "clients": clients,
        "calls_per_s": calls / elapsed,
        "latency": summarize(f"unary Query, {clients} client processes", latencies, "µs"),
        "server_rss_anon_mb": peak_anon,  # per process, its own memory
        "server_rss_file_mb": peak_file,  # per process, mapped store pages (shared page cache)
    }


def cached_query(target: str, store: Path | None) -> dict[str, float]:
    """µs per call of a repeated cell through the drop-in client: remote (cached) and, if given, local."""
    specs = [api.ModelSpec(m, o) for m, o in random_specs(200, seed=4)]
    remote = api.NASBench(f"grpc://{target}", seed=0)
    remote.query_batch(specs)  # fill the cache: one round trip
    result = {"remote cached query": time_per_call("", remote.query, specs, rounds=11).median_us}
    if store is not None:
        local = api.NASBench(store, seed=0)
        result["local query"] = time_per_call("", local.query, specs, rounds=11).median_us
    return result


def run(target: str, store: Path | None, server_pids: list[int], quick: bool) -> dict[str, Any]:
    channel, stub = _stub(target)
    keys = random_keys(stub, 5000)
    channel.close()
    latency = unary_vs_ping(target, keys, rounds=3 if quick else 10, calls=200 if quick else 500)
    report: dict[str, Any] = {
        "cached": cached_query(target, store),
        "latency": latency,
        "query_over_ping_p50": latency["Query"].median / latency["Ping"].median,
        "stream_qps": stream_rate(target, keys, 2000 if quick else 20000),
        "stream_qps_aio": stream_rate_aio(target, keys, 2000 if quick else 20000),
        "batch_cells_per_s": batch_rates(target, keys, [1, 10, 100, 1000, 10000] if not quick else [100, 10000], 108),
        "batch_all_budgets_cells_per_s": batch_rates(target, keys, [10000], 0),
        "concurrency": [
            concurrency(target, keys, clients, 2.0 if quick else 5.0, server_pids)
            for clients in ([1, 4] if quick else [1, 4, 16])
        ],
    }
    return report


def print_report(report: dict[str, Any], title: str) -> None:
    print(f"== {title}")
    for name, value in report["cached"].items():
        print(f"  {name:<28} {value:8.2f} µs")
    for stats in report["latency"].values():
        print("  " + stats.row())
    ratio = report["query_over_ping_p50"]
    print(f"  Query p50 / Ping p50 = {ratio:.2f} (target <= 1.25: {'met' if ratio <= 1.25 else 'NOT met'})")
    qps = max(report["stream_qps"], report["stream_qps_aio"])
    print(
        f"  one stream: {report['stream_qps']:,.0f} queries/s (sync client), {report['stream_qps_aio']:,.0f} (asyncio "
        f"client); target 4,000: {'met' if qps >= 4000 else 'NOT met'}"
    )
    for size, rate in report["batch_cells_per_s"].items():
        print(f"  QueryBatch of {size:>6}: {rate:>12,.0f} cells/s")
    best = max(report["batch_cells_per_s"].values())
    verdict = "met" if best >= 250_000 else "NOT met"
    print(f"  best batch rate, one budget: {best:,.0f} cells/s (target 250,000: {verdict})")
    print(f"  all four budgets, batch of 10000: {report['batch_all_budgets_cells_per_s'][10000]:,.0f} cells/s")
    for load in report["concurrency"]:
        memory = f"server RSS {load['server_rss_anon_mb']:.0f} MB own + {load['server_rss_file_mb']:.0f} MB shared"
        print(
            f"  {load['clients']:>2} clients: {load['calls_per_s']:>8,.0f} calls/s, {memory}; {load['latency'].row()}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, help="store to serve (default: the embedded synthetic store)")
    parser.add_argument("--target", help="measure an existing deployment instead of starting servers")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workers", default="1,2", help="server worker counts to compare (own servers only)")
    args = parser.parse_args(argv)
    if args.target:
        print_report(run(args.target, None, [], args.quick), f"target {args.target}")
        return
    from nasbench_server.default_store import ensure_default_store
    from nasbench_server.process import ServerProcess

    store = args.store or ensure_default_store()
    with tempfile.TemporaryDirectory() as folder:
        for workers in [int(w) for w in args.workers.split(",")]:
            import socket

            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            server = ServerProcess(store, Path(folder), port=port, extra=["--workers", str(workers)]).wait_serving()
            pids = [server.process.pid, *_children(server.process.pid)]
            try:
                print_report(run(server.address, store, pids, args.quick), f"server with {workers} worker(s)")
            finally:
                server.stop()


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(child) for child in handle.read().split()]
    except OSError:
        return []


if __name__ == "__main__":
    main()
