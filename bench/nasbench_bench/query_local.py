"""Scenario ``query_local``: the drop-in API over a store in this process, against a faithful model of the
original lookup path (``baseline.py``) loaded from the same store, each side measured the same way:

- **cold**: fresh processes, one pass over never-seen cells (each a different cell under a random relabelling),
  one call timed at a time; what an optimizer meets, since it mostly asks for cells it has not asked for yet.
  Ours and the baseline alternate process by process, on the same cells.
- **warm**: in one process, the same 1,000 cells repeated round after round, interleaved with the baseline.

Both report the median of single calls (a call the machine preempted is an outlier, not a shifted average).
- **start-up**: a fresh process from ``import nasbench.api`` to its first answer, and what it imported.

Run a side alone (what the scenario does in each fresh process)::

    python -m nasbench_bench.query_local cold ours STORE SEED CELLS ROWS
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nasbench import api
from nasbench_bench import baseline
from nasbench_bench.results import Context, ScenarioResult
from nasbench_bench.specs import load_columns, random_specs
from nasbench_bench.timing import Stats, per_call, summarize

_START_UP = """
import json, resource, sys, time
start = time.perf_counter()
from nasbench import api
imported = time.perf_counter()
nasbench = api.NASBench(sys.argv[1], seed=0)
built = time.perf_counter()
nasbench.query(api.ModelSpec([[0, 1, 1], [0, 0, 1], [0, 0, 0]], ["input", "maxpool3x3", "output"]))
answered = time.perf_counter()
rpc = sorted(m for m in sys.modules if m == "grpc" or m.startswith(("grpc.", "google.protobuf")))
print(json.dumps({"import_s": imported - start, "construct_s": built - imported, "first_query_s": answered - built,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rpc_modules": len(rpc)}))
"""


_NUMPY_ONLY = """
import json, time
start = time.perf_counter()
import numpy
print(json.dumps({"import_s": time.perf_counter() - start}))
"""


def start_up(store: str, runs: int) -> tuple[list[dict[str, float]], list[float]]:
    """Fresh processes: import, construction and first query (the key table mapped on the way); and, as the
    floor under it, ``import numpy`` alone. Bytecode is cached as after ``pip install`` (one uncounted run first
    writes it even where PYTHONDONTWRITEBYTECODE is set)."""
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}

    def once(script: str, *args: str) -> dict[str, float]:
        done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, check=True, env=env)
        figures: dict[str, float] = json.loads(done.stdout)
        return figures

    once(_START_UP, store)
    made, numpy_only = [], []
    for _ in range(runs):
        made.append(once(_START_UP, store))
        numpy_only.append(once(_NUMPY_ONLY)["import_s"])
    return made, numpy_only


def cold_side(side: str, store_path: str, specs_file: str, rows: int | None) -> dict[str, list[float]]:
    """In a fresh process: never-seen cells (half of those in ``specs_file``) through ``query`` (ModelSpec
    included), then the other half through ``is_valid`` (specs built beforehand); µs per call, one at a time. The
    cells were chosen by the parent, so this process touches nothing of the store before its first query."""
    with open(specs_file) as handle:
        specs = [(np.array(matrix, dtype=np.int8), ops) for matrix, ops in json.load(handle)]
    cells = len(specs) // 2
    queried, checked = specs[:cells], specs[cells:]
    nasbench: Any  # either side: the same query / is_valid / valid_epochs surface
    spec_class: Any
    if side == "ours":
        nasbench = api.NASBench(store_path, seed=0)
        spec_class = api.ModelSpec
    else:
        nasbench = baseline.OriginalNASBench(load_columns(store_path), seed=0, limit=rows)
        spec_class = baseline.OriginalModelSpec
    epochs = max(nasbench.valid_epochs)
    query_us = []
    clock = time.perf_counter_ns
    for matrix, ops in queried:
        started = clock()
        nasbench.query(spec_class(matrix, list(ops)), epochs)
        query_us.append((clock() - started) / 1000.0)
    built = [spec_class(matrix, list(ops)) for matrix, ops in checked]
    valid_us = []
    for spec in built:
        started = clock()
        nasbench.is_valid(spec)
        valid_us.append((clock() - started) / 1000.0)
    return {"query_us": query_us, "is_valid_us": valid_us}


def _cold_process(side: str, store: str, specs_file: Path, rows: int | None) -> dict[str, list[float]]:
    command = [sys.executable, "-m", "nasbench_bench.query_local", "cold", side, store, str(specs_file)]
    done = subprocess.run([*command, str(rows or 0)], capture_output=True, text=True, check=True)
    samples: dict[str, list[float]] = json.loads(done.stdout)
    return samples


def cold(context: Context, result: ScenarioResult, cells: int, runs: int, rows: int | None) -> dict[str, float]:
    """Alternate fresh processes of ours and the baseline on the same never-seen cells; medians per call."""
    samples: dict[tuple[str, str], list[float]] = {}
    data = load_columns(context.store)
    for run in range(runs):
        specs_file = context.workdir / f"cold-specs-{run}.json"
        chosen = random_specs(data, 2 * cells, seed=100 + run, rows=rows)
        specs_file.write_text(json.dumps([(matrix.tolist(), ops) for matrix, ops in chosen]))
        for side in ("ours", "baseline"):
            found = _cold_process(side, str(context.store), specs_file, rows)
            for kind, values in found.items():
                samples.setdefault((side, kind), []).extend(values)
    names = {
        ("ours", "query_us"): "cold query, ModelSpec included",
        ("baseline", "query_us"): "baseline cold query, ModelSpec included",
        ("ours", "is_valid_us"): "cold is_valid, prebuilt spec",
        ("baseline", "is_valid_us"): "baseline cold is_valid, prebuilt spec",
    }
    medians = {}
    for key, name in names.items():
        figure = summarize(name, samples[key], "µs")
        result.figures.append(figure)
        medians[key[0] + "/" + key[1]] = figure.median
    return medians


def interleaved_calls(cases: dict[str, tuple[Callable[[Any], Any], Sequence[Any]]], rounds: int) -> dict[str, Stats]:
    """µs per call, every call timed alone, the cases alternating round by round (one warm-up round first)."""
    clock = time.perf_counter_ns
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for round_index in range(rounds + 1):
        for name, (func, inputs) in cases.items():
            found = samples[name]
            for item in inputs:
                started = clock()
                func(item)
                if round_index:
                    found.append((clock() - started) / 1000.0)
    return {name: summarize(name, values, "µs") for name, values in samples.items()}


def run(context: Context) -> ScenarioResult:
    quick = context.quick
    cells, rounds, rows = (200, 5, 20_000) if quick else (1000, 21, None)
    cold_cells, cold_runs = (1000, 1) if quick else (5000, 2)
    result = ScenarioResult(
        params={
            "warm_cells": cells,
            "warm_rounds": rounds,
            "cold_cells_per_process": cold_cells,
            "cold_processes_per_side": cold_runs,
            "baseline_rows": rows or "all",
        }
    )
    made, numpy_only = start_up(str(context.store), 3 if quick else 7)
    result.figures.append(summarize("import numpy alone (a floor)", [s * 1000 for s in numpy_only], "ms"))
    result.figures.append(summarize("import nasbench.api", [m["import_s"] * 1000 for m in made], "ms"))
    result.figures.append(summarize("NASBench(store) construction", [m["construct_s"] * 1000 for m in made], "ms"))
    result.figures.append(summarize("first query (maps the key table)", [m["first_query_s"] * 1e3 for m in made], "ms"))
    to_answer = [(m["import_s"] + m["construct_s"] + m["first_query_s"]) * 1000 for m in made]
    result.figures.append(summarize("import to first answer, fresh process", to_answer, "ms"))
    constructed_to_answer = [(m["construct_s"] + m["first_query_s"]) * 1000 for m in made]
    result.figures.append(summarize("construction to first answer, fresh process", constructed_to_answer, "ms"))
    result.ratios["import nasbench.api beyond numpy's import, ms"] = statistics.median(
        m["import_s"] * 1000 for m in made
    ) - statistics.median(s * 1000 for s in numpy_only)
    result.figures.append(summarize("client RSS after the first answer", [m["rss_mb"] for m in made], "MB"))
    result.params["grpc/protobuf modules imported by a local client"] = max(m["rpc_modules"] for m in made)

    medians = cold(context, result, cold_cells, cold_runs, rows)

    data = load_columns(context.store)
    specs = random_specs(data, cells, seed=1, rows=rows)
    started = time.perf_counter()
    original = baseline.OriginalNASBench(data, seed=0, limit=rows)
    load_s = time.perf_counter() - started
    result.figures.append(summarize(f"baseline load of {len(original.fixed_statistics)} cells", [load_s], "s"))
    nasbench = api.NASBench(context.store, seed=0)
    epochs = max(nasbench.valid_epochs)
    prebuilt = [api.ModelSpec(m, o) for m, o in specs]
    prebuilt_original = [baseline.OriginalModelSpec(m, list(o)) for m, o in specs]
    timings = interleaved_calls(
        {
            "warm query, ModelSpec included": (lambda s: nasbench.query(api.ModelSpec(*s), epochs), specs),
            "baseline warm query, ModelSpec included": (
                lambda s: original.query(baseline.OriginalModelSpec(s[0], list(s[1])), epochs),
                specs,
            ),
            "warm query, prebuilt ModelSpec": (lambda s: nasbench.query(s, epochs), prebuilt),
            "baseline warm query, prebuilt ModelSpec": (lambda s: original.query(s, epochs), prebuilt_original),
            "warm is_valid, prebuilt ModelSpec": (nasbench.is_valid, prebuilt),
            "baseline warm is_valid, prebuilt ModelSpec": (original.is_valid, prebuilt_original),
        },
        rounds=rounds,
    )
    result.figures.extend(timings.values())
    batch = per_call("query_batch, per batch", lambda chunk: nasbench.query_batch(chunk, epochs), [prebuilt], rounds)
    result.figures.append(summarize("query_batch, per cell", [batch.median / len(prebuilt)], "µs"))

    cold_ratio = medians["baseline/query_us"] / medians["ours/query_us"]
    warm = timings["warm query, ModelSpec included"].median
    result.ratios["cold: baseline / ours, ModelSpec included"] = cold_ratio
    result.ratios["cold: baseline / ours, is_valid"] = medians["baseline/is_valid_us"] / medians["ours/is_valid_us"]
    result.ratios["warm: baseline / ours, ModelSpec included"] = (
        timings["baseline warm query, ModelSpec included"].median / warm
    )
    result.ratios["warm: baseline / ours, prebuilt spec"] = (
        timings["baseline warm query, prebuilt ModelSpec"].median / timings["warm query, prebuilt ModelSpec"].median
    )
    result.ratios["cold / warm, ours"] = medians["ours/query_us"] / warm
    result.target("cold query incl. ModelSpec", medians["ours/query_us"], "µs", 15.0, at_most=True)
    result.target("cold speedup over the original lookup path", cold_ratio, "x", 15.0, at_most=False)
    result.target("cold is_valid", medians["ours/is_valid_us"], "µs", 5.0, at_most=True)
    result.target("warm query incl. ModelSpec", warm, "µs", 20.0, at_most=True)
    result.target(
        "warm speedup over the original lookup path",
        result.ratios["warm: baseline / ours, ModelSpec included"],
        "x",
        30.0,
        at_most=False,
    )
    result.target(
        "NASBench(store) construction", statistics.median(m["construct_s"] for m in made), "s", 0.1, at_most=True
    )
    # The start-up target: a fresh process's NASBench(store) to its first answer. The import before it is
    # reported above beside its floor, numpy's own import (70-120 ms on the 2-core machine).
    result.target(
        "construction to first answer, fresh process", statistics.median(constructed_to_answer), "ms", 80.0, True
    )
    result.target("client RSS", statistics.median(m["rss_mb"] for m in made), "MB", 100.0, at_most=True)
    return result


def _main(argv: list[str]) -> int:
    if len(argv) != 5 or argv[0] != "cold" or argv[1] not in ("ours", "baseline"):
        print("usage: python -m nasbench_bench.query_local cold ours|baseline STORE SPECS_JSON ROWS", file=sys.stderr)
        return 2
    _, side, store, specs_file, rows = argv
    print(json.dumps(cold_side(side, store, specs_file, int(rows) or None)))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
