"""The paper's TPE (hyperopt), Hyperband and BOHB (hpbandster), driven by ask/tell in the run's process: the
schedule is Hyperband's, promotions take the best of a stage, and what is told reaches the library's model."""

from __future__ import annotations

import numpy as np
import pytest

from nasbench import api
from nasbench_experiments.search.problem import Problem, optimize
from nasbench_experiments.search.registry import make_optimizer
from tests.experiments.conftest import needs_libraries


def test_hyperbands_brackets_are_the_papers():
    """Li et al. (2018) with eta 3 over 4, 12, 36, 108 epochs (s_max = 3): bracket s starts
    floor(4 / (s + 1)) * 3**s configurations at the (4 - s - 1)-th budget and keeps a third at each stage."""
    needs_libraries("hb")
    from nasbench_experiments.search.hpbandster_family import brackets

    assert brackets() == [
        ([27, 9, 3, 1], [4, 12, 36, 108]),
        ([9, 3, 1], [12, 36, 108]),
        ([6, 2], [36, 108]),
        ([4], [108]),
    ]


def _run(nasbench: api.NASBench, name: str, evaluations: int, seed: int = 0) -> tuple[Problem, object]:
    problem = Problem(nasbench, "A", seed, budget_s=1e12, max_evaluations=evaluations)
    optimizer = make_optimizer(name, problem)
    optimize(optimizer, problem)
    return problem, optimizer


@pytest.mark.parametrize("name", ["hb", "bohb"])
def test_a_run_follows_the_brackets_and_promotes_the_best_third(name: str, full_nasbench: api.NASBench):
    """Two rounds of the four brackets, evaluation by evaluation: the budgets in order, and each stage's
    configurations those with the lowest validation errors in the stage before (hpbandster's successive
    halving; ties aside, so the errors they had there are compared)."""
    needs_libraries(name)
    from nasbench_experiments.search.hpbandster_family import brackets

    rounds = [pair for stages, budgets in brackets() for pair in zip(stages, budgets, strict=True)]
    schedule = rounds * 2
    problem = Problem(full_nasbench, "A", 0, budget_s=1e12)
    optimizer = make_optimizer(name, problem)
    told = []  # (configuration, epochs, validation error)
    for _ in range(sum(count for count, _ in schedule)):
        point, epochs = optimizer.ask()
        evaluation = problem.evaluate(point, epochs)
        optimizer.tell(point, epochs, evaluation)
        told.append((tuple(sorted(point.items())), epochs, evaluation.validation_error))
    assert [epochs for _, epochs, _ in told] == [epochs for count, epochs in schedule for _ in range(count)]
    start = 0
    stage_before: dict[tuple, float] = {}
    for count, epochs in schedule:
        stage = told[start : start + count]
        if epochs > 4 and count < len(stage_before):  # a stage after the first of its bracket: promotions
            assert all(config in stage_before for config, _, _ in stage), (name, epochs)
            promoted = sorted(stage_before[config] for config, _, _ in stage)
            assert promoted == sorted(stage_before.values())[:count], (name, epochs)
        stage_before = {config: error for config, _, error in stage}
        start += count


def test_bohb_fits_its_density_model_on_what_it_is_told(full_nasbench: api.NASBench):
    """BOHB fits its model at a budget once both the good and the bad observations there outnumber the
    hyperparameters (encoding A has 26, so at least 27 each): 54 results at 4 epochs, which the 92nd evaluation
    gives (a round of the four brackets is 40 + 13 + 8 + 4 = 65 evaluations, 27 of them at 4 epochs, and the
    second round starts with 27 more)."""
    needs_libraries("bohb")
    _, optimizer = _run(full_nasbench, "bohb", 91)
    assert not optimizer.generator.kde_models  # type: ignore[attr-defined]
    _, optimizer = _run(full_nasbench, "bohb", 92)
    assert list(optimizer.generator.kde_models) == [4.0]  # type: ignore[attr-defined]


def test_asking_twice_without_telling_is_refused(full_nasbench: api.NASBench):
    needs_libraries("bohb")
    optimizer = make_optimizer("bohb", Problem(full_nasbench, "A", 0, 1e6))
    optimizer.ask()
    with pytest.raises(RuntimeError, match="ask before the last proposal was told"):
        optimizer.ask()


def test_hyperopts_tpe_is_told_every_validation_error(full_nasbench: api.NASBench):
    """The trials hyperopt models are the run's evaluations: its losses are the validation errors told (1 for an
    invalid configuration), in order, all of them done."""
    needs_libraries("tpe")
    problem, optimizer = _run(full_nasbench, "tpe", 60)
    losses = optimizer.trials.losses()  # type: ignore[attr-defined]
    np.testing.assert_array_equal(losses, 1 - problem.columns()["validation_accuracy"])
    assert len(losses) == 60
