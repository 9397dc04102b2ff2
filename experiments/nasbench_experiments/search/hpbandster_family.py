"""BOHB and Hyperband as the paper ran them: hpbandster's own models and successive-halving iterations
(``hpbandster`` 0.7.4, Falkner et al., 2018), driven by ask/tell in the run's process.

The paper's benchmark (automl/nas_benchmarks, ``experiment_scripts/run_bohb.py`` and ``run_hyperband.py``) runs
hpbandster's ``BOHB`` and ``HyperBand`` masters with one worker over a Pyro4 name server. A master starts a
dispatcher thread that waits for workers over the network; here nothing of that runs. The same pieces the master
combines are driven directly instead: its configuration generator (``BOHB``'s kernel density model, or
``RandomSampling`` for Hyperband) and its ``SuccessiveHalving`` iterations, each asked for its next run and told
its result exactly as the master's job callback tells them (``register_result``, then the generator's
``new_result``). With one worker the master's schedule is this one: the first active iteration's next run, a new
iteration when none has one. No name server, no thread, no socket.

- ``bohb``: BOHB's kernel density estimator with the paper's benchmark settings: the best 15 % as good, 64
  candidates per proposal, bandwidths at least 0.3 and widened 3 times, 33 % of the configurations at random.
- ``hb``: Hyperband, the same brackets with configurations drawn at random.

Both race configurations over the budgets 4, 12, 36 and 108 epochs with eta 3, bracket ``i`` of Hyperband
(Li et al., 2018) holding ``floor(4 / (s + 1)) * 3**s`` configurations at its first budget, ``s = 3 - i % 4``.

Randomness: the configuration space is seeded from the run's generator, and hpbandster's draws from numpy's
global generator (and scipy's beneath it) run on a global state of the run's own (``global_random``). hpbandster
uses ConfigSpace calls that ConfigSpace 1.x deprecates, and its density model divides by zero where a
hyperparameter takes one value only (it handles the result): those warnings are silenced around its calls.

Usage::

    optimizer = HpBandSterOptimizer(problem, kind="bohb")
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from hpbandster.core.dispatcher import Job
from hpbandster.optimizers.config_generators.bohb import BOHB
from hpbandster.optimizers.config_generators.random_sampling import RandomSampling
from hpbandster.optimizers.iterations import SuccessiveHalving

from nasbench_experiments.search.encodings import vector_encoding
from nasbench_experiments.search.global_random import GlobalRandomState
from nasbench_experiments.search.problem import MULTI_FIDELITY_BUDGETS, Evaluation, Problem, require_budgets

KINDS = ("bohb", "hb")


def brackets(eta: int = 3, budgets: tuple[int, ...] = MULTI_FIDELITY_BUDGETS) -> list[tuple[list[int], list[int]]]:
    """Hyperband's brackets in the order they run (then again): per bracket, the number of configurations at
    each stage and the stage's budget."""
    stages = len(budgets)
    result = []
    for s in range(stages - 1, -1, -1):
        first = (stages // (s + 1)) * eta**s
        result.append(([max(first // eta**k, 1) for k in range(s + 1)], list(budgets[stages - 1 - s :])))
    return result


class HpBandSterOptimizer:
    """hpbandster's BOHB (``kind="bohb"``) or Hyperband (``kind="hb"``) over the encoding's ConfigSpace."""

    def __init__(
        self,
        problem: Problem,
        kind: str = "bohb",
        eta: int = 3,
        top_n_percent: int = 15,
        num_samples: int = 64,
        random_fraction: float = 0.33,
        bandwidth_factor: float = 3,
        min_bandwidth: float = 0.3,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        require_budgets(problem, kind)
        logging.getLogger("hpbandster").setLevel(logging.ERROR)
        seed = int(problem.rng.integers(2**31))
        self._random = GlobalRandomState(seed)
        space = vector_encoding(problem.encoding_name).configspace(seed=seed)
        with self._calling():
            if kind == "bohb":
                self.generator: Any = BOHB(
                    configspace=space,
                    top_n_percent=top_n_percent,
                    num_samples=num_samples,
                    random_fraction=random_fraction,
                    bandwidth_factor=bandwidth_factor,
                    min_bandwidth=min_bandwidth,
                )
            else:
                self.generator = RandomSampling(space)
        self._brackets = brackets(eta)
        self._iterations: list[Any] = []
        self._job: Any = None

    def ask(self) -> tuple[Any, int]:
        if self._job is not None:
            raise RuntimeError("ask before the last proposal was told")
        with self._calling():
            while (run := self._next_run()) is None:
                stages, budgets = self._brackets[len(self._iterations) % len(self._brackets)]
                self._iterations.append(
                    SuccessiveHalving(
                        HPB_iter=len(self._iterations),
                        num_configs=stages,
                        budgets=[float(budget) for budget in budgets],
                        config_sampler=self.generator.get_config,
                    )
                )
        config_id, config, budget = run
        self._job = Job(config_id, config=config, budget=budget)
        return dict(config), int(budget)

    def tell(self, point: Any, epochs: int, evaluation: Evaluation) -> None:
        job, self._job = self._job, None
        job.result = {"loss": evaluation.validation_error, "info": {"cost": evaluation.cost}}
        with self._calling():
            self._iterations[job.id[0]].register_result(job)
            self.generator.new_result(job)

    def _next_run(self) -> tuple[Any, dict[str, Any], float] | None:
        """The first active iteration's next run (the master's order); None when every iteration is finished (an
        iteration learns that it is when asked once more after its last result)."""
        for iteration in self._iterations:
            if iteration.is_finished:
                continue
            run = iteration.get_next_run()
            if run is not None:
                return tuple(run)
            if not iteration.is_finished:  # waits for a result: impossible, ask refuses to run ahead of tell
                raise RuntimeError("an hpbandster iteration waits for a result it was never told")
        return None

    @contextmanager
    def _calling(self) -> Iterator[None]:
        """Calls into hpbandster: the run's numpy global state, its known warnings silenced (module docstring)."""
        with self._random.active(), warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            yield
