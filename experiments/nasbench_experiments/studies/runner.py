"""The study runner: one task per (optimizer, seed), fanned out over local processes or a Ray cluster.

Usage::

    from nasbench_experiments.studies.runner import Study, run_study
    study = Study(dataset="store.lmdb", optimizers=("rs", "re"), runs=500, budget_s=1e7, encoding="A")
    run_study(study, out=Path("study"), executor="processes", workers=2)

A run is a pure function of (optimizer, settings, seed, dataset): each worker process opens the dataset once
(``api.NASBench``, a store path or a server address), and every run gets its own generators from its seed
(``search.problem``), so a trajectory is the same whatever the executor, the number of workers and the backend.

Each finished run is written atomically (``runs/<optimizer>/<seed>.parquet``, by the driver, so Ray workers need
no shared filesystem), with its run record (``table``). ``study.json`` records the settings and the dataset's
optimum; a second call with the same ``out`` resumes: finished runs are kept, half-written files are removed, the
missing runs are run. A study folder refuses settings that would mix incomparable runs (another encoding, budget
or dataset), and a run file that is not the run its path names (another seed, optimizer, budget or dataset, or a
damaged file) stops the study with one error naming the file, before anything runs.
"""

from __future__ import annotations

import itertools
import json
import logging
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

from nasbench import api, space
from nasbench.errors import ConfigurationError
from nasbench_experiments.search import subspaces
from nasbench_experiments.search.encodings import ENCODINGS
from nasbench_experiments.search.problem import FINAL_EPOCHS, Problem, optimize
from nasbench_experiments.search.registry import OPTIMIZERS, optimizer_info
from nasbench_experiments.studies import bookkeeping, cost, parallel, table
from nasbench_experiments.studies.progress import DEFAULT_EVERY_S, Progress

STUDY_FILE = "study.json"
RUNS_FOLDER = "runs"
RESULTS_FILE = "results.parquet"
EXECUTORS = ("processes", "ray")
_SETTINGS_THAT_MUST_MATCH = ("encoding", "budget_s", "max_evaluations", "first_seed", "subspace", "parallel")

log = logging.getLogger("nasbench.experiments")


@dataclass(frozen=True)
class Study:
    """What to run: optimizers × runs (seeds ``first_seed`` … ``first_seed + runs - 1``) on one dataset; with
    ``parallel`` > 1, each run on that many simulated workers (``studies.parallel``)."""

    dataset: str
    optimizers: tuple[str, ...]
    runs: int
    budget_s: float
    encoding: str = "A"
    first_seed: int = 0
    max_evaluations: int | None = None
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-optimizer overrides
    subspace: str | None = None  # the cells the optimizers may propose (search.subspaces); None: the whole space
    parallel: int = 1  # simulated workers per run (studies.parallel; Syne Tune's schedulers)

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
        if self.subspace is not None:
            try:
                subspaces.parse(self.subspace)
            except ConfigurationError as exc:
                raise ConfigurationError(f"subspace {exc}") from None
        if not (isinstance(self.parallel, int) and self.parallel > 0):
            raise ConfigurationError(f"--parallel must be a positive integer, got {self.parallel}")
        sequential = [name for name in self.optimizers if not OPTIMIZERS[name].parallel]
        if self.parallel > 1 and sequential:
            offered = ", ".join(name for name, info in OPTIMIZERS.items() if info.parallel)
            raise ConfigurationError(
                f"--parallel simulates workers for Syne Tune's schedulers ({offered}); {', '.join(sequential)} "
                "ask and tell one evaluation at a time: run them without --parallel"
            )

    def tasks(self) -> list[Task]:
        """Every run, interleaved across optimizers (a partial study holds every optimizer)."""
        return [Task(name, self.first_seed + index) for index in range(self.runs) for name in self.optimizers]

    def run_record(self, task: Task, optimum: dict[str, Any]) -> dict[str, Any]:
        """What the file of ``task`` records about its run, and must record to be taken as that run (a run on a
        subspace records it, a run on several simulated workers their number, a run of an optimizer whose name
        changed meaning the revision; other runs record what they always did)."""
        record = {
            "format": table.RUN_FORMAT,
            "optimizer": task.optimizer,
            "seed": task.seed,
            "encoding": self.encoding,
            "budget_s": self.budget_s,
            "max_evaluations": self.max_evaluations,
            "settings": self.settings.get(task.optimizer, {}),
            "dataset": optimum,
        }
        if self.subspace is not None:
            record["subspace"] = self.subspace
        if self.parallel > 1:
            record["parallel"] = self.parallel
        revision = OPTIMIZERS[task.optimizer].revision
        if revision > 1:  # a name that changed meaning (registry.OptimizerInfo.revision)
            record["revision"] = revision
        return record


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


def study_view(study: Study) -> api.NASBench | subspaces.SubspaceView:
    """What the runs of ``study`` query in this process: the dataset, or its view restricted to the subspace."""
    nasbench = open_dataset(study.dataset)
    if study.subspace is None:
        return nasbench
    return subspaces.restrict(nasbench, subspaces.parse(study.subspace))


def check_dataset(study: Study, nasbench: api.NASBench) -> dict[str, Any]:
    """Check the dataset can run the study; the optimum (best mean accuracies at 108 epochs) it records: of the
    whole dataset, or of the subspace's cells (a subspace study's regrets are against its own optimum)."""
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
    if study.subspace is not None:
        return _check_subspace(study, nasbench)
    cells = len(nasbench.hash_iterator())
    if study.encoding != "cells" and cells < space.NUM_CELLS:
        raise ConfigurationError(
            f"encoding {study.encoding} searches the whole space of {space.NUM_CELLS:,} cells and this dataset holds "
            f"{cells:,} of them (a subset store): use --encoding cells (it searches the stored cells) or a full store"
        )
    best = nasbench.optima()[FINAL_EPOCHS]
    return {
        "best_test_accuracy": best.test_accuracy,
        "best_validation_accuracy": best.validation_accuracy,
        "cells": cells,
        "epochs": sorted(nasbench.valid_epochs),
    }


def _check_subspace(study: Study, nasbench: api.NASBench) -> dict[str, Any]:
    subspace = subspaces.parse(str(study.subspace))
    view = subspaces.restrict(nasbench, subspace)
    total = len(subspace.keys())
    if study.encoding != "cells" and len(view.keys) < total:
        raise ConfigurationError(
            f"encoding {study.encoding} searches every cell of the subspace {subspace.text} ({total:,} cells) and "
            f"this dataset holds {len(view.keys):,} of them: use --encoding cells (it searches the stored cells) "
            "or a store of the whole subspace"
        )
    best_test, best_validation = view.optimum(FINAL_EPOCHS)
    return {
        "best_test_accuracy": best_test,
        "best_validation_accuracy": best_validation,
        "cells": len(view.keys),
        "epochs": sorted(nasbench.valid_epochs),
    }


def run_one(study: Study, task: Task, optimum: dict[str, Any]) -> tuple[bytes, RunSummary]:
    """Run one task in this process; its rows as Parquet bytes and its summary."""
    started = time.perf_counter()
    problem = Problem(study_view(study), study.encoding, task.seed, study.budget_s, study.max_evaluations)
    info = optimizer_info(task.optimizer)
    optimizer = info.build(problem, **study.settings.get(task.optimizer, {}))
    try:
        if info.parallel:
            parallel.simulate(cast(parallel.Simulated, optimizer).driver, problem, study.parallel)
        else:
            optimize(optimizer, problem)
    finally:
        close = getattr(optimizer, "close", None)
        if close is not None:
            close()
    columns = problem.columns()
    columns.update(bookkeeping.regrets(columns, optimum["best_test_accuracy"], optimum["best_validation_accuracy"]))
    rows = table.run_table(study.run_record(task, optimum), columns)
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
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(f"cannot write the study into {out}: {exc.strerror or exc}") from None
    record_path = out / STUDY_FILE
    record = {**asdict(study), "optimizers": list(study.optimizers), "optimum": optimum}
    if record_path.exists():
        previous = load_study(out)
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
    finished = [task for task in study.tasks() if task.path(out).exists()]
    check_runs(out, [(task, study.run_record(task, optimum)) for task in finished])
    table.write_atomic(record_path, json.dumps(record, indent=2).encode())
    for partial in (out / RUNS_FOLDER).rglob(".*.partial"):  # left by a killed write (nasbench.files' names)
        partial.unlink(missing_ok=True)
    done = set(finished)
    return optimum, [task for task in study.tasks() if task not in done]


def check_runs(out: Path, runs: list[tuple[Task, dict[str, Any]]]) -> None:
    """Check that each run file holds the run its path names (``table.check_run``).

    Raises:
      ConfigurationError: one line naming the first wrong file and what is wrong (and how many more are).
    """
    problems = []
    for task, expected in runs:
        try:
            table.check_run(task.path(out), expected, columns=())
        except ConfigurationError as exc:
            problems.append(str(exc))
    if len(problems) == 1:
        raise ConfigurationError(f"{problems[0]}; remove the file to run that run again, or use another --out")
    if problems:
        raise ConfigurationError(
            f"{problems[0]}; and {len(problems) - 1} more run files are wrong: remove them to run those runs again, "
            "or use another --out"
        )


def run_study(
    study: Study,
    out: Path,
    executor: str = "processes",
    workers: int | None = None,
    address: str | None = None,
    progress: bool | None = None,
    on_run: Callable[[RunSummary], None] | None = None,
    progress_every_s: float = DEFAULT_EVERY_S,
) -> list[RunSummary]:
    """Run every missing run of ``study`` into ``out`` (see the module docstring); the summaries of the runs
    done by this call, in completion order.

    Before the runs start, the study's estimated cost (``cost``) is logged; ``progress`` None shows a bar on a
    terminal and log lines otherwise (``studies.progress``), True a bar, False neither.

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
    planned = plan(study, pending, executor, workers, address)
    log.info("%s", planned.describe(), extra={"runs": len(pending), "wall_s": planned.wall_s, "cpu_s": planned.cpu_s})
    if executor == "ray":
        results = _ray_results(study, pending, optimum, workers, address)
    else:
        results = _process_results(study, pending, optimum, workers)
    reporter = None
    if progress is not False:
        reporter = Progress(planned, log, terminal=progress or sys.stderr.isatty(), every_s=progress_every_s)
    done: list[RunSummary] = []
    try:
        for task, data, summary in results:
            table.write_atomic(task.path(out), data)
            done.append(summary)
            if reporter is not None:
                reporter.run_done(task, summary.seconds, summary.simulated_s)
            if on_run is not None:
                on_run(summary)
    finally:
        if reporter is not None:
            reporter.close()
    return done


def plan(study: Study, tasks: list[Task], executor: str, workers: int, address: str | None) -> cost.Estimate:
    """The estimated cost of ``tasks``: on ``workers`` workers, or on a Ray cluster of unknown size (CPU only)."""
    return cost.estimate(study, tasks, None if executor == "ray" and address else workers)


def finished_runs(out: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The run files of the study in ``out`` (its optimizers, seeds in order), each with the run record it must
    hold (``table.read_runs`` checks them)."""
    record = load_study(out)
    study = Study(**{key: record[key] for key in Study.__dataclass_fields__ if key in record})
    return [
        (path, study.run_record(task, record["optimum"])) for task in study.tasks() if (path := task.path(out)).exists()
    ]


def load_study(out: Path) -> dict[str, Any]:
    """The record ``study.json`` of the study in ``out``.

    Raises:
      ConfigurationError: there is none, or it cannot be read or is not a study record (one line naming it).
    """
    path = out / STUDY_FILE
    if not path.exists():
        raise ConfigurationError(f"{out} holds no study (no {STUDY_FILE}); run nasbench compare --out {out} first")
    try:
        record = json.loads(path.read_bytes())
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError:
        record = None
    if isinstance(record, dict):
        record.setdefault("parallel", 1)  # studies recorded before simulated workers ran on one
        record.setdefault("subspace", None)  # and before subspaces searched the whole space
    fields = ("optimizers", "runs", "optimum", *_SETTINGS_THAT_MUST_MATCH)
    if not isinstance(record, dict) or any(name not in record for name in fields):
        raise ConfigurationError(f"{path} is not a study record of nasbench compare (damaged?): use another --out")
    record["optimizers"] = tuple(record["optimizers"])
    return record


def write_results(out: Path) -> Path:
    """Assemble every finished run into ``results.parquet`` (atomically)."""
    rows = table.read_runs(finished_runs(out))
    path = out / RESULTS_FILE
    table.write_atomic(path, table.to_bytes(rows))
    return path
