"""A study's cost estimate: the model of a run, the schedule on the workers, and `nasbench compare --estimate`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nasbench._cli import main
from nasbench_experiments.studies import cost, runner


def test_runs_are_placed_in_order_on_the_first_free_worker():
    assert cost.makespan([3.0, 1.0, 1.0, 1.0], 2) == 3.0
    assert cost.makespan([1.0, 1.0, 1.0, 3.0], 2) == 4.0  # the long run starts last
    assert cost.makespan([2.0, 2.0], 8) == 2.0
    assert cost.makespan([], 2) == 0.0


def test_a_run_costs_its_iterations_and_they_grow_with_the_history():
    model = cost.Cost(rate=1e-3, first_s=0.01, growth_s=1e-4, setup_s=0.5, cells_rate=2e-3)
    assert model.run("A", 1e6, None) == pytest.approx((1000, 0.5 + 10 + 1e-4 * 1000**2 / 2))
    assert model.run("cells", 1e6, None)[0] == pytest.approx(2000)
    assert model.run("A", 1e6, 10)[0] == 10  # --max-evaluations caps it


def test_every_optimizer_has_a_calibrated_cost():
    from nasbench_experiments.search.registry import OPTIMIZERS

    assert set(cost.COSTS) == set(OPTIMIZERS) == set(cost.CALIBRATION_BUDGETS)


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.004, "0.004 s"), (42, "42 s"), (600, "10 min"), (9000, "2.5 h"), (4 * 86400, "4.0 days")]
)
def test_durations_read_as_people_plan(seconds: float, text: str):
    assert cost.duration(seconds) == text


def estimate_line(capsys, *arguments: str) -> str:
    assert main(["compare", "--estimate", *arguments]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    [line] = captured.out.splitlines()
    return line


def test_the_estimate_alone_writes_nothing_and_counts_only_the_runs_left(capsys, small_store: Path, tmp_path: Path):
    out = tmp_path / "study"
    quick = ["--optimizers", "rs,re", "--runs", "4", "--budget", "2e5", "--encoding", "cells", "--out", str(out)]
    line = estimate_line(capsys, *quick, "--workers", "2")
    expected = r"estimate: 8 runs, [0-9,]+ evaluations, about \S+ s on 2 workers \(\S+ s of CPU\); "
    expected += r"per run: rs \S+ s, re \S+ s"
    assert re.fullmatch(expected, line), line
    assert not out.exists()
    assert main(["compare", *quick, "--runs", "3", "--store", str(small_store), "--no-progress", "--workers", "1"]) == 0
    capsys.readouterr()
    assert estimate_line(capsys, *quick).startswith("estimate: 2 runs, ")


def test_the_full_comparison_is_estimated_as_the_cluster_job_it_is(capsys, tmp_path: Path):
    line = estimate_line(capsys, "--out", str(tmp_path / "full"), "--workers", "2")
    assert line.startswith("estimate: 4,000 runs, ")
    assert re.search(r"about [0-9.]+ (days|years) on 2 workers", line), line
    assert line.endswith("; a cluster job: --executor ray (docs/compare.md)")
    on_cluster = estimate_line(capsys, "--out", str(tmp_path / "full"), "--executor", "ray", "--address", "head:6379")
    shared = r"about [0-9.]+ (days|years) of CPU in all, to share among the cluster's CPUs; per run: "
    assert re.search(shared, on_cluster), on_cluster


def test_a_study_logs_its_estimate_before_it_runs(small_store: Path, tmp_path: Path, caplog):
    study = runner.Study(str(small_store), ("rs", "ls"), 2, 1e5, "cells")
    with caplog.at_level("INFO", logger="nasbench.experiments"):
        runner.run_study(study, tmp_path / "study", workers=1, progress=False)
    assert caplog.records[0].getMessage().startswith("estimate: 4 runs, ")
    assert caplog.records[0].runs == 4
