"""The Ray executor (a local Ray of 2 CPUs): the same trajectories as runs in this process, every optimizer."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from nasbench_experiments.studies import runner
from tests.experiments.test_runner import assert_same_runs, every_optimizer_study, in_process_tables

ray = pytest.importorskip("ray")

# On a loaded machine Ray's start-up can fail a service (its dashboard aborting, "return code -6") and shut its node
# down without waiting for every process it started: their Popen objects, collected later, each warn "subprocess
# N is still running" (a ResourceWarning, an error in these tests). Those processes are Ray's, not the study's:
# the warning is ignored here, and the objects are collected before each test ends, so that it cannot surface in
# another test.
pytestmark = pytest.mark.filterwarnings(r"ignore:subprocess \d+ is still running:ResourceWarning")


@pytest.fixture(autouse=True)
def _collect_rays_processes() -> Iterator[None]:
    yield
    gc.collect()


def test_ray_runs_give_the_same_trajectories(full_store: Path, tmp_path: Path):
    study = every_optimizer_study(str(full_store))
    expected = in_process_tables(study, tmp_path / "reference")
    done = runner.run_study(study, tmp_path / "ray", executor="ray", workers=2, progress=False)
    assert len(done) == len(expected)
    assert not ray.is_initialized()  # the local Ray this call started is stopped again
    assert_same_runs(tmp_path / "ray", expected)


def test_a_ray_that_cannot_start_is_one_clear_error_and_leaves_nothing(small_store: Path, tmp_path: Path, monkeypatch):
    """Ray raises bare Exceptions when its node does not come up in time (a loaded machine): the study says so in
    one line and what the failed start left running is shut down."""
    from nasbench.errors import ConfigurationError

    tries: list[dict] = []

    def refuse(**options):
        tries.append(options)
        raise Exception("The current node timed out during startup.")  # what ray.init raises then

    shut: list[bool] = []
    monkeypatch.setattr(ray, "init", refuse)
    monkeypatch.setattr(ray, "shutdown", lambda: shut.append(True))
    study = runner.Study(str(small_store), ("rs",), 1, 1e5, "cells")
    with pytest.raises(ConfigurationError) as info:
        runner.run_study(study, tmp_path / "out", executor="ray", workers=2, progress=False)
    assert str(info.value) == "could not start a local Ray (2 tries): The current node timed out during startup."
    assert len(tries) == 2 and shut == [True, True]  # tried once more, each failed start shut down


def test_a_parallel_study_on_ray_gives_the_same_runs_as_in_process(full_store: Path, tmp_path: Path):
    """Runs on simulated workers (Syne Tune's schedulers, --parallel 4) are Ray tasks like any other."""
    pytest.importorskip("syne_tune", reason="Syne Tune's schedulers need the experiments extra")
    from tests.experiments.test_parallel import parallel_study

    study = parallel_study(str(full_store))
    expected = in_process_tables(study, tmp_path / "reference")
    runner.run_study(study, tmp_path / "ray", executor="ray", workers=2, progress=False)
    assert_same_runs(tmp_path / "ray", expected)
