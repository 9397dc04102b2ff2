"""Scenario ``parallel``: a study of Syne Tune's ASHA on 16 simulated workers per run, timed end to end.

- Headline: 100 runs of ASHA (``--parallel 16``, encoding A, 1e7 simulated seconds of training per run) on 2
  worker processes, local store, as ``nasbench compare`` runs it. Target: within 5 minutes. Reported: wall-clock,
  evaluations, evaluations per second over both workers, median seconds per run, and the study's estimate
  (``studies.cost``) beside the measurement.
- The simulated workers' own cost: one seeded ASHA run at a smaller budget on 1, 16 and 64 workers, in this
  process (the same training; the figures say what the number of workers adds).
- What the exact shortcuts save (``search.synetune.with_exact_shortcuts``): the same seeded run on 16 workers
  with Syne Tune's own code and with the shortcuts, side by side, CPU seconds and the ratio (the trajectories
  are checked equal here too).

Opt-in (``nasbench bench parallel``): the full study takes about 5 minutes on 2 cores (docs/compare.md,
"Speed"); ``--quick`` runs 4 runs at 1e5 s.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from nasbench import api
from nasbench_bench.results import Context, ScenarioResult
from nasbench_bench.timing import summarize

OPTIMIZER = "asha"
WORKERS = 16
TARGET_S = 300.0


def _study(dataset: str, runs: int, budget_s: float, out: Path) -> tuple[float, dict[str, float]]:
    from nasbench_experiments.studies import runner

    study = runner.Study(dataset, (OPTIMIZER,), runs, budget_s, parallel=WORKERS)
    estimate = runner.plan(study, study.tasks(), "processes", 2, None)
    started = time.perf_counter()
    done = runner.run_study(study, out, executor="processes", workers=2, progress=False)
    seconds = time.perf_counter() - started
    evaluations = pq.read_metadata(runner.write_results(out)).num_rows
    return seconds, {
        "runs": len(done),
        "evaluations": evaluations,
        "run_seconds_median": statistics.median(summary.seconds for summary in done),
        "estimated_wall_s": estimate.wall_s,
    }


def _one_run(dataset: str, budget_s: float, workers: int, shortcuts: bool = True) -> tuple[float, int, bytes]:
    """CPU seconds, evaluations and the trajectory (its cells and times, as bytes) of one seeded ASHA run on
    ``workers`` simulated workers."""
    from nasbench_experiments.search.problem import Problem
    from nasbench_experiments.search.synetune import SyneTuneOptimizer
    from nasbench_experiments.studies.parallel import simulate

    problem = Problem(api.NASBench(dataset), "A", seed=0, budget_s=budget_s)
    started = time.process_time()
    simulate(SyneTuneOptimizer(problem, scheduler=OPTIMIZER, shortcuts=shortcuts).driver, problem, workers)
    seconds = time.process_time() - started
    columns = problem.columns()
    return seconds, problem.evaluations, columns["cell"].tobytes() + columns["time"].tobytes()


def run(context: Context) -> ScenarioResult:
    runs, budget_s, single_s = (4, 1e5, 3e4) if context.quick else (100, 1e7, 3e5)
    result = ScenarioResult(
        params={"optimizer": OPTIMIZER, "parallel": WORKERS, "runs": runs, "budget_s": budget_s, "workers": 2}
    )
    with tempfile.TemporaryDirectory(prefix="parallel-", dir=context.workdir) as scratch:
        seconds, study = _study(str(context.store), runs, budget_s, Path(scratch) / "study")
    result.params["study"] = study
    result.figures.append(summarize(f"study wall-clock, {runs} runs of ASHA on {WORKERS} workers", [seconds], "s"))
    result.figures.append(summarize("evaluations/s over both workers", [study["evaluations"] / seconds], "1/s"))
    result.ratios["measured / estimated wall-clock"] = seconds / study["estimated_wall_s"]
    if not context.quick:
        result.target(f"{runs} runs of ASHA, {WORKERS} simulated workers, 1e7 s", seconds, "s", TARGET_S, True)
    for workers in (1, 16, 64):
        cpu_s, evaluations, _ = _one_run(str(context.store), single_s, workers)
        result.params[f"one run on {workers} workers"] = {"cpu_s": cpu_s, "evaluations": evaluations}
        result.figures.append(summarize(f"one run at {single_s:.0e} s on {workers} workers, per evaluation",
                                        [cpu_s / evaluations * 1000], "ms"))  # fmt: skip
    own, shortcut = [], []
    for _ in range(1 if context.quick else 3):  # alternated, so that a change of load hits both
        own_s, evaluations, own_run = _one_run(str(context.store), single_s, WORKERS, shortcuts=False)
        shortcut_s, _, shortcut_run = _one_run(str(context.store), single_s, WORKERS)
        if own_run != shortcut_run:
            raise RuntimeError("the shortcuts changed the run: they must be exact (tests/experiments/test_synetune.py)")
        own.append(own_s)
        shortcut.append(shortcut_s)
    label = f"one run at {single_s:.0e} s on {WORKERS} workers ({evaluations} evaluations), CPU"
    result.figures.append(summarize(f"{label}, Syne Tune's own code", own, "s"))
    result.figures.append(summarize(f"{label}, with the exact shortcuts", shortcut, "s"))
    result.ratios["Syne Tune's own code / with the shortcuts, one run (median CPU s)"] = statistics.median(
        own
    ) / statistics.median(shortcut)
    return result
