"""Scenario ``build``: synthetic files in the original format built into stores: records/s, peak memory of the
build (workers included), store size, time to open, and a bit-for-bit round trip. Full runs use the full-scale
108-epoch (1,270,872 records) and all-budget (5,083,488 records) files; quick runs a file of the cells up to 5
vertices (30,384 records)."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np

from nasbench import api, space
from nasbench_bench.results import Context, ScenarioResult
from nasbench_bench.rpc import descendants, high_water_mb
from nasbench_bench.specs import load_columns
from nasbench_bench.timing import summarize
from nasbench_builder import synthetic

TARGETS_S = {"108": 30.0, "full": 120.0}


def _build(source: str, store: str) -> tuple[float, float, float]:
    """Wall time, and the peak RSS (MB) of the build process and of its largest worker."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "nasbench._cli", "build", source, store, "--force"], stderr=subprocess.DEVNULL
    )
    main_peak, worker_peak = 0.0, 0.0
    while process.poll() is None:
        main_peak = max(main_peak, high_water_mb(process.pid))
        worker_peak = max([worker_peak] + [high_water_mb(child) for child in descendants(process.pid)])
        time.sleep(0.05)
    if process.returncode != 0:
        raise RuntimeError(f"build of {source} failed")
    return time.perf_counter() - started, main_peak, worker_peak


def run(context: Context) -> ScenarioResult:
    kinds = {"small": ((4, 12, 36, 108), 5)} if context.quick else {"108": ((108,), 7), "full": ((4, 12, 36, 108), 7)}
    result = ScenarioResult(params={"files": list(kinds)})
    table = space.load_space()
    for kind, (epochs, max_vertices) in kinds.items():
        source, store_path = context.workdir / f"{kind}.tfrecord", context.workdir / f"{kind}.lmdb"
        data = synthetic.synthesize(epochs, max_vertices=max_vertices, table=table)
        records = synthetic.write_tfrecord(data, source)
        seconds, peak, worker_peak = _build(str(source), str(store_path))
        opens = []
        for _ in range(10):
            started = time.perf_counter()
            api.NASBench(store_path).close()
            opens.append((time.perf_counter() - started) * 1000)
        built = load_columns(store_path)  # in key order
        order = np.argsort(data.dataset.keys, kind="stable")
        same = built.metrics.tobytes() == data.dataset.metrics[order].tobytes() and np.array_equal(
            built.hashes, data.dataset.hashes[order]
        )
        result.figures += [
            summarize(f"build {kind} ({records:,} records)", [seconds], "s"),
            summarize(f"build {kind}, throughput", [records / seconds], "records/s"),
            summarize(f"build {kind}, peak RSS of the build process", [peak], "MB"),
            summarize(f"build {kind}, peak RSS of a worker", [worker_peak], "MB"),
            summarize(f"store {kind}, size", [store_path.stat().st_size / 1e6], "MB"),
            summarize(f"store {kind}, open", opens, "ms"),
        ]
        result.params[f"{kind}_round_trip_bit_identical"] = bool(same)
        if kind in TARGETS_S:
            result.target(f"build of the {kind} file", seconds, "s", TARGETS_S[kind], at_most=True)
        source.unlink()
        store_path.unlink()
    return result
