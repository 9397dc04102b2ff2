"""Every optimizer is deterministic per seed; regularized evolution and local search beat random search."""

from __future__ import annotations

import numpy as np
import pytest

from nasbench import api
from nasbench.errors import ConfigurationError
from nasbench_experiments.search.problem import Problem, optimize
from nasbench_experiments.search.registry import OPTIMIZERS, make_optimizer
from nasbench_experiments.studies import bookkeeping

# (optimizer, encoding): every optimizer, on the encodings it is usually run on
CASES = [
    ("rs", "A"),
    ("rs", "cells"),
    ("re", "B"),
    ("re", "cells"),
    ("ls", "C"),
    ("ls", "cells"),
    ("rl", "A"),
    ("tpe", "C"),
    ("smac", "A"),
    ("hb", "A"),
    ("bohb", "B"),
]


def run(nasbench: api.NASBench, name: str, encoding: str, seed: int, evaluations: int = 40) -> dict:
    problem = Problem(nasbench, encoding, seed, budget_s=1e7, max_evaluations=evaluations)
    optimizer = make_optimizer(name, problem)
    try:
        optimize(optimizer, problem)
    finally:
        getattr(optimizer, "close", lambda: None)()
    return problem.columns()


def test_the_cases_cover_every_optimizer():
    assert {name for name, _ in CASES} == set(OPTIMIZERS)


@pytest.mark.parametrize(("name", "encoding"), CASES, ids=[f"{n}-{e}" for n, e in CASES])
def test_an_optimizer_is_deterministic_per_seed(name: str, encoding: str, full_nasbench: api.NASBench):
    first = run(full_nasbench, name, encoding, seed=3)
    again = run(full_nasbench, name, encoding, seed=3)
    other = run(full_nasbench, name, encoding, seed=4)
    for column in first:
        np.testing.assert_array_equal(first[column], again[column], err_msg=column)
    assert not np.array_equal(first["cell"], other["cell"])
    assert len(first["cell"]) == 40 and first["valid"].any()
    if OPTIMIZERS[name].multi_fidelity:
        assert set(first["epochs"].tolist()) <= {4, 12, 36, 108} and 4 in first["epochs"]


def test_runs_sharing_a_process_do_not_disturb_each_other_or_the_global_random(full_nasbench: api.NASBench):
    import random

    random.seed(123)
    alone = run(full_nasbench, "re", "A", seed=5)
    expected_draw = random.random()
    random.seed(123)
    run(full_nasbench, "rs", "cells", seed=9)  # another run in between, and user code drawing numbers
    random.random()
    after = run(full_nasbench, "re", "A", seed=5)
    for column in alone:
        np.testing.assert_array_equal(alone[column], after[column], err_msg=column)
    random.seed(123)
    run(full_nasbench, "re", "A", seed=5)
    assert random.random() == expected_draw  # the run never touched the global random


def final_regrets(nasbench: api.NASBench, name: str, runs: int, budget_s: float) -> np.ndarray:
    best = nasbench.optima()[108]
    finals = []
    for seed in range(runs):
        problem = Problem(nasbench, "cells", seed, budget_s)
        optimize(make_optimizer(name, problem), problem)
        columns = problem.columns()
        regret = bookkeeping.regrets(columns, best.test_accuracy, best.validation_accuracy)["test_regret"]
        finals.append(bookkeeping.regret_at(columns["time"], regret, np.array([budget_s]))[0])
    return np.array(finals)


def test_evolution_and_local_search_beat_random_search(full_nasbench: api.NASBench):
    """On a dataset with locality (similar cells score alike), moving to neighbours of good cells pays."""
    budget_s = 5e5  # a few hundred evaluations
    random_search = np.median(final_regrets(full_nasbench, "rs", 50, budget_s))
    assert np.median(final_regrets(full_nasbench, "re", 50, budget_s)) < random_search
    assert np.median(final_regrets(full_nasbench, "ls", 50, budget_s)) < random_search


def test_settings_that_cannot_work_are_refused(full_nasbench: api.NASBench, only108_store):
    problem = Problem(full_nasbench, "C", 0, 1e6)
    with pytest.raises(ConfigurationError, match="rl learns categorical hyperparameters only"):
        make_optimizer("rl", problem)
    with pytest.raises(ConfigurationError, match="unknown optimizer 'nope'"):
        make_optimizer("nope", problem)
    with pytest.raises(ConfigurationError, match="positive number of simulated seconds"):
        Problem(full_nasbench, "A", 0, 0)
    only108 = api.NASBench(only108_store)
    with pytest.raises(ConfigurationError, match=r"hb is multi-fidelity .* this one has \[108\]"):
        make_optimizer("hb", Problem(only108, "A", 0, 1e6))
