"""Asynchronous parallel workers in simulated time: N workers, one Syne Tune scheduler, NAS-Bench-101's data.

An evaluation occupies a worker for the training time of the run it reads. A worker that frees asks the
scheduler for its next run at once (asynchronous: nobody waits for a batch), and the scheduler knows the
trials running (Syne Tune's ``on_trial_add``). Runs end in order of their simulated end time; runs ending at the
same instant end in the order they started, and a free worker is the lowest-numbered one, so a trajectory is a
pure function of (scheduler, seed, workers, dataset). Each row of the run's record is an ended run, its
``time`` the simulated wall-clock at which it ended.

The run stops at the first end at which the summed training time of the ended runs reaches the budget (as a
sequential run stops: one worker gives exactly the sequential trajectory) or the evaluation cap; runs still
going then are dropped, as a study stopped on a cluster would kill them. With N workers the run so ends near
budget / N of wall-clock.

A trial's budgets are independent runs (``search.synetune``): a worker whose trial the scheduler continues
goes on with the whole run at the trial's next budget.

Usage::

    problem = Problem(nasbench, "A", seed=0, budget_s=1e7)
    optimizer = SyneTuneOptimizer(problem, scheduler="asha")
    simulate(optimizer.driver, problem, workers=16)       # problem.columns(): the record, in end order
"""

from __future__ import annotations

import heapq
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from nasbench_experiments.search.problem import Draw, Evaluation

if TYPE_CHECKING:  # Syne Tune is optional: a study of the other optimizers does not import it
    from nasbench_experiments.search.synetune import Job


class Driver(Protocol):
    """What the simulation asks of a scheduler (``synetune.SchedulerDriver``)."""

    def running(self) -> AbstractContextManager[None]: ...

    def next_job(self) -> Job | None: ...

    def finished(self, job: Job, evaluation: Evaluation) -> Job | None: ...


class Simulated(Protocol):
    """An optimizer the simulation runs (``synetune.SyneTuneOptimizer``)."""

    @property
    def driver(self) -> Driver: ...


class Runs(Protocol):
    """What the simulation asks of the objective (``problem.Problem``)."""

    @property
    def done(self) -> bool: ...

    def draw(self, point: Any, epochs: int = ...) -> Draw: ...

    def record(self, draw: Draw, finished_at: float | None = None) -> Evaluation: ...


class Ended(NamedTuple):
    """One run as the simulation scheduled it."""

    worker: int
    job: Job
    started: float
    ended: float


def simulate(driver: Driver, problem: Runs, workers: int) -> list[Ended]:
    """Run ``driver``'s scheduler on ``workers`` simulated workers until ``problem`` is done (its budget or
    evaluation cap), or until nothing runs and the scheduler proposes nothing; every ended run, in end order.

    Raises:
      ValueError: ``workers`` is not a positive number.
    """
    if workers < 1:
        raise ValueError(f"the number of workers must be positive, got {workers}")
    free = list(range(workers))  # a heap: the lowest-numbered free worker starts next
    running: list[tuple[float, int, int, Job, Draw, float]] = []  # (end, start order, worker, job, draw, start)
    started = 0
    clock = 0.0
    ended: list[Ended] = []

    def start(worker: int, job: Job) -> None:
        nonlocal started
        draw = problem.draw(job.config, job.epochs)
        heapq.heappush(running, (clock + draw.cost, started, worker, job, draw, clock))
        started += 1

    with driver.running():
        while not problem.done:
            while free:
                job = driver.next_job()
                if job is None:
                    break
                start(heapq.heappop(free), job)
            if not running:
                break  # the scheduler proposes nothing and nothing runs: no event can change that
            end, _, worker, job, draw, began = heapq.heappop(running)
            clock = end
            evaluation = problem.record(draw, finished_at=end)
            ended.append(Ended(worker, job, began, end))
            following = driver.finished(job, evaluation)
            if following is not None and not problem.done:
                start(worker, following)
            else:
                heapq.heappush(free, worker)
    return ended
