"""Scenario ``compare``: the optimizer study as users run it (``nasbench compare``), timed end to end.

- Headline: 500 runs each of random search and regularized evolution (encoding A, the command's default and
  the paper's) at 1e7 simulated seconds and 108 epochs, on 2 worker processes: against the local store, then
  the same study through the server this run talks to. Fresh worker processes each time (cold caches: every
  process opens the dataset and meets its cells for the first time). Reported: wall-clock time, evaluations
  and queries (valid evaluations, i.e. API queries) per second across all workers, per-run time; the two
  results tables must be identical (the server changes the speed of a study, never its answers).
- Per-iteration overhead of each optimizer (``ask`` + ``tell``, the evaluation excluded), in this process, over
  the first and the last iterations of one run (model-based optimizers get slower as their history grows).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from nasbench import api
from nasbench_bench.results import Context, ScenarioResult
from nasbench_bench.timing import summarize

HEADLINE_OPTIMIZERS = ("rs", "re")
# the paper's eight (tpe is hyperopt's, hb and bohb hpbandster's), then the other libraries' TPE and multi-fidelity
OVERHEAD_OPTIMIZERS = ("rs", "re", "ls", "rl", "tpe", "smac", "hb", "bohb", "tpe-optuna", "smac-hb", "smac-mf")
STORE_TARGET_S = 300.0
SERVER_RATIO_TARGET = 1.3


def _study(dataset: str, runs: int, budget_s: float, out: Path, workers: int) -> tuple[float, dict[str, Any]]:
    from nasbench_experiments.studies import runner

    study = runner.Study(dataset=dataset, optimizers=HEADLINE_OPTIMIZERS, runs=runs, budget_s=budget_s)
    started = time.perf_counter()
    done = runner.run_study(study, out, executor="processes", workers=workers, progress=False)
    seconds = time.perf_counter() - started
    results = pq.read_table(runner.write_results(out))
    rows = results.column("valid").to_numpy()
    return seconds, {
        "table": results,
        "runs": len(done),
        "evaluations": len(rows),
        "queries": int(rows.sum()),
        "run_seconds_median": statistics.median(summary.seconds for summary in done),
    }


def _same_rows(a: pa.Table, b: pa.Table) -> bool:
    """The same columns and values, NaN equal to NaN (an invalid configuration's accuracies are NaN, and Arrow's
    ``equals`` takes NaN for unequal)."""
    if a.schema != b.schema or a.num_rows != b.num_rows:
        return False
    for name in a.schema.names:
        left, right = a.column(name).to_numpy(zero_copy_only=False), b.column(name).to_numpy(zero_copy_only=False)
        floats = left.dtype.kind == "f"
        if not np.array_equal(left, right, equal_nan=floats):
            return False
    return True


def _overhead(dataset: str, name: str, iterations: int) -> tuple[list[float], list[float]]:
    """ms per ask + tell over the first and the last ``iterations // 4`` iterations of one run."""
    from nasbench_experiments.search.problem import Problem
    from nasbench_experiments.search.registry import make_optimizer

    nasbench = api.NASBench(dataset)
    problem = Problem(nasbench, "A", seed=0, budget_s=1e12, max_evaluations=iterations)
    optimizer = make_optimizer(name, problem)
    costs = []
    try:
        while not problem.done:
            started = time.perf_counter()
            point, epochs = optimizer.ask()
            asked = time.perf_counter()
            evaluation = problem.evaluate(point, epochs)
            evaluated = time.perf_counter()
            optimizer.tell(point, epochs, evaluation)
            costs.append((asked - started + time.perf_counter() - evaluated) * 1000)
    finally:
        getattr(optimizer, "close", lambda: None)()
        nasbench.close()
    window = max(1, len(costs) // 4)
    return costs[:window], costs[-window:]


def run(context: Context) -> ScenarioResult:
    runs, budget_s, iterations = (6, 5e5, 30) if context.quick else (500, 1e7, 400)
    workers = 2
    result = ScenarioResult(
        params={
            "optimizers": list(HEADLINE_OPTIMIZERS),
            "runs_per_optimizer": runs,
            "budget_s": budget_s,
            "encoding": "A",
            "workers": workers,
            "overhead_iterations": iterations,
        }
    )
    with tempfile.TemporaryDirectory(prefix="compare-", dir=context.workdir) as scratch:
        store_s, store = _study(str(context.store), runs, budget_s, Path(scratch) / "store", workers)
        table = store.pop("table")
        result.params["store"] = store
        result.figures.append(summarize("study wall-clock, local store", [store_s], "s"))
        result.figures.append(summarize("queries/s over all workers, local store", [store["queries"] / store_s], "1/s"))
        result.figures.append(
            summarize("evaluations/s over all workers, local store", [store["evaluations"] / store_s], "1/s")
        )
        if not context.quick:  # a quick run is too small for the headline target (process start-up dominates)
            result.target("500 runs each of RS and RE, 2 workers, local store", store_s, "s", STORE_TARGET_S, True)
        if context.address:
            server_s, served = _study(f"grpc://{context.address}", runs, budget_s, Path(scratch) / "server", workers)
            if not _same_rows(served.pop("table"), table):
                raise AssertionError("the study through the server gave another results table than on the store")
            result.params["server"] = served
            result.params["identical_tables"] = True
            result.figures.append(summarize("study wall-clock, local server", [server_s], "s"))
            result.figures.append(
                summarize("queries/s over all workers, local server", [served["queries"] / server_s], "1/s")
            )
            result.ratios["server / store wall-clock"] = server_s / store_s
            result.target("server / store wall-clock", server_s / store_s, "x", SERVER_RATIO_TARGET, at_most=True)
    from nasbench_experiments.search.registry import OPTIMIZERS

    budgets = api.NASBench(str(context.store)).valid_epochs
    for name in OVERHEAD_OPTIMIZERS:
        if OPTIMIZERS[name].multi_fidelity and not {4, 12, 36, 108} <= budgets:
            continue  # multi-fidelity needs every budget
        first, last = _overhead(str(context.store), name, iterations)
        result.figures.append(summarize(f"{name}: ask+tell, first iterations", first, "ms"))
        result.figures.append(summarize(f"{name}: ask+tell, last iterations", last, "ms"))
    return result
