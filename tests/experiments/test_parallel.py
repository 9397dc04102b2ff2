"""The simulation of asynchronous parallel workers: the event order and clock of a hand-computed schedule, the
cost of a promotion (the whole next-budget run), and the same trajectory for the same seed and workers."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from nasbench import api
from nasbench._cli import main
from nasbench.errors import ConfigurationError
from nasbench_experiments.search.problem import Draw, Evaluation, Problem, optimize
from nasbench_experiments.search.registry import OPTIMIZERS, REFUSED_SCHEDULERS
from nasbench_experiments.studies import runner
from nasbench_experiments.studies.parallel import Ended, simulate
from tests.experiments.test_runner import assert_same_runs, in_process_tables

pytest.importorskip("syne_tune", reason="Syne Tune's schedulers need the experiments extra")

from nasbench_experiments.search.synetune import Job, SyneTuneOptimizer


class Script:
    """A scheduler proposing named jobs in a fixed order, and an objective whose jobs take known training times:
    the simulation's inputs written out by hand. ``calls`` logs what the simulation asked, in order."""

    def __init__(self, costs: dict[str, float], budget_s: float, then: dict[str, str] | None = None):
        self.costs = costs
        self.then = then or {}  # job -> the job its worker goes on with when it ends (a promotion)
        self.proposals = iter(name for name in costs if name not in self.then.values())
        self.budget_s = budget_s
        self.spent = 0.0
        self.calls: list[str] = []
        self.rows: list[tuple[float, float]] = []

    @contextmanager
    def running(self) -> Iterator[None]:
        yield

    def next_job(self) -> Job | None:
        name = next(self.proposals, None)
        self.calls.append(f"ask {name}")
        return None if name is None else Job(len(self.calls), {"name": name}, 108)

    def finished(self, job: Job, evaluation: Evaluation) -> Job | None:
        name = job.config["name"]
        self.calls.append(f"end {name}")
        following = self.then.get(name)
        return None if following is None else Job(job.trial, {"name": following}, 108)

    @property
    def done(self) -> bool:
        return self.spent >= self.budget_s

    def draw(self, point: Any, epochs: int = 108) -> Draw:
        return Draw(epochs, True, 0.9, self.costs[point["name"]], 0.9, 0.9, 0)

    def record(self, draw: Draw, finished_at: float | None = None) -> Evaluation:
        self.spent += draw.cost
        assert finished_at is not None
        self.rows.append((draw.cost, finished_at))
        return Evaluation(0.1, draw.cost, True)


def schedule(ended: list[Ended]) -> list[tuple[int, str, float, float]]:
    return [(run.worker, run.job.config["name"], run.started, run.ended) for run in ended]


def test_three_workers_follow_the_hand_computed_schedule():
    """Training times a 10, b 4, c 6, d 3, e 5, f 1, g 2, h 7 on 3 workers, budget 26 s of training:

    t=0  a, b, c start on workers 0, 1, 2          t=7  d ends (13 s spent); f starts on 1
    t=4  b ends (4 s spent); d starts on 1         t=8  f ends (14 s); g starts on 1
    t=6  c ends (10 s); e starts on 2              t=10 a ends (24 s; it started before g, so it ends first);
                                                        h starts on 0; g ends (26 s): the budget is spent, e and h
                                                        are dropped
    """
    script = Script({"a": 10, "b": 4, "c": 6, "d": 3, "e": 5, "f": 1, "g": 2, "h": 7}, budget_s=26)
    ended = simulate(script, script, workers=3)
    assert schedule(ended) == [
        (1, "b", 0, 4),
        (2, "c", 0, 6),
        (1, "d", 4, 7),
        (1, "f", 7, 8),
        (0, "a", 0, 10),
        (1, "g", 8, 10),
    ]
    # a freed worker asks at once, before the next run ends (asynchronous: nobody waits for a batch)
    assert script.calls == [
        "ask a", "ask b", "ask c",
        "end b", "ask d",
        "end c", "ask e",
        "end d", "ask f",
        "end f", "ask g",
        "end a", "ask h",
        "end g",
    ]  # fmt: skip
    assert [time for _, time in script.rows] == [4, 6, 7, 8, 10, 10]


def test_a_promoted_run_occupies_its_worker_for_the_whole_next_budget_run():
    """b (4 s) is promoted to b+ (a run of 9 s, not 9 - 4): its worker goes on with it at once, and the result of
    b+ arrives 9 s after b's."""
    script = Script({"a": 10, "b": 4, "c": 30, "b+": 9}, budget_s=23, then={"b": "b+"})
    ended = simulate(script, script, workers=2)
    assert schedule(ended) == [(1, "b", 0, 4), (0, "a", 0, 10), (1, "b+", 4, 13)]
    assert script.calls == ["ask a", "ask b", "end b", "end a", "ask c", "end b+"]


def test_the_number_of_workers_must_be_positive():
    script = Script({"a": 1}, budget_s=1)
    with pytest.raises(ValueError, match="must be positive, got 0"):
        simulate(script, script, workers=0)


# --- with Syne Tune's ASHA on the data ------------------------------------------------------------------------


def asha_run(nasbench: api.NASBench, seed: int, workers: int, budget_s: float = 3e4) -> tuple[Problem, list[Ended]]:
    problem = Problem(nasbench, "A", seed, budget_s)
    optimizer = SyneTuneOptimizer(problem, scheduler="asha")
    return problem, simulate(optimizer.driver, problem, workers)


def test_asha_promotions_pay_the_whole_next_budget_run(full_nasbench: api.NASBench):
    """Every run of a promoted trial costs the stored training time of one repeat at its own budget (not the
    difference to the budget below), starts when the trial's previous run ends, on the same worker; so no
    lower-budget result of a trial arrives during its higher-budget run."""
    problem, ended = asha_run(full_nasbench, seed=1, workers=3)
    columns = problem.columns()
    by_trial: dict[int, list[tuple[Ended, float]]] = {}
    invalid = set()
    for run, cost, ok in zip(ended, columns["cost"], columns["valid"], strict=True):
        by_trial.setdefault(run.job.trial, []).append((run, float(cost)))
        if not ok:
            invalid.add(run.job.trial)
    promoted = [runs for runs in by_trial.values() if len(runs) > 1]
    differences = valid = 0
    for runs in promoted:
        trial = runs[0][0].job.trial
        assert [run.job.epochs for run, _ in runs] == [4, 12, 36, 108][: len(runs)]
        for (before, _), (after, _) in itertools.pairwise(runs):
            assert (after.started, after.worker) == (before.ended, before.worker)
        if trial in invalid:  # an invalid configuration: error 1 at no cost, at every budget
            assert all(run.ended == run.started for run, _ in runs)
            continue
        spec = problem.spec_of(runs[0][0].job.config)
        valid += 1
        for run, cost in runs:
            assert run.ended - run.started == pytest.approx(cost)
            stored = full_nasbench.query(spec, run.job.epochs, repeat="all")["training_time"]
            assert any(cost == pytest.approx(float(time)) for time in stored)
            if run.job.epochs > 4:
                below = full_nasbench.query(spec, run.job.epochs // 3, repeat="all")["training_time"]
                differences += all(cost != pytest.approx(float(time - low)) for time in stored for low in below)
    assert valid >= 3 and differences > 0
    assert np.all(np.diff(columns["time"]) >= 0)  # rows in end order, on the wall-clock


def test_the_same_seed_and_workers_give_the_same_trajectory(full_nasbench: api.NASBench):
    first, _ = asha_run(full_nasbench, seed=2, workers=4)
    again, _ = asha_run(full_nasbench, seed=2, workers=4)
    other, _ = asha_run(full_nasbench, seed=2, workers=5)
    for name, column in first.columns().items():
        np.testing.assert_array_equal(column, again.columns()[name], err_msg=name)
    assert not np.array_equal(first.columns()["time"], other.columns()["time"])


def test_the_scheduler_runs_on_its_own_numpy_global_state(full_nasbench: api.NASBench):
    """Syne Tune draws from numpy's global generator: a run neither depends on nor disturbs the caller's."""
    np.random.seed(5)
    expected = np.random.random()
    np.random.seed(5)
    first, _ = asha_run(full_nasbench, seed=3, workers=2)
    assert np.random.random() == expected
    np.random.seed(6)
    again, _ = asha_run(full_nasbench, seed=3, workers=2)
    np.testing.assert_array_equal(first.columns()["validation_accuracy"], again.columns()["validation_accuracy"])


def test_one_worker_is_the_sequential_run_of_ask_and_tell(full_nasbench: api.NASBench):
    simulated, _ = asha_run(full_nasbench, seed=4, workers=1)
    sequential = Problem(full_nasbench, "A", 4, 3e4)
    optimize(SyneTuneOptimizer(sequential, scheduler="asha"), sequential)
    for name, column in sequential.columns().items():
        np.testing.assert_allclose(column, simulated.columns()[name], err_msg=name)


def test_with_more_workers_a_run_spans_less_wall_clock_for_the_same_training(full_nasbench: api.NASBench):
    one, _ = asha_run(full_nasbench, seed=0, workers=1, budget_s=1e5)
    eight, _ = asha_run(full_nasbench, seed=0, workers=8, budget_s=1e5)
    for problem in (one, eight):
        assert 1e5 <= problem.columns()["cost"].sum() < 1e5 + 6000  # stopped at the first end past the budget
    assert eight.columns()["time"][-1] < one.columns()["time"][-1] / 6


# --- parallel studies ------------------------------------------------------------------------------------------


def parallel_study(dataset: str) -> runner.Study:
    return runner.Study(dataset, ("asha", "st-re"), runs=2, budget_s=4e4, encoding="A", parallel=4)


def test_a_parallel_study_gives_the_same_runs_in_process_and_on_worker_processes(full_store: Path, tmp_path: Path):
    study = parallel_study(str(full_store))
    expected = in_process_tables(study, tmp_path / "reference")
    runner.run_study(study, tmp_path / "processes", workers=2, progress=False)
    assert_same_runs(tmp_path / "processes", expected)
    for reference in expected.values():
        assert reference.column("time").to_numpy()[-1] < 4e4 / 3  # 4 workers: about a quarter of the training


def test_every_syne_tune_scheduler_runs_a_short_parallel_study_on_the_embedded_store(capsys, tmp_path: Path):
    offered = [name for name, info in OPTIMIZERS.items() if info.parallel]
    out = tmp_path / "study"
    arguments = ["--optimizers", ",".join(offered), "--runs", "1", "--budget", "2e4", "--parallel", "3"]
    assert main(["compare", *arguments, "--workers", "2", "--out", str(out), "--no-progress"]) == 0
    rows = pq.read_table(out / runner.RESULTS_FILE).to_pandas()
    assert sorted(rows["optimizer"].unique()) == sorted(offered)
    for name, runs in rows.groupby("optimizer"):
        assert runs["cost"].sum() >= 2e4, name  # a run spends its budget of training
        assert runs["time"].is_monotonic_increasing, name
        assert runs["time"].iloc[-1] < runs["cost"].sum() / 2, name  # on 3 workers, in less wall-clock
        if OPTIMIZERS[name].multi_fidelity:
            assert set(runs["epochs"]) == {4, 12, 36, 108}, name
    assert "runs done now" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(REFUSED_SCHEDULERS))
def test_each_refused_scheduler_says_why_in_one_line(name: str, capsys, tmp_path: Path):
    assert main(["compare", "--optimizers", name, "--parallel", "4", "--out", str(tmp_path / "study")]) == 2
    assert (
        capsys.readouterr().err
        == f"nasbench compare: error: optimizer {name} is not offered: {REFUSED_SCHEDULERS[name]}\n"
    )
    assert not (tmp_path / "study").exists()


def test_parallel_workers_are_refused_for_optimizers_that_ask_one_at_a_time(capsys, tmp_path: Path):
    assert main(["compare", "--optimizers", "asha,re", "--parallel", "4", "--out", str(tmp_path / "study")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "re ask and tell one evaluation at a time: run them without --parallel" in error
    assert main(["compare", "--optimizers", "asha", "--parallel", "0", "--out", str(tmp_path / "study")]) == 2
    assert capsys.readouterr().err == "nasbench compare: error: --parallel must be a positive integer, got 0\n"


def test_a_study_resumes_only_with_the_same_workers(full_store: Path, tmp_path: Path):
    study = runner.Study(str(full_store), ("st-rs",), runs=1, budget_s=1e4, encoding="A", parallel=2)
    runner.run_study(study, tmp_path, workers=1, progress=False)
    with pytest.raises(ConfigurationError, match="parallel = 2, not 3"):
        runner.run_study(replace(study, parallel=3), tmp_path, workers=1, progress=False)
