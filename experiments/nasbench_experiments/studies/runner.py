"""The study runner: one task per (optimizer, seed), fanned out over local processes or a Ray cluster.

Usage::

    from nasbench_experiments.studies.runner import Study, run_study
    study = Study(dataset="store.lmdb", optimizers=("rs", "re"), runs=500, budget_s=1e7, encoding="A")
    run_study(study, out=Path("study"), executor="processes", workers=2)

A run is a pure function of (optimizer, settings, seed, dataset): each worker process opens the dataset once
(``api.NASBench``, a store path or a server address), and every run gets its own generators from its seed
(``search.problem``), so a trajectory is the same whatever the executor, the number of workers and the backend.

Each finished run is written atomically (``runs/<optimizer>/<seed>.parquet``, by the driver, so Ray workers need
no shared filesystem). ``study.json`` records the settings and the dataset's optimum; a second call with the
same ``out`` resumes: finished runs are kept, half-written files are removed, the missing runs are run. A study
folder refuses settings that would mix incomparable runs (another encoding, budget or dataset).
"""

from __future__ import annotations

import itertools
import json
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nasbench import api
from nasbench.errors import ConfigurationError
from nasbench_experiments.search.encodings import ENCODINGS
from nasbench_experiments.search.problem import FINAL_EPOCHS, Problem, optimize
from nasbench_experiments.search.registry import OPTIMIZERS, optimizer_info
from nasbench_experiments.studies import bookkeeping, table

STUDY_FILE = "study.json"
RUNS_FOLDER = "runs"
RESULTS_FILE = "results.parquet"
EXECUTORS = ("processes", "ray")
_SETTINGS_THAT_MUST_MATCH = ("encoding", "budget_s", "max_evaluations", "first_seed")

log = logging.getLogger("nasbench.experiments")


@dataclass(frozen=True)
class Study:
    """What to run: optimizers × runs (seeds ``first_seed`` … ``first_seed + runs - 1``) on one dataset."""

    dataset: str
    optimizers: tuple[str, ...]
    runs: int
    budget_s: float
    encoding: str = "A"
    first_seed: int = 0
    max_evaluations: int | None = None
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-optimizer overrides

    def check(self) -> None:
        """Raise ConfigurationError (one line naming the problem) for settings that cannot run."""
        if not self.optimizers:
            raise ConfigurationError("no optimizer given")
        for name in self.optimizers:
            optimizer_info(name)
        if self.encoding not in ENCODINGS:
            raise ConfigurationError(f"unknown encoding {self.encoding!r} (choose from {', '.join(ENCODINGS)})")
        if not (isinstance(self.runs, int) and self.runs > 0):
            raise ConfigurationError(f"--runs must be a positive integer, got {self.runs}")
        if not (self.budget_s > 0 and self.budget_s != float("inf")):
            raise ConfigurationError(f"--budget must be a positive number of simulated seconds, got {self.budget_s:g}")
        if self.max_evaluations is not None and self.max_evaluations <= 0:
            raise ConfigurationError(f"--max-evaluations must be positive, got {self.max_evaluations}")

    def tasks(self) -> list[Task]:
        """Every run, interleaved across optimizers (a partial study holds every optimizer)."""
        return [Task(name, self.first_seed + index) for index in range(self.runs) for name in self.optimizers]


@dataclass(frozen=True)
class Task:
    optimizer: str
    seed: int

    def path(self, out: Path) -> Path:
        return out / RUNS_FOLDER / self.optimizer / f"{self.seed:06d}.parquet"


@dataclass
class RunSummary:
    """What the driver learns about a finished run besides its rows."""

    optimizer: str
    seed: int
    evaluations: int
    simulated_s: float
    seconds: float  # wall-clock seconds the run took in its worker


# --- one run -----------------------------------------------------------------------------------------------------

_opened: dict[str, api.NASBench] = {}


def open_dataset(dataset: str) -> api.NASBench:
    """This process's NASBench for ``dataset`` (opened once, shared by the runs of the process)."""
    nasbench = _opened.get(dataset)
    if nasbench is None:
        nasbench = _opened[dataset] = api.NASBench(dataset)
    return nasbench


def check_dataset(study: Study, nasbench: api.NASBench) -> dict[str, Any]:
    """Check the dataset can run the study; the optimum (best mean accuracies at 108 epochs) it records."""
    if FINAL_EPOCHS not in nasbench.valid_epochs:
        raise ConfigurationError(f"the dataset has no {FINAL_EPOCHS}-epoch budget: {sorted(nasbench.valid_epochs)}")
    for name in study.optimizers:
        info = OPTIMIZERS[name]
        if info.multi_fidelity and not {4, 12, 36, 108} <= nasbench.valid_epochs:
            raise ConfigurationError(
                f"{name} is multi-fidelity and needs a dataset with the budgets [4, 12, 36, 108] epochs; "
                f"this one has {sorted(nasbench.valid_epochs)} (build the store from nasbench_full.tfrecord)"
            )
        if name == "rl" and study.encoding == "C":
            raise ConfigurationError("rl learns categorical hyperparameters only: use encoding A, B or cells, not C")
    best = nasbench.optima()[FINAL_EPOCHS]
    return {
        "best_test_accuracy": best.test_accuracy,
        "best_validation_accuracy": best.validation_accuracy,
        "cells": len(nasbench.hash_iterator()),
        "epochs": sorted(nasbench.valid_epochs),
    }


def run_one(study: Study, task: Task, optimum: dict[str, Any]) -> tuple[bytes, RunSummary]:
    """Run one task in this process; its rows as Parquet bytes and its summary."""
    started = time.perf_counter()
    nasbench = open_dataset(study.dataset)
    problem = Problem(nasbench, study.encoding, task.seed, study.budget_s, study.max_evaluations)
    optimizer = optimizer_info(task.optimizer).build(problem, **study.settings.get(task.optimizer, {}))
    try:
        optimize(optimizer, problem)
    finally:
        close = getattr(optimizer, "close", None)
        if close is not None:
            close()
    columns = problem.columns()
    columns.update(bookkeeping.regrets(columns, optimum["best_test_accuracy"], optimum["best_validation_accuracy"]))
    rows = table.run_table(task.optimizer, study.encoding, task.seed, columns)
    summary = RunSummary(task.optimizer, task.seed, problem.evaluations, problem.elapsed, time.perf_counter() - started)
    return table.to_bytes(rows), summary


def _run_in_worker(study: Study, task: Task, optimum: dict[str, Any]) -> tuple[Task, bytes, RunSummary]:
    data, summary = run_one(study, task, optimum)
    return task, data, summary


# --- executors ---------------------------------------------------------------------------------------------------


def _process_results(
    study: Study, pending: list[Task], optimum: dict[str, Any], workers: int
) -> Iterator[tuple[Task, bytes, RunSummary]]:
    """Runs over local worker processes (spawned: no gRPC channel or LMDB handle crosses a fork)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        queue = iter(pending)
        running: set[Future[tuple[Task, bytes, RunSummary]]] = set()
        try:
            for task in queue:  # keep a few tasks per worker in flight, not the whole study
                running.add(pool.submit(_run_in_worker, study, task, optimum))
                if len(running) >= 2 * workers:
                    break
            while running:
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    yield future.result()
                    following = next(queue, None)
                    if following is not None:
                        running.add(pool.submit(_run_in_worker, study, following, optimum))
        except BaseException:  # interrupted: stop the workers now (finished runs are on disk, whole)
            for future in running:
                future.cancel()
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _ray_results(
    study: Study, pending: list[Task], optimum: dict[str, Any], workers: int, address: str | None
) -> Iterator[tuple[Task, bytes, RunSummary]]:
    """Runs as Ray tasks: on a cluster (``address``) or on a local Ray started with ``workers`` CPUs."""
    try:
        import ray
    except ImportError:
        raise ConfigurationError("--executor ray needs Ray: pip install 'nasbench-server[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        # A local start can time out on a busy machine (Ray waits a fixed 30 s for its node): one more try.
        attempts = 1 if address else 2
        for attempt in range(1, attempts + 1):
            try:
                if address:
                    ray.init(address=address, **options)
                else:
                    ray.init(num_cpus=workers, **options)
                break
            except Exception as exc:  # Ray raises bare Exceptions (a start-up timeout, an unreachable address)
                ray.shutdown()  # what a failed start left running (GCS, raylet) goes with it
                if attempt == attempts:
                    where = f"the Ray cluster at {address}" if address else "a local Ray"
                    tries = f" ({attempts} tries)" if attempts > 1 else ""
                    raise ConfigurationError(f"could not start {where}{tries}: {exc}") from None
                log.warning("a local Ray did not start (%s); trying once more", exc)
    remote = ray.remote(num_cpus=1, max_retries=2)(_run_in_worker)
    try:
        queue = iter(pending)
        resources = ray.cluster_resources()  # type: ignore[no-untyped-call]  # ray leaves it unannotated
        capacity = max(2 * workers, int(resources.get("CPU", workers)) * 2)
        running = [remote.remote(study, task, optimum) for task in itertools.islice(queue, capacity)]
        while running:
            finished, running = ray.wait(running, num_returns=1)
            for ref in finished:
                yield ray.get(ref)
                task = next(queue, None)
                if task is not None:
                    running.append(remote.remote(study, task, optimum))
    finally:
        if started_here:
            ray.shutdown()


# --- the study ---------------------------------------------------------------------------------------------------


def prepare(study: Study, out: Path) -> tuple[dict[str, Any], list[Task]]:
    """Check the study and the dataset, write or check ``study.json``, clean half-written files; returns the
    optimum and the tasks still to run."""
    study.check()
    nasbench = open_dataset(study.dataset)
    optimum = check_dataset(study, nasbench)
    out.mkdir(parents=True, exist_ok=True)
    record_path = out / STUDY_FILE
    record = {**asdict(study), "optimizers": list(study.optimizers), "optimum": optimum}
    if record_path.exists():
        previous = json.loads(record_path.read_text())
        for name in _SETTINGS_THAT_MUST_MATCH:
            if previous.get(name) != record[name]:
                raise ConfigurationError(
                    f"{out} holds a study with {name} = {previous.get(name)!r}, not {record[name]!r}: "
                    "use another --out, or the same settings to resume"
                )
        if previous.get("optimum") != optimum:
            raise ConfigurationError(f"{out} holds a study of another dataset (its optimum differs): use another --out")
        record["optimizers"] = list(dict.fromkeys([*previous["optimizers"], *study.optimizers]))
        record["runs"] = max(previous["runs"], study.runs)
    table.write_atomic(record_path, json.dumps(record, indent=2).encode())
    for partial in (out / RUNS_FOLDER).rglob(".*.partial-*"):
        partial.unlink(missing_ok=True)
    pending = [task for task in study.tasks() if not task.path(out).exists()]
    return optimum, pending


def run_study(
    study: Study,
    out: Path,
    executor: str = "processes",
    workers: int | None = None,
    address: str | None = None,
    progress: bool | None = None,
    on_run: Callable[[RunSummary], None] | None = None,
) -> list[RunSummary]:
    """Run every missing run of ``study`` into ``out`` (see the module docstring); the summaries of the runs
    done by this call, in completion order.

    Raises:
      ConfigurationError: bad settings (one line naming the problem), or an ``out`` of another study.
    """
    if executor not in EXECUTORS:
        raise ConfigurationError(f"unknown executor {executor!r} (choose from {', '.join(EXECUTORS)})")
    workers = workers or os.cpu_count() or 1
    if workers < 1:
        raise ConfigurationError(f"--workers must be at least 1, got {workers}")
    optimum, pending = prepare(study, out)
    if not pending:
        return []
    if executor == "ray":
        results = _ray_results(study, pending, optimum, workers, address)
    else:
        results = _process_results(study, pending, optimum, workers)
    from tqdm import tqdm

    bar = tqdm(total=len(pending), unit="run", desc="compare", disable=None if progress is None else not progress)
    done: list[RunSummary] = []
    simulated = 0.0
    try:
        for task, data, summary in results:
            table.write_atomic(task.path(out), data)
            done.append(summary)
            simulated += summary.simulated_s
            bar.set_postfix_str(f"simulated {simulated:.3g} s", refresh=False)
            bar.update()
            if on_run is not None:
                on_run(summary)
    finally:
        bar.close()
    return done


def finished_runs(out: Path) -> list[Path]:
    """The run files of the study in ``out`` (its optimizers, seeds in order)."""
    record = load_study(out)
    study = Study(**{key: record[key] for key in Study.__dataclass_fields__ if key in record})
    return [path for task in study.tasks() if (path := task.path(out)).exists()]


def load_study(out: Path) -> dict[str, Any]:
    path = out / STUDY_FILE
    if not path.exists():
        raise ConfigurationError(f"{out} holds no study (no {STUDY_FILE}); run nasbench compare --out {out} first")
    record: dict[str, Any] = json.loads(path.read_text())
    record["optimizers"] = tuple(record["optimizers"])
    return record


def write_results(out: Path) -> Path:
    """Assemble every finished run into ``results.parquet`` (atomically)."""
    rows = table.read_runs(finished_runs(out))
    path = out / RESULTS_FILE
    table.write_atomic(path, table.to_bytes(rows))
    return path
