"""Bookkeeping: incumbents and regrets on hand-made runs, and a statistical check against exact expectations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nasbench import api
from nasbench._engine.engine import Engine
from nasbench._store.layout import METRIC_FIELDS
from nasbench_experiments.search.problem import Problem, optimize
from nasbench_experiments.search.random_search import RandomSearch
from nasbench_experiments.studies import bookkeeping

VALIDATION = METRIC_FIELDS.index("final_validation_accuracy")


def test_the_incumbent_changes_only_on_a_strict_improvement_of_a_valid_evaluation():
    valid = np.array([False, True, True, True, False, True])
    accuracy = np.array([0.0, 0.80, 0.80, 0.85, 0.99, 0.70])
    assert bookkeeping.incumbents(valid, accuracy).tolist() == [-1, 1, 1, 3, 3, 3]


def test_regrets_follow_the_incumbent():
    columns = {
        "valid": np.array([False, True, True, True]),
        "validation_accuracy": np.array([0.0, 0.90, 0.92, 0.91]),
        "mean_test_accuracy": np.array([np.nan, 0.89, 0.88, 0.95]),
    }
    found = bookkeeping.regrets(columns, best_test_accuracy=0.95, best_validation_accuracy=0.93)
    assert np.isnan(found["test_regret"][0])
    np.testing.assert_allclose(found["test_regret"][1:], [0.06, 0.07, 0.07])  # 0.95 (row 3) is never incumbent
    np.testing.assert_allclose(found["validation_regret"][1:], [0.03, 0.01, 0.01])
    time = np.array([0.0, 10.0, 30.0, 60.0])
    np.testing.assert_allclose(
        bookkeeping.regret_at(time, found["test_regret"], np.array([5.0, 10.0, 45.0, 1e9]))[1:], [0.06, 0.07, 0.07]
    )
    assert bookkeeping.time_to_reach(time, found["test_regret"], 0.065, 1e9) == 10.0
    assert bookkeeping.time_to_reach(time, found["test_regret"], 0.01, 1e9) == math.inf


def expected_minimum_of_distinct_cells(errors: np.ndarray, n: int) -> float:
    """E[min] of the observed validation error over n distinct cells drawn uniformly, each observed through one of
    its runs drawn uniformly: E[min] = v0 + sum_k (v_{k+1} - v_k) P(min > v_k), where P(min > t) is the mean over
    n-subsets of prod q_c(t), q_c(t) = the fraction of c's runs with error > t, i.e. e_n(q) / C(N, n), computed
    with the normalized recurrence R_j(m) = (m - j)/m R_j(m-1) + j/m q_m R_{j-1}(m-1)."""
    values = np.unique(errors)
    q = (errors[:, :, None] > values[None, None, :]).mean(axis=1)  # float64[cells, thresholds]
    ratio = np.zeros((n + 1, len(values)))
    ratio[0] = 1.0
    for m in range(1, len(errors) + 1):
        j = np.arange(1, min(n, m) + 1)[:, None]
        ratio[1 : min(n, m) + 1] = (m - j) / m * ratio[1 : min(n, m) + 1] + j / m * q[m - 1] * ratio[: min(n, m)]
    survival = ratio[n]  # P(min > v_k)
    return float(values[0] + np.sum(np.diff(values) * survival[:-1]))


def test_random_search_incumbent_matches_the_exact_expectation(small_store):
    """200 runs of random search over uniformly drawn cells: the mean incumbent validation error after n queries
    agrees with the exact expectation from the store's values within 3 standard errors."""
    engine = Engine.open(small_store)
    errors = 1.0 - engine.store.metrics[:, engine.epochs.index(108), :, VALIDATION]  # float64[cells, 3]
    engine.close()
    nasbench = api.NASBench(small_store)
    checkpoints = (1, 5, 30)
    observed = {n: [] for n in checkpoints}
    for seed in range(200):
        problem = Problem(nasbench, "cells", seed, budget_s=1e12, max_evaluations=max(checkpoints))
        optimize(RandomSearch(problem), problem)
        columns = problem.columns()
        incumbent = bookkeeping.incumbents(columns["valid"], columns["validation_accuracy"])
        for n in checkpoints:
            observed[n].append(1.0 - columns["validation_accuracy"][incumbent[n - 1]])
    for n in checkpoints:
        values = np.array(observed[n])
        expected = expected_minimum_of_distinct_cells(errors, n)
        standard_error = values.std(ddof=1) / math.sqrt(len(values))
        assert abs(values.mean() - expected) < 3 * standard_error, (n, values.mean(), expected, standard_error)
    assert expected_minimum_of_distinct_cells(errors, 1) == pytest.approx(errors.mean(), rel=1e-12)  # exact at n = 1


def test_the_best_cell_has_exactly_zero_test_regret(small_store):
    nasbench = api.NASBench(small_store)
    best = nasbench.optima()[108]
    fixed = nasbench.fixed_statistics[best.test_hash]
    problem = Problem(nasbench, "cells", seed=0, budget_s=1e12)
    problem.evaluate(api.ModelSpec(fixed["module_adjacency"], fixed["module_operations"]))
    columns = problem.columns()
    found = bookkeeping.regrets(columns, best.test_accuracy, best.validation_accuracy)
    assert found["test_regret"].tolist() == [0.0]
    assert columns["mean_test_accuracy"][0] == best.test_accuracy
