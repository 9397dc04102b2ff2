"""Scenario ``load``, the load generator: point it at any deployment, choose client processes, duration, a
request mix and a rate limit; it reports per-request-type latency, throughput and errors, with progress on
stderr while it runs.

``nasbench bench load --target host:port[,host:port] --concurrency 8 --duration 30 --mix query=8,batch=1,sample=1
--rate 2000 --batch-size 100``
"""

from __future__ import annotations

import multiprocessing
import random
import sys
import time
from typing import Any

from nasbench.errors import NasbenchError
from nasbench.transport import Transport
from nasbench.v1 import nasbench_pb2 as pb
from nasbench_bench.results import Context, ScenarioResult
from nasbench_bench.rpc import random_keys
from nasbench_bench.timing import summarize

DEFAULTS = {"concurrency": 4, "duration": 10.0, "mix": "query=8,batch=1,sample=1", "rate": 0.0, "batch_size": 100}
KINDS = ("query", "batch", "sample")


def parse_mix(text: str) -> dict[str, float]:
    """``query=8,batch=1,sample=1`` -> weights; names must be among query, batch, sample."""
    weights = {}
    for part in text.split(","):
        name, _, weight = part.partition("=")
        if name not in KINDS or not weight:
            raise ValueError(f"mix entries are name=weight with names {list(KINDS)}, got {part!r}")
        weights[name] = float(weight)
    if sum(weights.values()) <= 0:
        raise ValueError(f"the mix needs a positive weight, got {text!r}")
    return weights


_counter: Any = None  # requests done by all workers (shared memory, set by the pool's initializer)


def _share(counter: Any) -> None:
    global _counter
    _counter = counter


def worker(args: tuple[Any, ...]) -> dict[str, Any]:
    address, keys, options, seed = args
    counter = _counter
    rng = random.Random(seed)
    weights = parse_mix(options["mix"])
    names, cumulative = list(weights), []
    total = 0.0
    for name in names:
        total += weights[name]
        cumulative.append(total)
    interval = options["concurrency"] / options["rate"] if options["rate"] > 0 else 0.0
    latencies: dict[str, list[float]] = {name: [] for name in names}
    errors: dict[str, int] = {}
    server = Transport(address)
    started = time.perf_counter()
    deadline, next_at = started + options["duration"], started
    while time.perf_counter() < deadline:
        if interval:
            next_at += interval
            pause = next_at - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        kind = names[next(i for i, c in enumerate(cumulative) if rng.random() * total < c)]
        begin = time.perf_counter_ns()
        try:
            if kind == "query":
                server.call("Query", pb.QueryRequest(cell=pb.CellRef(key=rng.choice(keys)), epochs=108))
            elif kind == "batch":
                request = pb.QueryBatchRequest(keys=rng.sample(keys, options["batch_size"]), epochs=108)
                server.call("QueryBatch", request)
            else:
                server.call("Sample", pb.SampleRequest(k=10, seed=rng.getrandbits(63)))
        except NasbenchError as error:
            errors[type(error).__name__] = errors.get(type(error).__name__, 0) + 1
            continue
        latencies[kind].append((time.perf_counter_ns() - begin) / 1000.0)
        with counter.get_lock():
            counter.value += 1
    elapsed = time.perf_counter() - started
    return {"latencies": latencies, "errors": errors, "elapsed": elapsed}


def run(context: Context) -> ScenarioResult:
    options = {**DEFAULTS, **{k: v for k, v in context.load.items() if v is not None}}
    if context.quick and "duration" not in {k for k, v in context.load.items() if v is not None}:
        options["duration"] = 2.0
    parse_mix(options["mix"])
    keys = random_keys(context.address, 5000, seed=3)
    spawn = multiprocessing.get_context("spawn")
    counter = spawn.Value("q", 0)
    result = ScenarioResult(params={**options, "address": context.address})
    with spawn.Pool(options["concurrency"], initializer=_share, initargs=(counter,)) as pool:
        jobs = [(context.address, keys, options, seed) for seed in range(options["concurrency"])]
        pending = pool.map_async(worker, jobs)
        started = time.perf_counter()
        while not pending.ready():
            pending.wait(1.0)
            done, elapsed = counter.value, time.perf_counter() - started
            print(
                f"\rload: {elapsed:5.1f}/{options['duration']:.0f} s, {done:,} requests, "
                f"{done / max(elapsed, 1e-9):,.0f}/s",
                end="",
                file=sys.stderr,
                flush=True,
            )
        print(file=sys.stderr)
        outcomes = pending.get()
    elapsed = max(o["elapsed"] for o in outcomes)
    errors: dict[str, int] = {}
    for outcome in outcomes:
        for code, count in outcome["errors"].items():
            errors[code] = errors.get(code, 0) + count
    total = 0
    for kind in parse_mix(options["mix"]):
        values = [v for o in outcomes for v in o["latencies"][kind]]
        total += len(values)
        if values:
            result.figures.append(summarize(f"load: {kind} latency", values, "µs"))
            result.series.setdefault("latency", {})[kind] = values
    result.figures.append(summarize("load: requests/s", [total / elapsed], "requests/s"))
    result.params["errors"] = errors
    result.params["requests"] = total
    return result
