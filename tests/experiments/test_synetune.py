"""Syne Tune's schedulers run with exact shortcuts for their costliest parts (search.synetune's
``with_exact_shortcuts``) and decide exactly as Syne Tune's own code does."""

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


def test_a_choice_space_casts_as_syne_tune_does():
    """``cast_config_values``, ``remove_constant_and_cast`` and ``postprocess_config`` as installed give what Syne
    Tune's own give (value and type, or the same error), on configurations as drawn and as they might be
    written by hand: values of another type that compare equal (True, 1.0, numpy's integers), a value of no
    category, a missing or an extra key."""
    from syne_tune import config_space as originals
    from syne_tune.config_space import choice
    from syne_tune.optimizer.schedulers import asha, single_fidelity_scheduler

    synetune._install_casts()
    synetune._install_casts()  # once: not wrapped twice
    names = ["op", "a", "b"]
    fast = synetune._fast_domains({"op": choice(["x", "y"]), "a": choice([0, 1]), "b": choice([0, 1])})
    plain = {"op": choice(["x", "y"]), "a": choice([0, 1]), "b": choice([0, 1])}
    assert type(fast) is synetune.ChoiceSpace
    configs = [{"op": "x", "a": 0, "b": 1}, {"b": 1, "a": 1, "op": "y"}, {"op": "x", "a": True, "b": 0}]
    configs += [{"op": "x", "a": 1.0, "b": 0}, {"op": "y", "a": np.int64(1), "b": 0}, {"op": "z", "a": 0, "b": 0}]
    configs += [{"op": "x", "a": 0}, {"op": "x", "a": 0, "b": 1, "extra": 3}, {"op": 0, "a": "0", "b": 1}]
    for module in (asha, single_fidelity_scheduler):
        for name in ("cast_config_values", "remove_constant_and_cast", "postprocess_config"):
            installed, original = getattr(module, name), getattr(originals, name)
            assert installed.__wrapped_cast__ is original
            for config in configs:
                try:
                    expected = original(dict(config), plain)
                except (AssertionError, ValueError) as error:
                    with pytest.raises(type(error)):
                        installed(dict(config), fast)
                    continue
                got = installed(dict(config), fast)
                assert list(got) == list(expected) and [type(v) for v in got.values()] == [
                    type(v) if not isinstance(v, originals.Domain) else synetune.Choice for v in expected.values()
                ], (name, config)
                assert {k: v for k, v in got.items() if k in names and not isinstance(v, originals.Domain)} == {
                    k: v for k, v in expected.items() if k in names and not isinstance(v, originals.Domain)
                }
    assert type(synetune._fast_domains({"a": choice([0.5, 1.0])})) is dict, "float categories: cast one by one"


def run(nasbench: api.NASBench, name: str, workers: int, evaluations: int) -> dict[str, np.ndarray]:
    problem = Problem(nasbench, "A", 7, budget_s=1e12, max_evaluations=evaluations)
    simulate(make_optimizer(name, problem).driver, problem, workers)  # type: ignore[attr-defined]
    return problem.columns()


def test_a_choice_draws_and_casts_as_syne_tunes_categorical():
    """The same values from the same stream (the global one, or a given generator), and the same casts."""
    from syne_tune.config_space import choice

    for categories in ([0, 1], ["conv1x1-bn-relu", "conv3x3-bn-relu", "maxpool3x3"], list(range(7))):
        original, fast = choice(categories), synetune.Choice(categories)
        for seed in range(20):
            np.random.seed(seed)
            expected = [original.sample() for _ in range(50)]
            np.random.seed(seed)
            assert [fast.sample() for _ in range(50)] == expected
            given = np.random.RandomState(seed), np.random.RandomState(seed)
            assert [fast.sample(random_state=given[0]) for _ in range(50)] == [
                original.sample(random_state=given[1]) for _ in range(50)
            ]
            assert given[0].randint(2**31) == given[1].randint(2**31)
        assert fast.sample(size=3, random_state=np.random.RandomState(1)) == original.sample(
            size=3, random_state=np.random.RandomState(1)
        )
        for value in [*categories, 1.0, True]:
            try:
                expected_cast = original.cast(value)
            except (AssertionError, ValueError) as error:
                with pytest.raises(type(error)):
                    fast.cast(value)
            else:
                assert fast.cast(value) == expected_cast and type(fast.cast(value)) is type(expected_cast)


EVALUATIONS = {"asha": 3000, "ahb": 3000, "st-bohb": 600, "st-rs": 600, "st-re": 600, "st-tpe": 300}
EVALUATIONS |= {"st-bore": 40, "asha-bore": 60}  # BORE: a tenth of a second per decision


@pytest.mark.parametrize("name", sorted(EVALUATIONS))
def test_runs_are_those_of_syne_tunes_own_code(name: str, full_nasbench: api.NASBench, monkeypatch):
    """The same seed on 16 workers, with and without the shortcuts: the same trajectory, evaluation by
    evaluation (for ASHA long enough for rungs of hundreds of results and thousands of refits)."""
    assert set(EVALUATIONS) == set(synetune.SCHEDULERS), "every scheduler offered"
    faster = run(full_nasbench, name, 16, EVALUATIONS[name])
    monkeypatch.setattr(synetune, "with_exact_shortcuts", lambda build: build)
    original = run(full_nasbench, name, 16, EVALUATIONS[name])
    for column in original:
        np.testing.assert_array_equal(faster[column], original[column], err_msg=column)


def test_the_shortcuts_are_in_place(full_nasbench: api.NASBench):
    """Were Syne Tune's classes to change (a new release), the shortcuts would quietly stop applying."""
    problem = Problem(full_nasbench, "A", 0, budget_s=1e6)
    scheduler = make_optimizer("asha", problem).driver.scheduler  # type: ignore[attr-defined]
    assert all(isinstance(bracket, synetune.RankedBracket) for bracket in scheduler.brackets)
    assert scheduler.searcher.fit_model.func is synetune._fit_random_searcher
    assert isinstance(scheduler.on_trial_add, synetune._BracketChoice)
    assert type(scheduler.config_space) is synetune.ChoiceSpace
    from syne_tune.optimizer.schedulers import asha

    assert hasattr(asha.remove_constant_and_cast, "__wrapped_cast__")
    assert all(isinstance(domain, synetune.Choice) for domain in scheduler.config_space.values())
    assert all(isinstance(domain, synetune.Choice) for domain in scheduler.searcher.config_space.values())
    scheduler.searcher.fit_model()
    assert isinstance(scheduler.searcher.searcher, synetune._RandomSearcher)


def test_random_configurations_are_syne_tunes(full_nasbench: api.NASBench):
    """Drawn in stretches of equal domains, on a space that mixes them with others: Syne Tune's draws."""
    from syne_tune.config_space import choice, randint, uniform
    from syne_tune.optimizer.schedulers.searchers.random_searcher import sample_random_config

    space = {"a": synetune.Choice([0, 1]), "b": synetune.Choice([0, 1]), "c": synetune.Choice(["x"]), "d": 4}
    space |= {"e": synetune.Choice(["x", "y", "z"]), "f": uniform(0, 1), "g": synetune.Choice(["x", "y", "z"])}
    space |= {"h": randint(0, 9), "i": choice([2, 3]), "j": synetune.Choice([2, 3]), "k": synetune.Choice([3, 2])}
    draw = synetune._Draws(space)
    for seed in range(30):
        np.random.seed(seed)
        expected = [sample_random_config(space) for _ in range(20)]
        np.random.seed(seed)
        drawn = [draw() for _ in range(20)]
        assert drawn == expected and [list(config) for config in drawn] == [list(space)] * 20
