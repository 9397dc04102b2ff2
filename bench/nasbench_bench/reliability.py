"""Scenario ``reliability``: what trusting the store costs, and whether health stays answered under heavy calls.

- Opening the store: mapping only (``verify=False``), the first open of a file (every checksum re-read with plain
  reads), and later opens of the same unchanged file (the recorded verification); a server from launch to
  SERVING the first time it sees the file and afterwards.
- Health latency, measured from another process, alone and while four clients each ask for a sample of
  100,000 cells at once (84 MB answers, computed on the server's worker thread).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time

import grpc

from nasbench import keytable
from nasbench.v1 import nasbench_pb2 as pb
from nasbench.v1 import nasbench_pb2_grpc as pb_grpc
from nasbench_bench.results import Context, ScenarioResult
from nasbench_bench.timing import summarize
from nasbench_server.process import HealthProber, ServerProcess

_OPEN = """
import json, sys, time
from nasbench.store.reader import Store
mode = {"map": False, "verify": True, "recorded": None}[sys.argv[2]]
started = time.perf_counter()
Store.open(sys.argv[1], verify=mode).close()
print(json.dumps(time.perf_counter() - started))
"""
_BIG = [("grpc.max_receive_message_length", 256 << 20)]


def _open_seconds(store: str, mode: str, env: dict[str, str]) -> float:
    done = subprocess.run([sys.executable, "-c", _OPEN, store, mode], capture_output=True, check=True, env=env)
    return float(json.loads(done.stdout))


def _health_latencies(address: str, load: int, k: int) -> list[float]:
    """Health latencies (ms) from another process while ``load`` clients each ask for a sample of ``k`` cells."""
    with HealthProber(address) as prober, grpc.insecure_channel(address, options=_BIG) as channel:
        time.sleep(1.0)
        stub = pb_grpc.NasbenchStub(channel)
        clients = [
            threading.Thread(target=lambda seed=seed: stub.Sample(pb.SampleRequest(k=k, seed=seed), timeout=600))
            for seed in range(load)
        ]
        for client in clients:
            client.start()
        for client in clients:
            client.join()
        if not load:
            time.sleep(3.0)
    return [seconds * 1000 for seconds in prober.latencies]


def _cache_folder(context: Context, name: str) -> str:
    """A cache folder with no verification recorded yet, but this machine's key table (not rebuilt)."""
    folder = context.workdir / name
    folder.mkdir()
    table = keytable.default_path()
    if table.exists():
        shutil.copy(table, folder / table.name)
    return str(folder)


def run(context: Context) -> ScenarioResult:

    runs = 2 if context.quick else 5
    result = ScenarioResult(params={"runs": runs})
    store = str(context.store)
    size_mb = os.path.getsize(store) / 1e6
    env = {**os.environ, "NASBENCH_CACHE_DIR": str(_cache_folder(context, "opens"))}
    mapped = [_open_seconds(store, "map", env) for _ in range(runs)]
    verified = [_open_seconds(store, "verify", env) for _ in range(runs)]
    _open_seconds(store, "recorded", env)  # records this file's verification
    recorded = [_open_seconds(store, "recorded", env) for _ in range(runs)]
    result.figures.append(summarize("open, mapping only (verify=False)", [s * 1000 for s in mapped], "ms"))
    result.figures.append(summarize("open, every checksum re-read", [s * 1000 for s in verified], "ms"))
    result.figures.append(summarize("open, verification recorded", [s * 1000 for s in recorded], "ms"))
    result.ratios["verification throughput, MB/s"] = size_mb / statistics.median(verified)
    result.ratios["recorded open / mapping only"] = statistics.median(recorded) / statistics.median(mapped)

    first: list[float] = []
    later: list[float] = []
    for index in range(runs):
        fresh = _cache_folder(context, f"starts-{index}")
        for bucket, cache in ((first, fresh), (later, fresh)):  # a new record folder: verify, then recorded
            started = time.perf_counter()
            server = ServerProcess(context.store, context.workdir, env={"NASBENCH_CACHE_DIR": str(cache)})
            server.wait_serving()
            bucket.append(time.perf_counter() - started)
            server.stop()
    result.figures.append(summarize("server launch to SERVING, file not seen before", first, "s"))
    result.figures.append(summarize("server launch to SERVING, verification recorded", later, "s"))
    result.target("server healthy (recorded)", min(later), "s", 1.0, at_most=True, note="includes the Python start")

    server = ServerProcess(context.store, context.workdir).wait_serving()
    try:
        k = 10_000 if context.quick else 100_000
        idle = _health_latencies(server.address, 0, k)
        loaded = _health_latencies(server.address, 4, k)
    finally:
        server.stop()
    result.figures.append(summarize("health latency, idle server (another process)", idle, "ms"))
    result.figures.append(summarize(f"health latency, 4 concurrent samples of {k:,} cells", loaded, "ms"))
    p99 = sorted(loaded)[int(0.99 * (len(loaded) - 1))]
    result.target("health p99 while heavy calls run", p99, "ms", 100.0, at_most=True, note="from another process")
    return result
