"""The Ray executor (a local Ray of 2 CPUs): the same trajectories as runs in this process, every optimizer."""

from __future__ import annotations

from pathlib import Path

import pytest

from nasbench_experiments.studies import runner
from tests.experiments.test_runner import assert_same_runs, every_optimizer_study, in_process_tables

ray = pytest.importorskip("ray")


def test_ray_runs_give_the_same_trajectories(full_store: Path, tmp_path: Path):
    study = every_optimizer_study(str(full_store))
    expected = in_process_tables(study, tmp_path / "reference")
    done = runner.run_study(study, tmp_path / "ray", executor="ray", workers=2, progress=False)
    assert len(done) == len(expected)
    assert not ray.is_initialized()  # the local Ray this call started is stopped again
    assert_same_runs(tmp_path / "ray", expected)
