"""What a study costs, before it runs: evaluations and seconds per run of each optimizer, and the study's
wall-clock on its workers.

The model, for one run of optimizer ``o`` at a budget of ``B`` simulated seconds:

- evaluations: ``n = rate(o) × B`` (evaluations per simulated second: invalid configurations cost no simulated
  time, multi-fidelity optimizers query cheap budgets), capped by ``--max-evaluations``;
- seconds: ``setup(o) + a(o)·n + b(o)·n²/2``: iteration ``i`` (ask, evaluate, tell) costs ``a + b·i``, since the
  model-based optimizers slow down as their history grows (a forest refit, a TPE density over every trial).

The same model serves studies through a server: its client answers from memory once it holds the dataset
(docs/compare.md, "Through a server"), so a run costs what it costs on a store.

The study's wall-clock places its runs, in the order the executors submit them, on the first free of its
workers (list scheduling), plus the start of the workers.

The constants (``COSTS``) are measured, not guessed: ``python -m nasbench_experiments.studies.cost`` (see
``main``) runs one seeded run of each optimizer on a store, times every iteration, fits ``a`` and ``b`` by least
squares and counts evaluations per simulated second; it prints the table below. Measured on the embedded
synthetic store (all four budgets) on the project's 2-core machine (AMD EPYC, Python 3.11) while it was shared
with other work, so the figures lean slow; docs/compare.md says how they compare with whole studies.

Usage::

    estimate = cost.estimate(study, study.tasks(), workers=2)
    print(estimate.describe())            # one line: runs, evaluations, wall-clock, per-run seconds
"""

from __future__ import annotations

import argparse
import heapq
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


class Settings(Protocol):
    """What the estimate reads of a study (``runner.Study``)."""

    @property
    def encoding(self) -> str: ...
    @property
    def budget_s(self) -> float: ...
    @property
    def max_evaluations(self) -> int | None: ...


class Run(Protocol):
    """What the estimate reads of a run (``runner.Task``, hashable)."""

    @property
    def optimizer(self) -> str: ...
    def __hash__(self) -> int: ...


@dataclass(frozen=True)
class Cost:
    """The calibrated cost of one optimizer's runs (see the module docstring)."""

    rate: float  # evaluations per simulated second, encodings A, B and C (and cells, unless cells_rate is set)
    first_s: float  # a: seconds per iteration at the start of a run
    growth_s: float  # b: seconds added per iteration by each earlier iteration
    setup_s: float  # building the optimizer
    cells_rate: float | None = None  # evaluations per simulated second on the encoding 'cells', when it differs

    def run(self, encoding: str, budget_s: float, max_evaluations: int | None) -> tuple[float, float]:
        """(evaluations, seconds) of one run."""
        rate = self.cells_rate if encoding == "cells" and self.cells_rate is not None else self.rate
        evaluations = rate * budget_s
        if max_evaluations is not None:
            evaluations = min(evaluations, max_evaluations)
        return evaluations, self.setup_s + self.first_s * evaluations + self.growth_s * evaluations**2 / 2


# Calibrated with ``python -m nasbench_experiments.studies.cost`` (the module docstring says where and how).
COSTS: dict[str, Cost] = {
    "rs": Cost(rate=0.0041, first_s=2.3e-05, growth_s=9.2e-12, setup_s=0.00094, cells_rate=0.00057),
    "re": Cost(rate=0.00063, first_s=7.3e-05, growth_s=0, setup_s=0.00068, cells_rate=0.00044),
    "ls": Cost(rate=0.0011, first_s=3.6e-05, growth_s=4.2e-10, setup_s=0.0021, cells_rate=0.00054),
    "rl": Cost(rate=0.0038, first_s=0.00043, growth_s=0, setup_s=0.0013),
    "tpe": Cost(rate=0.00088, first_s=0.014, growth_s=4.5e-05, setup_s=0.93),
    "tpe-optuna": Cost(rate=0.00081, first_s=0.0041, growth_s=2e-05, setup_s=0.1),
    "smac": Cost(rate=0.002, first_s=0, growth_s=0.0014, setup_s=1.8),
    "hb": Cost(rate=0.0082, first_s=0.001, growth_s=5.3e-09, setup_s=0.89),
    "bohb": Cost(rate=0.0039, first_s=0.023, growth_s=1e-05, setup_s=0.0066),
    "smac-hb": Cost(rate=0.0082, first_s=0.00074, growth_s=4.8e-05, setup_s=1.7),
    "smac-mf": Cost(rate=0.006, first_s=0.064, growth_s=0.00022, setup_s=0.17),
    "st-rs": Cost(rate=0.0039, first_s=0.0001, growth_s=0, setup_s=0.28),
    "st-re": Cost(rate=0.00066, first_s=0.00013, growth_s=1.6e-09, setup_s=0.00065),
    "st-tpe": Cost(rate=0.0024, first_s=0, growth_s=7.5e-05, setup_s=0.00067),
    "st-bore": Cost(rate=0.0022, first_s=0.2, growth_s=0.0055, setup_s=0.26),
    "asha": Cost(rate=0.011, first_s=4.8e-05, growth_s=8e-12, setup_s=0.0013),
    "ahb": Cost(rate=0.0098, first_s=4.5e-05, growth_s=0, setup_s=0.002),
    "st-bohb": Cost(rate=0.0077, first_s=0, growth_s=8.6e-06, setup_s=1.1),
    "asha-bore": Cost(rate=0.009, first_s=0.13, growth_s=0.0013, setup_s=0.00087),
}
WORKER_START_S = 3.0  # a worker process: spawn, imports, opening the dataset
CLUSTER_HINT_S = 12 * 3600.0  # beyond this wall-clock the estimate points at a cluster


@dataclass(frozen=True)
class Estimate:
    """A study's estimated cost: per task its evaluations and seconds, and the wall-clock on ``workers``."""

    tasks: dict[Run, tuple[float, float]]  # task -> (evaluations, seconds)
    workers: int | None  # None: a cluster of unknown size (the wall-clock is then not estimated)
    wall_s: float  # nan when ``workers`` is None

    @property
    def evaluations(self) -> float:
        return sum(evaluations for evaluations, _ in self.tasks.values())

    @property
    def cpu_s(self) -> float:
        return sum(seconds for _, seconds in self.tasks.values())

    def describe(self) -> str:
        """One line: runs, evaluations, wall-clock on the workers, seconds per run of each optimizer."""
        if not self.tasks:
            return "estimate: no run to do"
        per_run: dict[str, float] = {}
        for task, (_, seconds) in self.tasks.items():
            per_run.setdefault(task.optimizer, seconds)
        runs = ", ".join(f"{name} {duration(seconds)}" for name, seconds in per_run.items())
        if self.workers is None:
            where = f"about {duration(self.cpu_s)} of CPU in all, to share among the cluster's CPUs"
        else:
            plural = "s" if self.workers > 1 else ""
            where = f"about {duration(self.wall_s)} on {self.workers} worker{plural} ({duration(self.cpu_s)} of CPU)"
        line = f"estimate: {len(self.tasks):,} runs, {_count(self.evaluations)} evaluations, {where}; per run: {runs}"
        if self.workers is not None and self.wall_s > CLUSTER_HINT_S:
            line += "; a cluster job: --executor ray (docs/compare.md)"
        return line


def estimate(study: Settings, tasks: Sequence[Run], workers: int | None) -> Estimate:
    """The estimated cost of running ``tasks`` of ``study`` on ``workers`` workers (None: a cluster of unknown
    size); see the module docstring."""
    per_task = {
        task: COSTS[task.optimizer].run(study.encoding, study.budget_s, study.max_evaluations) for task in tasks
    }
    if workers is None:
        return Estimate(per_task, None, math.nan)
    wall = makespan([seconds for _, seconds in per_task.values()], workers)
    return Estimate(per_task, workers, wall + (WORKER_START_S if tasks else 0.0))


def makespan(seconds: Sequence[float], workers: int) -> float:
    """When the last of the jobs ends, each started in order on the first free of ``workers`` workers."""
    free = [0.0] * max(1, min(workers, len(seconds)))
    for job in seconds:
        heapq.heapreplace(free, free[0] + job)
    return max(free) if seconds else 0.0


def duration(seconds: float) -> str:
    """A duration as people plan with it: '40 s', '12 min', '3.5 h', '2.1 days', '3.4 years'."""
    if seconds < 90:
        return f"{seconds:.2g} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds < 730 * 86400:
        return f"{seconds / 86400:.1f} days"
    return f"{seconds / (365 * 86400):.1f} years"


def _count(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.3g} million"
    return f"{value:,.0f}"


# --- calibration -------------------------------------------------------------------------------------------------

# Per optimizer the simulated budget and the number of its calibration runs: the headline 1e7 s where a run takes
# seconds (several seeds: evaluations per run vary), less for the model-based ones (the fit extrapolates).
CALIBRATION_BUDGETS = {
    "rs": (1e7, 5),
    "re": (1e7, 5),
    "ls": (1e7, 5),
    "rl": (1e7, 3),
    "tpe": (1e6, 1),
    "tpe-optuna": (1e6, 1),
    "smac": (3e5, 1),
    "hb": (1e6, 1),
    "bohb": (3e5, 1),
    "smac-hb": (1e6, 1),
    "smac-mf": (3e5, 1),
    # Syne Tune's schedulers (one worker: the cost of a run hardly depends on its simulated workers, see
    # docs/compare.md); tens of µs per decision for ASHA and random search (search.synetune), ms for the others
    "st-rs": (1e6, 1),
    "st-re": (1e6, 1),
    "st-tpe": (1e5, 1),
    "st-bore": (2e4, 1),
    "asha": (1e7, 1),
    "ahb": (1e7, 1),
    "st-bohb": (1e5, 1),
    "asha-bore": (2e4, 1),
}
_CELLS = ("rs", "re", "ls")  # the optimizers that search cells themselves (the others use A's parameterization)


def measure(dataset: str, name: str, encoding: str, budget_s: float, runs: int) -> tuple[Cost, float]:
    """Runs of seeds 0 … ``runs - 1`` in this process, every iteration timed in CPU seconds (wall-clock on a shared
    machine measures the other jobs), Syne Tune's schedulers in the simulation of workers as studies run them
    (ask/tell adds a swap of numpy's global state per call): their fitted cost (``cells_rate`` unset) and their mean
    CPU seconds."""
    from nasbench import api
    from nasbench_experiments.search.problem import Problem
    from nasbench_experiments.search.registry import OPTIMIZERS, make_optimizer
    from nasbench_experiments.studies.parallel import simulate

    nasbench = api.NASBench(dataset)
    steps: list[int] = []
    times: list[float] = []
    setups, totals, evaluations, simulated = [], [], 0, 0.0
    for seed in range(runs):
        problem = Problem(nasbench, encoding, seed, budget_s)
        started = time.process_time()
        optimizer = make_optimizer(name, problem)
        setups.append(time.process_time() - started)
        try:
            if OPTIMIZERS[name].parallel:  # as studies run them: the simulation, on one worker
                before = len(times)
                simulate(_Timed(optimizer.driver, times), problem, 1)  # type: ignore[attr-defined]
                steps.extend(range(len(times) - before))
            while not problem.done:
                begun = time.process_time()
                point, epochs = optimizer.ask()
                optimizer.tell(point, epochs, problem.evaluate(point, epochs))
                times.append(time.process_time() - begun)
                steps.append(problem.evaluations - 1)
        finally:
            getattr(optimizer, "close", lambda: None)()
        totals.append(time.process_time() - started)
        evaluations += problem.evaluations
        simulated += problem.elapsed
    first, growth = _fit(np.array(steps), np.array(times))
    return Cost(evaluations / simulated, first, growth, float(np.mean(setups))), float(np.mean(totals))


class _Timed:
    """A simulation's driver (``parallel.Driver``) whose every ended run appends the CPU seconds since the one
    before to ``times``: the simulation's iteration (the scheduler's decisions, the draw and the record)."""

    def __init__(self, driver: Any, times: list[float]) -> None:
        self._driver = driver
        self._times = times
        self._last = time.process_time()

    def running(self) -> Any:
        return self._driver.running()

    def next_job(self) -> Any:
        return self._driver.next_job()

    def finished(self, job: Any, evaluation: Any) -> Any:
        following = self._driver.finished(job, evaluation)
        now = time.process_time()
        self._times.append(now - self._last)
        self._last = now
        return following


def _fit(steps: np.ndarray, times: np.ndarray) -> tuple[float, float]:
    """(a, b) of ``times ≈ a + b·steps`` by least squares, both kept at 0 or above so that the fit still sums to
    the measured total (a negative a or b is set to 0 and the other fitted alone)."""
    growth, first = np.polyfit(steps, times, 1)
    if first < 0:
        return 0.0, float(times.sum() / steps.sum())
    if growth < 0:
        return float(times.mean()), 0.0
    return float(first), float(growth)


def main(argv: Sequence[str] | None = None) -> None:
    """Calibrate ``COSTS``: one run per optimizer on a store; prints each fit and the table to paste above."""
    parser = argparse.ArgumentParser(prog="python -m nasbench_experiments.studies.cost", description=main.__doc__)
    parser.add_argument("--store", required=True, help="a store with all four budgets (e.g. the embedded one)")
    parser.add_argument("--optimizers", default=",".join(CALIBRATION_BUDGETS))
    args = parser.parse_args(argv)
    table = {}
    for name in args.optimizers.split(","):
        budget, runs = CALIBRATION_BUDGETS[name]
        cost, seconds = measure(args.store, name, "A", budget, runs)
        if name in _CELLS:
            on_cells, _ = measure(args.store, name, "cells", budget, runs)
            cost = Cost(cost.rate, cost.first_s, cost.growth_s, cost.setup_s, on_cells.rate)
        evaluations, predicted = cost.run("A", budget, None)
        print(
            f"# {name}: {runs} runs of {evaluations:,.0f} evaluations on average at {budget:.0e} s, "
            f"{seconds:.3g} CPU s per run (the fit gives {predicted:.3g} s)",
            flush=True,
        )
        table[name] = cost
    for name, fitted in table.items():
        cells = "" if fitted.cells_rate is None else f", cells_rate={fitted.cells_rate:.2g}"
        print(
            f'    "{name}": Cost(rate={fitted.rate:.2g}, first_s={fitted.first_s:.2g}, growth_s={fitted.growth_s:.2g}, '
            f"setup_s={fitted.setup_s:.2g}{cells}),"
        )


if __name__ == "__main__":
    main()
