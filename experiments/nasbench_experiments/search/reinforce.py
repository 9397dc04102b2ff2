"""REINFORCE (the paper's RL baseline, after Chris Ying's code in the benchmark scripts): one independent
categorical distribution per hyperparameter (logits start at zero), a reward of 1 - validation error, an
exponential-moving-average baseline (momentum 0.9, bias-corrected), and a gradient step of learning rate 0.1 on
``advantage * log p(sample)`` after every valid evaluation. Invalid samples (error 1, cost 0) are redrawn
without an update, as the original loops until the reward exceeds 0.001.

Only categorical hyperparameters can be learned this way (the original ran it on NASCifar10A and B): encoding C
(floats) is refused; ``cells`` uses A's parameterization.

Usage::

    optimizer = Reinforce(problem, learning_rate=0.1, momentum=0.9)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nasbench.errors import ConfigurationError
from nasbench_experiments.search.encodings import vector_encoding
from nasbench_experiments.search.problem import FINAL_EPOCHS, Evaluation, Problem

DEFAULT_LEARNING_RATE = 0.1
DEFAULT_MOMENTUM = 0.9
_MIN_REWARD = 0.001


class Reinforce:
    """Policy gradient over independent categorical distributions."""

    def __init__(
        self, problem: Problem, learning_rate: float = DEFAULT_LEARNING_RATE, momentum: float = DEFAULT_MOMENTUM
    ) -> None:
        self.encoding = vector_encoding(problem.encoding_name)
        if not all(param.categorical for param in self.encoding.params):
            raise ConfigurationError(
                f"rl learns categorical hyperparameters only: use encoding A, B or cells, not {problem.encoding_name}"
            )
        self.problem = problem
        self.rng = problem.rng
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.logits = [np.zeros(len(param.choices or ())) for param in self.encoding.params]
        self._numerator = 0.0
        self._denominator = 0.0
        self._last: list[int] = []

    def probabilities(self) -> list[np.ndarray]:
        out = []
        for logits in self.logits:
            weights = np.exp(logits - logits.max())
            out.append(weights / weights.sum())
        return out

    def ask(self) -> tuple[Any, int]:
        probabilities = self.probabilities()
        uniforms = self.rng.random(len(probabilities))
        self._last = [
            min(int(np.searchsorted(np.cumsum(p), u, side="right")), len(p) - 1)
            for p, u in zip(probabilities, uniforms, strict=True)
        ]
        config = {
            param.name: (param.choices or ())[index]
            for param, index in zip(self.encoding.params, self._last, strict=True)
        }
        return config, FINAL_EPOCHS

    def tell(self, point: Any, epochs: int, evaluation: Evaluation) -> None:
        reward = 1.0 - evaluation.validation_error
        if not evaluation.valid or reward <= _MIN_REWARD:
            return
        self._numerator = self.momentum * self._numerator + (1 - self.momentum) * reward
        self._denominator = self.momentum * self._denominator + (1 - self.momentum)
        advantage = reward - self._numerator / self._denominator
        for logits, probabilities, index in zip(self.logits, self.probabilities(), self._last, strict=True):
            gradient = -probabilities
            gradient[index] += 1.0
            logits += self.learning_rate * advantage * gradient
