"""Syne Tune's multi-fidelity schedulers run without the two costs that grew with a run (search.synetune's
``without_quadratic_costs``), and decide exactly as Syne Tune's own code does."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from syne_tune.optimizer.schedulers.asha import Bracket

from nasbench import api
from nasbench_experiments.search import synetune
from nasbench_experiments.search.problem import Problem
from nasbench_experiments.search.registry import make_optimizer
from nasbench_experiments.studies.parallel import simulate

# (trial, budget, validation error): errors from few values, so that ties are common
RESULTS = st.lists(
    st.tuples(st.integers(0, 40), st.sampled_from([4, 12, 36, 108]), st.sampled_from([0.1, 0.2, 0.25, 0.3, 1.0])),
    max_size=300,
)


@settings(max_examples=200, deadline=None)
@given(results=RESULTS, s=st.integers(0, 3))
def test_a_ranked_bracket_decides_as_syne_tunes_bracket(results, s: int):
    original, taken_over = Bracket(4, 108, 3, s), Bracket(4, 108, 3, s)
    half = len(results) // 2
    for trial, budget, error in results[:half]:  # rungs that already hold results when the ranked bracket takes over
        original.on_result(trial, budget, {"validation_error": error})
        taken_over.on_result(trial, budget, {"validation_error": error})
    ranked = synetune.RankedBracket(taken_over)
    for trial, budget, error in results[half:]:
        metrics = {"validation_error": error}
        assert ranked.on_result(trial, budget, dict(metrics)) == original.on_result(trial, budget, dict(metrics))
    assert [recorded for _, recorded in ranked.rungs] == [recorded for _, recorded in original.rungs]


def run(nasbench: api.NASBench, name: str, workers: int, evaluations: int) -> dict[str, np.ndarray]:
    problem = Problem(nasbench, "A", 7, budget_s=1e12, max_evaluations=evaluations)
    simulate(make_optimizer(name, problem).driver, problem, workers)  # type: ignore[attr-defined]
    return problem.columns()


@pytest.mark.parametrize("name", ["asha", "ahb", "st-bohb"])
def test_runs_are_those_of_syne_tunes_own_code(name: str, full_nasbench: api.NASBench, monkeypatch):
    """The same seed on 16 workers, with and without the replacements: the same trajectory, evaluation by
    evaluation (long enough for rungs of hundreds of results and thousands of refits)."""
    evaluations = 600 if name == "st-bohb" else 3000
    faster = run(full_nasbench, name, 16, evaluations)
    monkeypatch.setattr(synetune, "without_quadratic_costs", lambda scheduler: scheduler)
    original = run(full_nasbench, name, 16, evaluations)
    for column in original:
        np.testing.assert_array_equal(faster[column], original[column], err_msg=column)


def test_the_replacements_are_in_place(full_nasbench: api.NASBench):
    """Were Syne Tune's classes to change (a new release), the replacements would quietly stop applying."""
    problem = Problem(full_nasbench, "A", 0, budget_s=1e6)
    scheduler = make_optimizer("asha", problem).driver.scheduler  # type: ignore[attr-defined]
    assert all(isinstance(bracket, synetune.RankedBracket) for bracket in scheduler.brackets)
    assert scheduler.searcher.fit_model.func is synetune._fit_random_searcher
