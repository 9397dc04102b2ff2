"""The optima of a hand-built metrics column, and of a store, against a brute-force scan."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nasbench._engine.engine import Engine
from nasbench._engine.optima import optima
from nasbench._store.layout import METRIC_FIELDS

VALID = METRIC_FIELDS.index("final_validation_accuracy")
TEST = METRIC_FIELDS.index("final_test_accuracy")


def test_optima_of_a_hand_built_column_pick_the_best_mean_not_the_best_single_run():
    metrics = np.zeros((3, 1, 3, 8))
    metrics[0, 0, :, VALID] = [0.99, 0.50, 0.50]  # best single run, mean 0.663
    metrics[1, 0, :, VALID] = [0.80, 0.80, 0.80]  # best mean 0.8
    metrics[2, 0, :, TEST] = [0.70, 0.71, 0.72]  # best mean test 0.71
    metrics[1, 0, :, TEST] = [0.90, 0.10, 0.10]
    best = optima(metrics, [108])[108]
    assert (best.validation_row, best.test_row) == (1, 2)
    assert abs(best.validation_accuracy - 0.8) < 1e-12
    assert abs(best.test_accuracy - 0.71) < 1e-12


def test_ties_go_to_the_first_row():
    metrics = np.full((4, 1, 3, 8), 0.5)
    best = optima(metrics, [4])[4]
    assert (best.validation_row, best.test_row) == (0, 0)


def test_engine_optima_equal_a_brute_force_scan(small_store: Path):
    engine = Engine.open(small_store)
    try:
        found = engine.optima()
        assert sorted(found) == list(engine.epochs)
        for index, budget in enumerate(engine.epochs):
            means = [
                (sum(engine.store.metrics[row, index, r, TEST] for r in range(3)) / 3, -row)
                for row in range(engine.cells)
            ]
            value, negative_row = max(means)
            assert found[budget].test_row == -negative_row
            assert abs(found[budget].test_accuracy - value) < 1e-12
    finally:
        engine.close()


def test_api_optima_agree_with_the_engine_on_both_backends(open_nasbench, full_store: Path):
    """NASBench.optima() (a server answers it with GetOptima) equals the engine's scan, hashes included."""
    nasbench = open_nasbench(seed=0)
    engine = Engine.open(full_store)
    try:
        expected = engine.optima()
        hashes = engine.store.hashes
        found = nasbench.optima()
        assert sorted(found) == sorted(expected) == sorted(nasbench.valid_epochs)
        for epochs, best in found.items():
            assert best.epochs == epochs
            assert best.test_accuracy == expected[epochs].test_accuracy
            assert best.validation_accuracy == expected[epochs].validation_accuracy
            assert best.test_hash == hashes[expected[epochs].test_row].tobytes().hex()
            assert best.validation_hash == hashes[expected[epochs].validation_row].tobytes().hex()
        _, computed = nasbench.get_metrics_from_hash(found[108].test_hash)
        assert np.mean([run["final_test_accuracy"] for run in computed[108]]) == found[108].test_accuracy
        assert nasbench.get_budget_counters() == (0.0, 0)
    finally:
        engine.close()
