"""Scenario ``analyze``: ``nasbench analyze`` as a user runs it, each run a fresh process on the store: the whole
report except locality (summary, budget correlation, Pareto, noise, ops, with plots), and locality alone; wall
time (process start, imports and loading included) and peak RSS of each, against the design's targets (≤ 10 s,
≤ 60 s, ≤ 1 GB). When a server is at hand, also the time to fetch every column from it (``QueryBatch`` in
chunks). Quick runs analyse a store of the cells up to 5 vertices."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from nasbench import space
from nasbench_bench.results import Context, ScenarioResult
from nasbench_bench.rpc import high_water_mb
from nasbench_bench.timing import summarize

REPORT_S = 10.0
LOCALITY_S = 60.0
MEMORY_MB = 1024.0
_WITHOUT_LOCALITY = ["summary", "budget-correlation", "pareto", "noise", "ops"]


def _analyze(store: Path, out: Path, analyses: list[str]) -> tuple[float, float, dict[str, Any]]:
    """Wall time, peak RSS (MB) and the per-stage timings of one ``nasbench analyze`` process; the timings also
    hold its CPU time (user + system) under ``cpu``, which a loaded machine inflates far less than wall time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    command = [sys.executable, "-m", "nasbench._cli", "analyze", "--store", str(store), "--out", str(out), *analyses]
    log = out.with_name(f"{out.name}.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    peak = 0.0
    with open(log, "wb") as errors, subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors) as process:
        while process.poll() is None:
            peak = max(peak, high_water_mb(process.pid))
            time.sleep(0.02)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"nasbench analyze failed: {log.read_text()[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    timings = json.loads((out / "results.json").read_text()).get("timings_s", {})
    timings["cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, peak, timings


def _small_store(context: Context) -> Path:
    from nasbench_builder import synthetic, writer

    path = context.workdir / "analyze-small.lmdb"
    data = synthetic.synthesize(max_vertices=5, table=space.load_space())
    writer.write_store(data.dataset, path, overwrite=True)
    return path


def run(context: Context) -> ScenarioResult:
    store = _small_store(context) if context.quick else context.store
    rounds = 1 if context.quick else 3
    result = ScenarioResult(params={"store": str(store), "rounds": rounds})
    runs: dict[str, list[tuple[float, float, dict[str, Any]]]] = {"report": [], "locality": []}
    for index in range(rounds):
        out = context.workdir / f"analysis-{index}"
        runs["report"].append(_analyze(store, out / "report", _WITHOUT_LOCALITY))
        runs["locality"].append(_analyze(store, out / "locality", ["locality"]))
    for kind, label in (("report", "report except locality"), ("locality", "locality")):
        seconds = [run[0] for run in runs[kind]]
        peaks = [run[1] for run in runs[kind]]
        result.figures += [
            summarize(f"analyze: {label}, wall time (fresh process)", seconds, "s"),
            summarize(f"analyze: {label}, peak RSS", peaks, "MB"),
            summarize(f"analyze: {label}, CPU time (user + system)", [run[2]["cpu"] for run in runs[kind]], "s"),
        ]
        stages = sorted({stage for run in runs[kind] for stage in run[2]} - {"cpu"})
        for stage in stages:
            values = [run[2][stage] for run in runs[kind] if stage in run[2]]
            result.figures.append(summarize(f"analyze: {label}: {stage}", values, "s"))
        if not context.quick:
            bound = REPORT_S if kind == "report" else LOCALITY_S
            median = sorted(seconds)[len(seconds) // 2]
            result.target(f"analyze: {label} (median wall time)", median, "s", bound, at_most=True)
            result.target(f"analyze: {label} (peak RSS)", max(peaks), "MB", MEMORY_MB, at_most=True)
    if context.address and not context.quick:
        from nasbench_experiments.analysis import columns

        started = time.perf_counter()
        fetched = columns.load(context.address)
        elapsed = time.perf_counter() - started
        result.figures.append(summarize("analyze: every column from the server (QueryBatch)", [elapsed], "s"))
        result.params["server_cells"] = fetched.cells
    return result
