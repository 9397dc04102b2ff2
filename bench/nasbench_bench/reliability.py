"""Scenario ``reliability``: what trusting the store costs, and whether one client can make the server slow or
unavailable for the others.

- Opening the store (``api.NASBench``): the first open after the file changed (every checksum re-read with plain
  reads), and later opens of the same unchanged file (the recorded verification); a server from launch to
  SERVING the first time it sees the file, afterwards (both under a read lease where the store's owner runs it),
  and serving a private copy (``--store-guard copy``: copied and verified at every start).
- Health latency, measured from another process, alone and while four clients each ask for a sample of
  100,000 cells at once (84 MB answers, computed on the server's heavy lane).
- Fairness: a 2,000-cell ``QueryBatch`` alone, while another client process loops four concurrent
  ``Sample(100,000)``, and while that client is stopped (SIGSTOP) in the middle of its answers (10 s deadline
  per batch; a batch that misses it counts as 10 s).
- Idle streams: health latency (from another process) and a new stream's latency to its first answer while
  another client holds 70 ``QueryStream`` calls open that send nothing.
- The metrics endpoint: unary ``Query`` latency with the endpoint idle and during 2,000 scrapes from another
  process, and the server's CPU time per scrape (the same flood again, alone).
"""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

from nasbench.errors import NasbenchError
from nasbench.transport import Transport
from nasbench.v1 import nasbench_pb2 as pb
from nasbench_bench.results import Context, ScenarioResult
from nasbench_bench.specs import load_columns
from nasbench_bench.timing import summarize
from nasbench_server.process import HealthProber, ServerProcess, free_ports

_OPEN = """
import json, sys, time
from nasbench import api
started = time.perf_counter()
api.NASBench(sys.argv[1]).close()
print(json.dumps(time.perf_counter() - started))
"""
# another client: four threads asking for samples of k cells in a loop (until killed); prints once it has its
# first answer
_SAMPLER = """
import sys, threading
from nasbench.transport import Transport
from nasbench.v1 import nasbench_pb2 as pb
address, k = sys.argv[1], int(sys.argv[2])
server = Transport(address, timeout=600)
first = threading.Event()
def loop(seed):
    while True:
        server.call("Sample", pb.SampleRequest(k=k, seed=seed))
        seed += 4
        first.set()
for seed in range(4):
    threading.Thread(target=loop, args=(seed,), daemon=True).start()
first.wait()
print("sampling", flush=True)
threading.Event().wait()
"""
# another client: ``count`` QueryStream calls on one channel that send nothing (until killed). Raw gRPC: no
# client of this package leaves a stream open without sending, so this one speaks the wire contract directly.
_IDLE_STREAMS = """
import sys, threading, time, grpc
from nasbench.v1 import nasbench_pb2_grpc as pb_grpc
address, count = sys.argv[1], int(sys.argv[2])
never = threading.Event()
def nothing():
    never.wait()
    yield from ()
# over 5 connections, none past its half of the slots, so that together they take every slot
channels = [grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)]) for _ in range(5)]
calls = [pb_grpc.NasbenchStub(channels[i % 5]).QueryStream(nothing()) for i in range(count)]
time.sleep(2.0)
print("holding", flush=True)
never.wait()
"""
# another client: ``count`` scrapes of a metrics endpoint from 16 threads; prints how many failed when done
_SCRAPER = """
import sys, threading, urllib.request
url, count = sys.argv[1], int(sys.argv[2])
left, failed = [count], [0]
lock = threading.Lock()
def scrape():
    while True:
        with lock:
            if left[0] == 0:
                return
            left[0] -= 1
        try:
            urllib.request.urlopen(url, timeout=30).read()
        except OSError:
            with lock:
                failed[0] += 1
threads = [threading.Thread(target=scrape) for _ in range(16)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(failed[0], flush=True)
"""
BATCH_DEADLINE_S = 10.0


def _open_seconds(store: str, env: dict[str, str], changed: bool) -> float:
    """A fresh process's ``NASBench(store)``; ``changed``: after a change to the file (its checksums re-read)."""
    if changed:
        os.utime(store)  # a new modification time: a new file identity, whose verification is not recorded
    done = subprocess.run([sys.executable, "-c", _OPEN, store], capture_output=True, check=True, env=env)
    return float(json.loads(done.stdout))


def _health_latencies(address: str, load: int, k: int) -> list[float]:
    """Health latencies (ms) from another process while ``load`` clients each ask for a sample of ``k`` cells."""
    with HealthProber(address) as prober:
        time.sleep(1.0)
        server = Transport(address, timeout=600)
        clients = [
            threading.Thread(target=lambda seed=seed: server.call("Sample", pb.SampleRequest(k=k, seed=seed)))
            for seed in range(load)
        ]
        for client in clients:
            client.start()
        for client in clients:
            client.join()
        if not load:
            time.sleep(3.0)
    return [seconds * 1000 for seconds in prober.latencies]


class _Client:
    """A helper client process running one of the scripts above; ``ready()`` waits for its first line."""

    def __init__(self, script: str, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", script, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )

    def ready(self) -> str:
        """The helper's first line (it has done its first part)."""
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the helper client exited with {self.process.wait()}")
        return line.strip()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a stopped process only dies once continued
            self.process.kill()
        self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def _batch_latencies(server: Transport, keys: list[int], rounds: int, seed: int) -> list[float]:
    """Latencies (ms) of ``rounds`` QueryBatch calls of 2,000 cells; a failed call counts as the deadline."""
    rng = random.Random(seed)
    latencies = []
    for _ in range(rounds):
        request = pb.QueryBatchRequest(keys=rng.sample(keys, 2000), epochs=108)
        started = time.perf_counter()
        try:
            server.call("QueryBatch", request, timeout=BATCH_DEADLINE_S)
            latencies.append((time.perf_counter() - started) * 1000)
        except NasbenchError:
            latencies.append(BATCH_DEADLINE_S * 1000)
    return latencies


def _fairness(result: ScenarioResult, context: Context, keys: list[int]) -> None:
    """2,000-cell batches alone, against a client looping four samples of k cells, and with that client stopped."""
    rounds = 10 if context.quick else 40
    k = 10_000 if context.quick else 100_000
    server = ServerProcess(context.store, context.workdir).wait_serving()
    sampler = None
    try:
        client = Transport(server.address)
        _batch_latencies(client, keys, 3, seed=0)  # warm
        alone = _batch_latencies(client, keys, rounds, seed=1)
        sampler = _Client(_SAMPLER, server.address, str(k))
        sampler.ready()
        loaded = _batch_latencies(client, keys, rounds, seed=2)
        sampler.process.send_signal(signal.SIGSTOP)  # in the middle of its answers: it reads nothing more
        time.sleep(1.0)
        stopped = _batch_latencies(client, keys, 3 if context.quick else 5, seed=3)
    finally:
        if sampler is not None:
            sampler.stop()
        server.stop()
    result.figures.append(summarize("2,000-cell QueryBatch, alone", alone, "ms"))
    result.figures.append(summarize(f"2,000-cell QueryBatch, another client 4 x Sample({k:,})", loaded, "ms"))
    result.figures.append(summarize("2,000-cell QueryBatch, that client stopped mid-answer", stopped, "ms"))
    result.ratios["2,000-cell QueryBatch p50, loaded / alone"] = statistics.median(loaded) / statistics.median(alone)
    p99 = float(np.percentile(loaded, 99))
    result.target(
        f"2,000-cell QueryBatch p99 against 4 x Sample({k:,})", p99, "ms", 100.0, at_most=True, note="another process"
    )


def _idle_streams(result: ScenarioResult, context: Context) -> None:
    """Health and a new stream's latency while another client holds 70 streams that send nothing (over 5
    connections, so that they take all 64 slots): how long until an idle stream makes room, and the first answers
    of new streams from then on."""
    wanted = 10 if context.quick else 30
    server = ServerProcess(context.store, context.workdir).wait_serving()
    holder = _Client(_IDLE_STREAMS, server.address, "70")
    try:
        holder.ready()
        filled = time.perf_counter()
        with HealthProber(server.address) as prober:
            client = Transport(server.address, timeout=10)
            client.call("Ping", pb.PingRequest())  # connected
            latencies: list[float] = []
            refused, room_after = 0, None
            while len(latencies) < wanted and time.perf_counter() - filled < 60:
                started = time.perf_counter()
                try:
                    next(iter(client.stream("QueryStream", iter([pb.QueryRequest(cell=pb.CellRef(key=0))]))))
                    latencies.append((time.perf_counter() - started) * 1000)
                    if room_after is None:
                        room_after = started - filled
                except NasbenchError:
                    refused += 1
                time.sleep(0.1)
    finally:
        holder.stop()
        server.stop()
    result.figures.append(summarize("health latency, 70 idle streams open", [s * 1000 for s in prober.latencies], "ms"))
    if latencies:
        result.figures.append(summarize("new stream to first answer, 70 idle streams open", latencies, "ms"))
    result.params["new streams refused while the idle ones are younger than 5 s"] = refused
    result.params["first new stream answered, seconds after the idle ones took every slot"] = (
        "never (60 s)" if room_after is None else round(room_after, 2)
    )


def _metrics_flood(result: ScenarioResult, context: Context, keys: list[int]) -> None:
    """Unary Query latency with the metrics endpoint idle, and while another process scrapes it 2,000 times."""
    scrapes = 500 if context.quick else 2000
    metrics_port = free_ports()[0]
    server = ServerProcess(context.store, context.workdir, extra=["--metrics-port", str(metrics_port)])
    server.wait_serving()
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    scraper = None
    try:
        urllib.request.urlopen(url, timeout=10).read()
        client = Transport(server.address)
        rng = random.Random(5)

        def queries(until: threading.Event | None, count: int) -> list[float]:
            latencies: list[float] = []
            while (until is None and len(latencies) < count) or (until is not None and not until.is_set()):
                request = pb.QueryRequest(cell=pb.CellRef(key=rng.choice(keys)), epochs=108)
                started = time.perf_counter()
                client.call("Query", request)
                latencies.append((time.perf_counter() - started) * 1000)
            return latencies

        queries(None, 200)  # warm
        quiet = queries(None, 2000)
        done = threading.Event()
        scraper = _Client(_SCRAPER, url, str(scrapes))

        failed: list[str] = []

        def wait_for_scraper(helper: _Client) -> None:
            failed.append(helper.ready())
            done.set()

        waiter = threading.Thread(target=wait_for_scraper, args=(scraper,))
        waiter.start()
        flooded = queries(done, 0)
        waiter.join()
        scraper.stop()
        cpu_before = _cpu_seconds(server.process.pid)  # the same flood again, alone: what it costs the server
        scraper = _Client(_SCRAPER, url, str(scrapes))
        scraper.ready()
        cpu = _cpu_seconds(server.process.pid) - cpu_before
    finally:
        if scraper is not None:
            scraper.stop()
        server.stop()
    result.figures.append(summarize("Query, metrics endpoint idle", quiet, "ms"))
    result.figures.append(summarize(f"Query, during {scrapes:,} metrics scrapes", flooded, "ms"))
    result.params[f"metrics scrapes failed, of {scrapes:,}"] = int(failed[0])
    result.ratios["server CPU per metrics scrape, ms"] = cpu / scrapes * 1000
    result.ratios[f"Query p99, {scrapes:,} scrapes / idle"] = float(np.percentile(flooded, 99)) / float(
        np.percentile(quiet, 99)
    )


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(context: Context) -> ScenarioResult:

    runs = 2 if context.quick else 5
    result = ScenarioResult(params={"runs": runs})
    store = str(context.store)
    size_mb = os.path.getsize(store) / 1e6
    env = {**os.environ, "NASBENCH_CACHE_DIR": str(context.workdir / "opens")}
    _open_seconds(store, env, changed=False)  # the new cache folder's key table, built once
    verified = [_open_seconds(store, env, changed=True) for _ in range(runs)]
    recorded = [_open_seconds(store, env, changed=False) for _ in range(runs)]
    result.figures.append(
        summarize("open, the file changed (every checksum re-read)", [s * 1000 for s in verified], "ms")
    )
    result.figures.append(summarize("open, verification recorded", [s * 1000 for s in recorded], "ms"))
    result.ratios["open after a change / recorded open"] = statistics.median(verified) / statistics.median(recorded)

    first: list[float] = []
    later: list[float] = []
    copied: list[float] = []
    starts_cache = str(context.workdir / "opens")  # the key table there is built
    for _ in range(runs):
        os.utime(store)  # a file not seen before: verify, then recorded; then a private copy (verified every time)
        for bucket, guard in ((first, "auto"), (later, "auto"), (copied, "copy")):
            started = time.perf_counter()
            server = ServerProcess(
                context.store, context.workdir, extra=["--store-guard", guard], env={"NASBENCH_CACHE_DIR": starts_cache}
            )
            server.wait_serving()
            bucket.append(time.perf_counter() - started)
            server.stop()
    result.figures.append(summarize("server launch to SERVING, file not seen before", first, "s"))
    result.figures.append(summarize("server launch to SERVING, verification recorded", later, "s"))
    result.figures.append(summarize("server launch to SERVING, private copy (--store-guard copy)", copied, "s"))
    result.ratios["private copy: shared memory, MB"] = size_mb
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

    keys = load_columns(context.store).keys.tolist()
    _fairness(result, context, keys)
    _idle_streams(result, context)
    _metrics_flood(result, context, keys)
    return result
