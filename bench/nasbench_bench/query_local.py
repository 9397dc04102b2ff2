"""Scenario ``query_local``: the drop-in API over a store in this process, side by side with a faithful model of
the original lookup path (``baseline.py``) loaded from the same store, interleaved round by round; also
``NASBench(store)`` construction in fresh processes and ``query_batch`` per cell."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

from nasbench import api
from nasbench.store.reader import Store
from nasbench_bench import baseline
from nasbench_bench.results import Context, ScenarioResult
from nasbench_bench.specs import random_specs
from nasbench_bench.timing import interleaved, per_call, summarize

_CONSTRUCT = """
import json, resource, sys, time
start = time.perf_counter()
from nasbench import api
imported = time.perf_counter()
nasbench = api.NASBench(sys.argv[1])
built = time.perf_counter()
print(json.dumps({"import_s": imported - start, "construct_s": built - imported,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def construction(store: str, runs: int) -> list[dict[str, float]]:
    return [
        json.loads(subprocess.run([sys.executable, "-c", _CONSTRUCT, store], capture_output=True, check=True).stdout)
        for _ in range(runs)
    ]


def run(context: Context) -> ScenarioResult:
    cells, rounds, rows = (200, 5, 20_000) if context.quick else (1000, 21, None)
    result = ScenarioResult(params={"cells": cells, "rounds": rounds, "baseline_rows": rows or "all"})
    made = construction(str(context.store), 3 if context.quick else 7)
    result.figures.append(summarize("NASBench(store) construction", [m["construct_s"] * 1000 for m in made], "ms"))
    result.figures.append(summarize("import nasbench.api", [m["import_s"] * 1000 for m in made], "ms"))
    result.figures.append(summarize("client RSS after construction", [m["rss_mb"] for m in made], "MB"))

    store = Store.open(context.store)
    specs = random_specs(store, cells, seed=1, rows=rows)
    started = time.perf_counter()
    original = baseline.OriginalNASBench(store, seed=0, limit=rows)
    load_s = time.perf_counter() - started
    result.figures.append(summarize(f"baseline load of {len(original.fixed_statistics)} cells", [load_s], "s"))
    nasbench = api.NASBench(context.store, seed=0)
    epochs = max(nasbench.valid_epochs)
    prebuilt = [api.ModelSpec(m, o) for m, o in specs]
    prebuilt_original = [baseline.OriginalModelSpec(m, list(o)) for m, o in specs]
    timings = interleaved(
        {
            "query, ModelSpec included": (lambda s: nasbench.query(api.ModelSpec(*s), epochs), specs),
            "baseline query, ModelSpec included": (
                lambda s: original.query(baseline.OriginalModelSpec(s[0], list(s[1])), epochs),
                specs,
            ),
            "query, prebuilt ModelSpec": (lambda s: nasbench.query(s, epochs), prebuilt),
            "baseline query, prebuilt ModelSpec": (lambda s: original.query(s, epochs), prebuilt_original),
        },
        rounds=rounds,
    )
    result.figures.extend(timings.values())
    batch = per_call("query_batch, per batch", lambda chunk: nasbench.query_batch(chunk, epochs), [prebuilt], rounds)
    result.figures.append(summarize("query_batch, per cell", [batch.median / len(prebuilt)], "µs"))
    store.close()

    ours = timings["query, ModelSpec included"].median
    result.ratios["baseline / ours, ModelSpec included"] = timings["baseline query, ModelSpec included"].median / ours
    result.ratios["baseline / ours, prebuilt spec"] = (
        timings["baseline query, prebuilt ModelSpec"].median / timings["query, prebuilt ModelSpec"].median
    )
    result.target("query incl. ModelSpec", ours, "µs", 20.0, at_most=True)
    result.target(
        "speedup over the original lookup path",
        result.ratios["baseline / ours, ModelSpec included"],
        "x",
        30.0,
        at_most=False,
    )
    result.target(
        "NASBench(store) construction", statistics.median(m["construct_s"] for m in made), "s", 0.1, at_most=True
    )
    result.target("client RSS", statistics.median(m["rss_mb"] for m in made), "MB", 100.0, at_most=True)
    return result
