"""Scenario ``cold_start``: a server from launch to SERVING on the store; a client process from launch to its
first answer (local store and remote server); against loading the same data into the original's structures."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from nasbench_bench import baseline
from nasbench_bench.results import Context, ScenarioResult
from nasbench_bench.specs import load_columns
from nasbench_bench.timing import summarize

_FIRST_QUERY = """
import json, sys, time
start = time.perf_counter()
from nasbench import api
nasbench = api.NASBench(sys.argv[1], seed=0)
built = time.perf_counter()
spec = api.ModelSpec([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "conv3x3-bn-relu", "output"])
nasbench.query(spec)
print(json.dumps({"construct_s": built - start, "first_query_s": time.perf_counter() - built}))
"""


def _first_query(dataset: str) -> dict[str, float]:
    figures: dict[str, float] = json.loads(
        subprocess.run([sys.executable, "-c", _FIRST_QUERY, dataset], capture_output=True, check=True).stdout
    )
    return figures


def run(context: Context) -> ScenarioResult:
    from nasbench_server.process import ServerProcess

    runs = 2 if context.quick else 5
    result = ScenarioResult(params={"runs": runs})
    to_serving = []
    for _ in range(runs):
        started = time.perf_counter()
        server = ServerProcess(context.store, context.workdir).wait_serving()
        to_serving.append(time.perf_counter() - started)
        server.stop()
    result.figures.append(summarize("server launch to SERVING (checksums verified)", to_serving, "s"))
    result.target("server healthy", min(to_serving), "s", 1.0, at_most=True, note="includes the Python start")
    for label, dataset in (("local store", str(context.store)), ("remote server", f"grpc://{context.address}")):
        outcomes = [_first_query(dataset) for _ in range(runs)]
        result.figures.append(
            summarize(f"client launch to constructed, {label}", [o["construct_s"] for o in outcomes], "s")
        )
        result.figures.append(summarize(f"first query, {label}", [o["first_query_s"] * 1000 for o in outcomes], "ms"))
    data = load_columns(context.store)
    rows = 20_000 if context.quick else None
    started = time.perf_counter()
    loaded = baseline.OriginalNASBench(data, limit=rows)
    seconds = time.perf_counter() - started
    cells = len(loaded.fixed_statistics)
    del loaded, data
    result.figures.append(summarize(f"baseline: load {cells} cells into the original's dicts", [seconds], "s"))
    result.ratios["baseline load / server to SERVING"] = seconds / min(to_serving)
    return result
