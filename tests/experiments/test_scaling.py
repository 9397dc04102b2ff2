"""How studies on 1, 2, ... simulated workers are drawn together: the speed-up to reach a regret, the figures
from real studies, and studies that would not compare refused in one line."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from nasbench._cli import main
from nasbench_experiments.studies.report import Run
from nasbench_experiments.studies.scaling import speedups

pytest.importorskip("syne_tune", reason="Syne Tune's schedulers need the experiments extra")


def run(times: list[float], regrets: list[float]) -> Run:
    n = len(times)
    return Run("asha", 0, np.array(times), np.array(regrets), np.array(regrets), np.ones(n, dtype=bool))


def test_the_speed_up_is_the_median_time_to_reach_a_regret_on_one_worker_over_that_on_n():
    one = [run([100, 400, 800], [0.02, 0.009, 0.004]), run([100, 600, 900], [0.03, 0.008, 0.0045])]
    four = [run([25, 100, 200], [0.02, 0.009, 0.004]), run([25, 200, 250], [0.03, 0.008, 0.0045])]
    rows = speedups(1000.0, {1: one, 4: four})
    by_level = {(row["level"], row["workers"]): row["speedup"] for row in rows}
    assert by_level[(1e-2, 1)] == 1.0
    assert by_level[(1e-2, 4)] == pytest.approx(500 / 150)  # medians of (400, 600) and (100, 200)
    assert by_level[(5e-3, 4)] == pytest.approx(850 / 225)
    assert (2e-3, 4) not in by_level  # no run reaches it


def test_the_figures_of_studies_on_1_and_4_workers(full_store: Path, tmp_path: Path, capsys):
    common = ["--store", str(full_store), "--optimizers", "st-rs,asha", "--runs", "3", "--budget", "5e4"]
    common += ["--workers", "2", "--no-progress"]
    for workers in (1, 4):
        assert main(["compare", *common, "--parallel", str(workers), "--out", str(tmp_path / f"n{workers}")]) == 0
    folders = f"{tmp_path / 'n1'},{tmp_path / 'n4'}"
    assert main(["compare", "--scaling", folders, "--out", str(tmp_path / "scaling")]) == 0
    for name in ("scaling_regret.png", "speedup.png"):
        assert (tmp_path / "scaling" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(tmp_path / "scaling" / "scaling.csv") as file:
        rows = list(csv.DictReader(file))
    assert {row["optimizer"] for row in rows} <= {"st-rs", "asha"}
    assert all(float(row["speedup"]) == 1.0 for row in rows if row["workers"] == "1")
    capsys.readouterr()
    assert main(["compare", "--scaling", f"{tmp_path / 'n1'},{tmp_path / 'n1'}", "--out", str(tmp_path / "x")]) == 2
    error = f"nasbench compare: error: two studies with --parallel 1 ({tmp_path / 'n1'} is the second)\n"
    assert capsys.readouterr().err == error
