"""Syne Tune's schedulers as ``nasbench compare``'s optimizers, on NAS-Bench-101's data (``syne-tune`` 0.16).

``SyneTuneOptimizer`` is a Syne Tune scheduler driven through ``SchedulerDriver`` by the simulation of parallel
workers (``studies.parallel``), with the run's ``Problem`` as the objective (the repeat drawn per evaluation,
the run's record, regrets). ``search.blackbox`` is the same benchmark for Syne Tune's own simulator.

**Budgets are independent training runs** (Ying et al., 2019, section 2.3: each budget of the data is its own
run, trained from scratch with its own learning-rate schedule), not points of one learning curve. A trial
therefore runs as a ladder of whole runs: the first budget of its bracket, then, each time the scheduler says
CONTINUE, the whole run at the next budget (a promotion from 12 to 36 epochs pays the 36-epoch run, not 24
more epochs), and every result arrives when its own run ends, so no lower-budget result arrives during a
higher-budget run. Syne Tune's ASHA (0.16) is the stopping kind (results at each rung; STOP or CONTINUE), which
this ladder models exactly: its rung levels must all be budgets of the data (4, 12, 36, 108 with grace period
4 and reduction factor 3). A scheduler that pauses a trial and resumes it later gets the same: the resumed
trial runs the whole next budget.

Randomness: the scheduler's seed is drawn from ``problem.rng``; Syne Tune also draws from numpy's global
generator in places (ASHA's bracket choice, BORE's differential evolution), so the scheduler runs on a global
state of its own (``global_random``), seeded from the run, the caller's restored afterwards: runs never disturb
each other or the caller's ``numpy.random``.
"""

from __future__ import annotations

import bisect
import datetime
import functools
import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, NamedTuple

import numpy as np
from syne_tune.backend.trial_status import Trial
from syne_tune.config_space import Categorical, choice, randint, uniform
from syne_tune.optimizer.scheduler import SchedulerDecision, TrialScheduler
from syne_tune.optimizer.schedulers.asha import AsynchronousSuccessiveHalving, Bracket
from syne_tune.optimizer.schedulers.searchers.last_value_multi_fidelity_searcher import LastValueMultiFidelitySearcher
from syne_tune.optimizer.schedulers.searchers.random_searcher import RandomSearcher

from nasbench.errors import ConfigurationError
from nasbench_experiments.search.encodings import vector_encoding
from nasbench_experiments.search.global_random import GlobalRandomState
from nasbench_experiments.search.problem import FINAL_EPOCHS, Evaluation, Problem, require_budgets
from nasbench_experiments.search.registry import OPTIMIZERS, REFUSED_SCHEDULERS

METRIC = "validation_error"
RESOURCE = "epochs"
ELAPSED = "elapsed_time"  # the trial's summed training time so far (the ladder of runs up to this budget)
GRACE_PERIOD = 4
REDUCTION_FACTOR = 3
_CREATED = datetime.datetime(2000, 1, 1)  # trials are created in simulated time; Syne Tune only stores this

# Syne Tune 0.16's multi-fidelity searchers warn at every construction that the points_to_evaluate they were
# given are replaced by the ones they were given (ASHA passes both): a line per run that says nothing.
logging.getLogger("syne_tune.optimizer.schedulers.searchers.last_value_multi_fidelity_searcher").setLevel(logging.ERROR)


def config_space(encoding: str = "A") -> dict[str, Any]:
    """The encoding's hyperparameters as Syne Tune domains (the same values ``Problem`` evaluates)."""
    space: dict[str, Any] = {}
    for param in vector_encoding(encoding).params:
        if param.choices is not None:
            space[param.name] = choice(list(param.choices))
        elif param.integer:
            space[param.name] = randint(int(param.lower), int(param.upper))
        else:
            space[param.name] = uniform(param.lower, param.upper)
    return space


class Choice(Categorical):  # type: ignore[misc]  # Syne Tune is untyped
    """Syne Tune's uniform categorical domain (``choice``) with the same values at a tenth of the cost: a sample
    draws the index as Syne Tune's uniform sampler does (its ``RandomState.choice(n, size=1)`` is
    ``randint(0, n)`` of the same stream, the global one when given none) without the array bookkeeping around
    it, and casting a value that already is one of the categories returns it. Drawing and casting 26 of these per
    proposal was half of an ASHA run's time."""

    def __init__(self, categories: Sequence[Any]) -> None:
        super().__init__(categories)
        self.set_sampler(Categorical._Uniform())
        self._members = frozenset(self.categories)
        self._type = type(self.categories[0])

    @property
    def uniform_sampling(self) -> bool:
        return type(self.sampler) is Categorical._Uniform

    def sample(self, spec: Any = None, size: int = 1, random_state: np.random.RandomState | None = None) -> Any:
        if spec is not None or size != 1 or not self.uniform_sampling:
            return super().sample(spec, size, random_state)
        generator = np.random if random_state is None else random_state
        return self.categories[generator.randint(0, len(self.categories))]

    def cast(self, value: Any) -> Any:
        if type(value) is self._type and value in self._members:
            return value
        return super().cast(value)


_CASTS_AS_IS = frozenset({int, str})  # 1 == 1.0 == True: an int, float or bool value would pass for another


def _category_types(domains: dict[str, Any]) -> frozenset[type]:
    return frozenset(type(value) for domain in domains.values() for value in domain.categories)


class ChoiceSpace(dict[str, Choice]):
    """A configuration space of ``Choice`` domains only, with integer or string categories: a configuration whose
    every value already is one of its domain's categories, of the categories' own type, casts to itself (Syne
    Tune's ``cast_config_values``, ``remove_constant_and_cast`` and ``postprocess_config`` all return its values
    in the space's order then), which two set inclusions check at once instead of 26 casts."""

    def __init__(self, domains: dict[str, Choice]) -> None:
        super().__init__(domains)
        self._names = tuple(domains)
        self._pairs = frozenset((name, value) for name, domain in domains.items() for value in domain.categories)
        self._types = _category_types(domains)
        if not self._types <= _CASTS_AS_IS:
            raise ValueError(f"categories of types {sorted(t.__name__ for t in self._types)}: int and str only")

    def cast_as_is(self, config: dict[str, Any]) -> dict[str, Any] | None:
        """The cast of ``config`` when it is ``config``'s values in this space's order (else None: cast them)."""
        values = tuple(map(config.get, self._names))
        if self._types.issuperset(map(type, values)) and self._pairs.issuperset(zip(self._names, values, strict=True)):
            return dict(zip(self._names, values, strict=True))
        return None


def _fast_domains(space: dict[str, Any]) -> dict[str, Any]:
    """``space`` with each uniform categorical domain as ``Choice`` (the same values, drawn from the same stream);
    a ``ChoiceSpace`` when they all are, with integer or string categories."""
    fast = {
        name: Choice(domain.categories)
        if type(domain) is Categorical and type(domain.sampler) is Categorical._Uniform
        else domain
        for name, domain in space.items()
    }
    if all(isinstance(domain, Choice) for domain in fast.values()) and _category_types(fast) <= _CASTS_AS_IS:
        return ChoiceSpace(fast)
    return fast


def _cast_as_is(cast: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """One of Syne Tune's casts, answered by ``ChoiceSpace.cast_as_is`` where it can, by the cast itself else."""

    @functools.wraps(cast)
    def cast_or_not(config: dict[str, Any], config_space: dict[str, Any]) -> dict[str, Any]:
        if type(config_space) is ChoiceSpace:
            same = config_space.cast_as_is(config)
            if same is not None:
                return same
        return cast(config, config_space)

    cast_or_not.__wrapped_cast__ = cast  # type: ignore[attr-defined]
    return cast_or_not


def _install_casts() -> None:
    """Syne Tune's schedulers cast every configuration at each proposal and each result through these module
    functions (a quarter of an ASHA run): wrap them once, in the two scheduler modules the offered schedulers
    use, by ``_cast_as_is`` (spaces other than a ``ChoiceSpace`` are cast as before)."""
    from syne_tune.optimizer.schedulers import asha, single_fidelity_scheduler

    for module in (asha, single_fidelity_scheduler):
        for name in ("cast_config_values", "remove_constant_and_cast", "postprocess_config"):
            cast = getattr(module, name)
            if not hasattr(cast, "__wrapped_cast__"):
                setattr(module, name, _cast_as_is(cast))


# --- the schedulers ----------------------------------------------------------------------------------------------


Build = Callable[[dict[str, Any], int, dict[str, Any]], TrialScheduler]  # (space, seed, settings) -> scheduler


def _multi_fidelity(brackets: int, searcher: str | None = None) -> Build:
    def build(space: dict[str, Any], seed: int, settings: dict[str, Any]) -> TrialScheduler:
        from syne_tune.optimizer import baselines

        common = {"metric": METRIC, "time_attr": RESOURCE, "max_t": FINAL_EPOCHS, "random_seed": seed}
        common |= {"grace_period": GRACE_PERIOD, "reduction_factor": REDUCTION_FACTOR, "brackets": brackets}
        if searcher == "kde":
            return baselines.BOHB(space, **common, **settings)
        if searcher == "bore":
            return baselines.ASHABORE(space, **common, **settings)
        return baselines.ASHA(space, **common, **settings)

    return build


class RankedBracket(Bracket):  # type: ignore[misc]  # Syne Tune is untyped
    """Syne Tune's bracket of rungs (``asha.Bracket``), each rung's values also kept sorted, so that a result's
    rank is a bisection instead of an array of the rung's every value built and sorted again: the same decisions
    (a single metric: the rank is the count of strictly smaller values over the count with this one, as
    ``numpy.searchsorted`` on the sorted values gives it), at O(log n) instead of O(n log n) per result."""

    def __init__(self, original: Bracket) -> None:
        if original.priority is not None:
            raise ValueError("a bracket with a multi-objective priority ranks by it: keep Syne Tune's")
        self.rf = original.rf
        self.rungs = original.rungs
        self.priority = None
        self._sorted: dict[float, list[float]] = {
            milestone: sorted(value for metrics in recorded.values() for value in metrics.values())
            for milestone, recorded in self.rungs
        }

    def on_result(self, trial_id: int, cur_iter: int, metrics: dict[str, Any] | None) -> str:
        assert metrics is not None and len(metrics) == 1, "one metric per result"
        for milestone, recorded in self.rungs:
            if cur_iter < milestone or trial_id in recorded:
                continue
            (value,) = metrics.values()
            values = self._sorted[milestone]
            stop = bool(values) and bisect.bisect_left(values, value) / (len(values) + 1) > 1 / self.rf
            recorded[trial_id] = metrics
            bisect.insort(values, value)
            decision: str = SchedulerDecision.STOP if stop else SchedulerDecision.CONTINUE
            return decision
        decision = SchedulerDecision.CONTINUE
        return decision


class _Draws:
    """Syne Tune's random configuration (``random_searcher.sample_random_config``: each domain's ``sample()`` in
    the space's order, from numpy's global generator) with each stretch of consecutive ``Choice`` domains of the
    same size drawn by one ``randint(0, n, size=k)``: the same values, since k draws of ``randint(0, n)`` and one
    of size k read the same stream (encoding A: two draws instead of 26)."""

    def __init__(self, space: dict[str, Any]) -> None:
        self._stretches: list[tuple[list[str], list[Any]] | tuple[str, Any]] = []
        for name, domain in space.items():
            last = self._stretches[-1] if self._stretches else None
            if not (isinstance(domain, Choice) and domain.uniform_sampling):
                self._stretches.append((name, domain))
            elif last is not None and isinstance(last[0], list) and last[1] == domain.categories:
                last[0].append(name)
            else:
                self._stretches.append(([name], domain.categories))

    def __call__(self) -> dict[str, Any]:
        config: dict[str, Any] = {}
        for names, values in self._stretches:
            if isinstance(names, list):
                picks = np.random.randint(0, len(values), size=len(names)).tolist()
                config.update(zip(names, [values[pick] for pick in picks], strict=True))
            else:
                config[names] = values.sample() if hasattr(values, "sample") else values
        return config


class _RandomSearcher(RandomSearcher):  # type: ignore[misc]  # Syne Tune is untyped
    """Syne Tune's ``RandomSearcher`` drawing its configurations by ``draw``, a ``_Draws`` of its space."""

    def __init__(self, config_space: dict[str, Any], draw: _Draws, **kwargs: Any) -> None:
        super().__init__(config_space, **kwargs)
        self._draw = draw

    def suggest(self) -> dict[str, Any] | None:
        config: dict[str, Any] | None = self._next_points_to_evaluate()
        return self._draw() if config is None else config


def _fit_random_searcher(searcher: LastValueMultiFidelitySearcher, draw: _Draws) -> None:
    """``LastValueMultiFidelitySearcher.fit_model`` for random search: a new ``RandomSearcher`` seeded from the
    same draw, without replaying every result into it (its ``on_trial_complete`` does nothing), which made each
    refit, at every proposal, cost the whole history."""
    searcher.searcher = _RandomSearcher(
        searcher.config_space,
        draw,
        random_seed=searcher.random_state.randint(0, 2**31 - 1),
        points_to_evaluate=None,
        **searcher.searcher_kwargs,
    )


class _BracketChoice:
    """ASHA's ``on_trial_add`` (a bracket for a new trial, drawn from numpy's global generator with probabilities
    by the brackets' rung counts) with the probabilities computed once: the rung counts never change, and
    ``RandomState.choice(n, p=p)`` is ``searchsorted`` of p's normalised cumulative sum at one
    ``random_sample()``, the same draw from the same stream."""

    def __init__(self, scheduler: TrialScheduler) -> None:
        sizes = np.array([len(bracket.rungs) for bracket in scheduler.brackets])
        probabilities = np.e ** (sizes - sizes.max())
        cumulative = (probabilities / probabilities.sum()).cumsum()
        self._cumulative = cumulative / cumulative[-1]
        self._scheduler = scheduler

    def __call__(self, trial: Trial) -> None:
        index = int(self._cumulative.searchsorted(np.random.random_sample(), side="right"))
        self._scheduler.trial_info[trial.trial_id] = self._scheduler.brackets[index]


def with_exact_shortcuts(build: Build) -> Build:
    """``build`` with the parts of Syne Tune 0.16 that cost the most per decision replaced by exact equivalents,
    so that the decisions, and the trajectories, are Syne Tune's own (``tests/experiments/test_synetune.py``):

    - two costs that grew with the run: a rung ranked by sorting all its values (``RankedBracket``), a random
      searcher refitted by replaying every result (``_fit_random_searcher``): a run of 100,000 evaluations on 16
      workers took over 20 minutes, mostly there;
    - constant ones, two thirds of what remained: a configuration's 26 categorical draws (``Choice``, drawn in
      stretches by ``_Draws``) and casts at every proposal and result (``ChoiceSpace``, ``_install_casts``), and
      ASHA's bracket choice (``_BracketChoice``).
    """

    def faster(space: dict[str, Any], seed: int, settings: dict[str, Any]) -> TrialScheduler:
        _install_casts()
        scheduler = build(_fast_domains(space), seed, settings)
        brackets = getattr(scheduler, "brackets", None)
        if brackets is not None and all(type(b) is Bracket and b.priority is None for b in brackets):
            scheduler.brackets = [RankedBracket(bracket) for bracket in brackets]
            if type(scheduler).on_trial_add is AsynchronousSuccessiveHalving.on_trial_add:
                scheduler.on_trial_add = _BracketChoice(scheduler)
        searcher = getattr(scheduler, "searcher", None)
        if isinstance(searcher, LastValueMultiFidelitySearcher) and searcher.searcher_cls is RandomSearcher:
            searcher.fit_model = functools.partial(_fit_random_searcher, searcher, _Draws(searcher.config_space))
        return scheduler

    return faster


def _single_fidelity(kind: str) -> Build:
    def build(space: dict[str, Any], seed: int, settings: dict[str, Any]) -> TrialScheduler:
        from syne_tune.optimizer import baselines

        if kind == "rs":
            return baselines.RandomSearch(space, metrics=[METRIC], random_seed=seed, **settings)
        scheduler: type[TrialScheduler] = {"re": baselines.REA, "kde": baselines.TPE, "bore": baselines.BORE}[kind]
        return scheduler(space, metric=METRIC, random_seed=seed, **settings)

    return build


HYPERBAND_BRACKETS = 4  # rung levels 4, 12, 36, 108: brackets starting at each

# The schedulers offered, by their names in ``registry.OPTIMIZERS`` (which says which are multi-fidelity).
SCHEDULERS: dict[str, Build] = {
    "st-rs": _single_fidelity("rs"),
    "st-re": _single_fidelity("re"),
    "st-tpe": _single_fidelity("kde"),
    "st-bore": _single_fidelity("bore"),
    "asha": _multi_fidelity(1),
    "ahb": _multi_fidelity(HYPERBAND_BRACKETS),
    "st-bohb": _multi_fidelity(HYPERBAND_BRACKETS, "kde"),
    "asha-bore": _multi_fidelity(1, "bore"),
}

# --- driving a scheduler -----------------------------------------------------------------------------------------


class Job(NamedTuple):
    """One training run a worker does: a trial's configuration at one budget."""

    trial: int
    config: dict[str, Any]
    epochs: int


class SchedulerDriver:
    """A Syne Tune scheduler as Syne Tune's ``Tuner`` drives it (``suggest``, ``on_trial_add``,
    ``on_trial_result``, then ``on_trial_remove`` on STOP or PAUSE, ``on_trial_complete`` at a trial's last
    budget), with NAS-Bench-101's budgets as independent runs (the module docstring).

    Args:
      scheduler: any Syne Tune ``TrialScheduler`` reporting ``validation_error`` and deciding on ``epochs``.
      budgets: the budgets of the data, ascending; a single-fidelity scheduler runs the last one only.
      multi_fidelity: True for schedulers with rungs (ASHA and its kin).
      seed: seeds numpy's global generator as the scheduler sees it.
    """

    def __init__(self, scheduler: TrialScheduler, budgets: tuple[int, ...], multi_fidelity: bool, seed: int) -> None:
        self.scheduler = scheduler
        self.budgets = budgets
        self.multi_fidelity = multi_fidelity
        self._global = GlobalRandomState(seed)
        self._trials: dict[int, Trial] = {}
        self._ladders: dict[int, tuple[int, ...]] = {}
        self._spent: dict[int, float] = {}
        self._paused: dict[int, int] = {}  # trial -> the budget its last result was at

    def running(self) -> AbstractContextManager[None]:
        """Calls into the scheduler inside this block see this run's numpy global state (``global_random``): the
        simulation enters it once per run, ``ask``/``tell`` once per call."""
        return self._global.active()

    def next_job(self) -> Job | None:
        """The run a free worker starts now: a new trial's first budget, a paused trial's next one, or None when
        the scheduler proposes nothing (call inside ``running``)."""
        suggestion = self.scheduler.suggest()
        if suggestion is None:
            return None
        if not suggestion.spawn_new_trial_id:  # a paused trial resumes: the whole next-budget run
            trial_id = suggestion.checkpoint_trial_id
            trial = self._trials[trial_id]
            if suggestion.config is not None:
                trial.config = suggestion.config
            return Job(trial_id, trial.config, self._after(trial_id, self._paused.pop(trial_id)))
        trial_id = len(self._trials)
        trial = Trial(trial_id=trial_id, config=suggestion.config, creation_time=_CREATED)
        self._trials[trial_id] = trial
        self._spent[trial_id] = 0.0
        self.scheduler.on_trial_add(trial)
        self._ladders[trial_id] = self._ladder(trial_id)
        return Job(trial_id, trial.config, self._ladders[trial_id][0])

    def finished(self, job: Job, evaluation: Evaluation) -> Job | None:
        """Report a finished run; the run the same worker goes on with (the trial's next budget), or None (call
        inside ``running``)."""
        self._spent[job.trial] += evaluation.cost
        result = {
            METRIC: evaluation.validation_error,
            RESOURCE: job.epochs,
            "training_time": evaluation.cost,
            ELAPSED: self._spent[job.trial],
        }
        trial = self._trials[job.trial]
        decision = self.scheduler.on_trial_result(trial, result)
        if decision in (SchedulerDecision.STOP, SchedulerDecision.PAUSE):
            self.scheduler.on_trial_remove(trial)
            if decision == SchedulerDecision.PAUSE:
                self._paused[job.trial] = job.epochs
            return None
        if job.epochs == self._ladders[job.trial][-1]:
            self.scheduler.on_trial_complete(trial, result)
            return None
        return Job(job.trial, trial.config, self._after(job.trial, job.epochs))

    def _after(self, trial: int, epochs: int) -> int:
        ladder = self._ladders[trial]
        index = ladder.index(epochs) + 1
        if index == len(ladder):
            raise ConfigurationError(f"the scheduler resumed trial {trial} past its last budget ({epochs} epochs)")
        return ladder[index]

    def _ladder(self, trial: int) -> tuple[int, ...]:
        """The budgets a trial runs at: its bracket's rung levels (multi-fidelity), or the last budget."""
        if not self.multi_fidelity:
            return self.budgets[-1:]
        bracket = self.scheduler.trial_info[trial]  # ASHA's bookkeeping: the trial's bracket
        levels = tuple(sorted(int(milestone) for milestone, _ in bracket.rungs))
        if not set(levels) <= set(self.budgets):
            raise ConfigurationError(
                f"the scheduler's rung levels {list(levels)} are not budgets of the data {list(self.budgets)}"
            )
        return levels


class SyneTuneOptimizer:
    """A Syne Tune scheduler over the run's encoding, as ``nasbench compare`` runs it: ``studies.parallel``
    simulates its workers (one by default). ``ask``/``tell`` drive it with one worker, in the order the
    simulation does (for scripts and ``nasbench bench compare``).

    Args:
      problem: the run.
      scheduler: a name of ``SCHEDULERS``.
      shortcuts: False runs Syne Tune's own code throughout (the same trajectory, slower: ``with_exact_shortcuts``).
      settings: the scheduler's own keyword arguments, on top of those set here.
    """

    def __init__(self, problem: Problem, scheduler: str, *, shortcuts: bool = True, **settings: Any) -> None:
        build = SCHEDULERS.get(scheduler)
        if build is None:
            reason = REFUSED_SCHEDULERS.get(scheduler, "it is not one of Syne Tune's schedulers offered here")
            raise ConfigurationError(f"Syne Tune scheduler {scheduler!r} is not offered: {reason}")
        multi_fidelity = OPTIMIZERS[scheduler].multi_fidelity
        if multi_fidelity:
            require_budgets(problem, scheduler)
        seed = int(problem.rng.integers(2**31))
        encoding = "A" if problem.encoding_name == "cells" else problem.encoding_name
        built = (with_exact_shortcuts(build) if shortcuts else build)(config_space(encoding), seed, settings)
        self.driver = SchedulerDriver(built, problem.epochs, multi_fidelity, seed)
        self._following: Job | None = None
        self._job: Job | None = None

    def ask(self) -> tuple[Any, int]:
        if self._following is None:
            with self.driver.running():
                self._following = self.driver.next_job()
        job = self._following
        if job is None:
            raise ConfigurationError("the scheduler proposes no configuration any more")
        self._job, self._following = job, None
        return job.config, job.epochs

    def tell(self, point: Any, epochs: int, evaluation: Evaluation) -> None:
        assert self._job is not None and self._job.epochs == epochs
        with self.driver.running():
            self._following = self.driver.finished(self._job, evaluation)
