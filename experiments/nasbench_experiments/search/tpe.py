"""TPE, as the paper ran it and as optuna runs it, ask/tell, seeded from the run's generator.

- ``tpe``: hyperopt's ``tpe.suggest`` with its defaults (20 random start-up trials, 24 candidates, gamma 0.25), as
  the paper's benchmark script ran it (automl/nas_benchmarks, ``experiment_scripts/run_tpe.py``: ``fmin`` with
  ``algo=tpe.suggest``). ``fmin``'s loop is driven by hand: new trial ids, ``tpe.suggest`` with a seed drawn per
  proposal (``fmin`` draws it from its own generator the same way), the trial inserted, its result set when told.
- ``tpe-optuna``: optuna's ``TPESampler`` with its defaults.

Categorical hyperparameters map to ``hp.choice`` (optuna: categorical distributions), ``num_edges`` to an integer
one, C's weights to floats; ``cells`` uses A's parameterization.

Usage::

    optimizer = TPE(problem)
"""

from __future__ import annotations

import logging
from typing import Any

from nasbench_experiments.search.encodings import vector_encoding
from nasbench_experiments.search.problem import FINAL_EPOCHS, Evaluation, Problem


class TPE:
    """hyperopt's TPE over the encoding's hyperparameters."""

    def __init__(self, problem: Problem, **suggest_settings: Any) -> None:
        import hyperopt
        from hyperopt import hp

        logging.getLogger("hyperopt").setLevel(logging.WARNING)
        self._hyperopt = hyperopt
        self.space: dict[str, Any] = {}
        for param in vector_encoding(problem.encoding_name).params:
            if param.choices is not None:
                self.space[param.name] = hp.choice(param.name, list(param.choices))
            elif param.integer:
                self.space[param.name] = hp.uniformint(param.name, int(param.lower), int(param.upper))
            else:
                self.space[param.name] = hp.uniform(param.name, param.lower, param.upper)
        self.domain = hyperopt.Domain(_never_called, self.space)
        self.trials = hyperopt.Trials()
        self._rng = problem.rng
        self._settings = suggest_settings
        self._trial: dict[str, Any] | None = None

    def ask(self) -> tuple[Any, int]:
        ids = self.trials.new_trial_ids(1)
        self.trials.refresh()
        seed = int(self._rng.integers(2**31 - 1))
        (trial,) = self._hyperopt.tpe.suggest(ids, self.domain, self.trials, seed, **self._settings)
        self.trials.insert_trial_docs([trial])
        self.trials.refresh()
        self._trial = self.trials._dynamic_trials[-1]  # the stored copy, on which fmin's own loop sets results
        spec = self._hyperopt.base.spec_from_misc(self._trial["misc"])
        return dict(self._hyperopt.space_eval(self.space, spec)), FINAL_EPOCHS

    def tell(self, point: Any, epochs: int, evaluation: Evaluation) -> None:
        trial, self._trial = self._trial, None
        assert trial is not None, "tell without ask"
        trial["state"] = self._hyperopt.JOB_STATE_DONE
        trial["result"] = {"loss": evaluation.validation_error, "status": self._hyperopt.STATUS_OK}
        self.trials.refresh()


class OptunaTPE:
    """optuna's TPE sampler over the encoding's hyperparameters."""

    def __init__(self, problem: Problem, **sampler_settings: Any) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.encoding = vector_encoding(problem.encoding_name)
        self.distributions: dict[str, Any] = {}
        for param in self.encoding.params:
            if param.choices is not None:
                self.distributions[param.name] = optuna.distributions.CategoricalDistribution(param.choices)
            elif param.integer:
                self.distributions[param.name] = optuna.distributions.IntDistribution(
                    int(param.lower), int(param.upper)
                )
            else:
                self.distributions[param.name] = optuna.distributions.FloatDistribution(param.lower, param.upper)
        sampler = optuna.samplers.TPESampler(seed=int(problem.rng.integers(2**31)), **sampler_settings)
        self.study = optuna.create_study(sampler=sampler, direction="minimize")
        self._trial: Any = None

    def ask(self) -> tuple[Any, int]:
        self._trial = self.study.ask(self.distributions)
        return dict(self._trial.params), FINAL_EPOCHS

    def tell(self, point: Any, epochs: int, evaluation: Evaluation) -> None:
        self.study.tell(self._trial, evaluation.validation_error)


def _never_called(config: dict[str, Any]) -> float:
    raise RuntimeError("hyperopt is driven by ask/tell here; the objective is never called")
