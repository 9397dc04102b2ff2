"""NAS-Bench-101 as a Syne Tune blackbox: the stored runs at every budget, budgets as independent runs in the
elapsed time, and Syne Tune's own simulator running ASHA on it, over a store and over a server."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("syne_tune", reason="the blackbox needs the experiments extra")

from syne_tune import StoppingCriterion, Tuner
from syne_tune.backend.simulator_backend.simulator_callback import SimulatorCallback
from syne_tune.blackbox_repository import UserBlackboxBackend
from syne_tune.constants import ST_TUNER_TIME
from syne_tune.optimizer.baselines import ASHA

from nasbench_experiments.search.blackbox import NASBench101Blackbox
from nasbench_experiments.search.encodings import vector_encoding
from nasbench_experiments.search.synetune import config_space


def a_valid_configuration(blackbox: NASBench101Blackbox, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    space = blackbox.configuration_space
    while True:
        config = {
            name: domain.sample(random_state=np.random.RandomState(rng.integers(2**31)))
            for name, domain in space.items()
        }
        spec = vector_encoding("A").to_spec(config)
        if spec is not None and blackbox.nasbench.is_valid(spec):
            return config


def test_each_budget_is_its_own_stored_run_and_the_elapsed_time_sums_the_runs_up_to_it(full_store: Path):
    blackbox = NASBench101Blackbox(str(full_store), seed=0)
    config = a_valid_configuration(blackbox)
    spec = vector_encoding("A").to_spec(config)
    for repeat in range(3):
        rows = blackbox.objective_function(config, seed=repeat)
        elapsed = 0.0
        for row, epochs in zip(rows, (4, 12, 36, 108), strict=True):
            stored = blackbox.nasbench.query(spec, epochs, repeat="all")
            validation_error, test_error, training_time, elapsed_time = row
            assert validation_error == pytest.approx(1 - stored["validation_accuracy"][repeat])
            assert test_error == pytest.approx(1 - stored["test_accuracy"][repeat])
            assert training_time == pytest.approx(stored["training_time"][repeat])
            elapsed += training_time
            assert elapsed_time == pytest.approx(elapsed)
        one = blackbox.objective_function(config, fidelity={"epochs": 36}, seed=repeat)
        assert one["training_time"] == pytest.approx(rows[2][2])


def test_an_invalid_configuration_scores_error_one_at_no_cost(full_store: Path):
    blackbox = NASBench101Blackbox(str(full_store))
    config = {name: 0 for name in config_space("A")}  # no edge at all: the input is not connected to the output
    config.update({name: "conv3x3-bn-relu" for name in config if name.startswith("op")})
    rows = blackbox.objective_function(config, seed=0)
    np.testing.assert_array_equal(rows[:, :2], 1.0)
    np.testing.assert_array_equal(rows[:, 2:], 0.0)


@pytest.mark.parametrize("source", ["store", "server"])
def test_syne_tune_simulates_asha_on_it_in_two_lines(
    source: str, full_store: Path, server_address: str, tmp_path, monkeypatch
):
    monkeypatch.setenv("SYNETUNE_FOLDER", str(tmp_path))
    nasbench = str(full_store) if source == "store" else server_address
    # the two lines (docs/compare.md)
    blackbox = NASBench101Blackbox(nasbench)
    backend = UserBlackboxBackend(blackbox, elapsed_time_attr="elapsed_time")
    scheduler = ASHA(config_space(), metric="validation_error", time_attr="epochs", max_t=108, grace_period=4,
                     reduction_factor=3, random_seed=0)  # fmt: skip
    results = SimulatorCallback()
    tuner = Tuner(
        trial_backend=backend,
        scheduler=scheduler,
        stop_criterion=StoppingCriterion(max_wallclock_time=20_000),
        n_workers=4,
        sleep_time=0,
        callbacks=[results],
        save_tuner=False,
        results_update_interval=1e9,
        print_update_interval=1e9,
    )
    tuner.run()
    rows = results.dataframe()
    assert rows["trial_id"].nunique() > 8 and set(rows["epochs"]) >= {4, 12}
    promotions = 0
    for _, trial in rows.sort_values(["trial_id", "epochs"]).groupby("trial_id"):
        # a result arrives when its own run ends: the run at the next budget takes its whole training time
        arrivals, times = trial[ST_TUNER_TIME].to_numpy(), trial["training_time"].to_numpy()
        np.testing.assert_allclose(np.diff(arrivals), times[1:], rtol=1e-6, atol=0.02)
        promotions += len(trial) - 1
    assert promotions > 0
