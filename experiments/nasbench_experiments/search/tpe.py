"""TPE through optuna's ``TPESampler`` (ask/tell), seeded from the run's generator; its default settings (the
paper's script ran hyperopt's TPE with its defaults). Categorical hyperparameters map to optuna's categorical
distributions, ``num_edges`` to an integer one, C's weights to floats; ``cells`` uses A's parameterization.

Usage::

    optimizer = TPE(problem)
"""

from __future__ import annotations

from typing import Any

from nasbench_experiments.search.encodings import vector_encoding
from nasbench_experiments.search.problem import FINAL_EPOCHS, Evaluation, Problem


class TPE:
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
