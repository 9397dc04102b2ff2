"""The optima every regret needs: per budget, the cell with the best mean validation accuracy and the cell with
the best mean test accuracy (means over the three repeats, final point), taken from the data itself.

Regret as the paper's benchmark code computes it (Ying et al. 2019; automl/nas_benchmarks,
``tabular_benchmarks/nas_cifar10.py``): the incumbent's mean test error at 108 epochs minus the best mean test
error of the whole space, i.e.
``best.test_accuracy - incumbent_mean_test_accuracy``; validation regret likewise with the best mean
validation accuracy. Never hard-code these numbers: they differ between the real and every synthetic dataset.

Usage::

    from nasbench._engine.engine import Engine
    best = Engine.open("store.lmdb").optima()[108]
    best.test_accuracy, best.test_row
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from nasbench._store.layout import METRIC_FIELDS

_VALIDATION = METRIC_FIELDS.index("final_validation_accuracy")
_TEST = METRIC_FIELDS.index("final_test_accuracy")


class Optimum(NamedTuple):
    """The best cells of one budget (rows of the store; ties go to the first row, i.e. file order)."""

    epochs: int
    validation_accuracy: float  # best mean (over repeats) final validation accuracy
    validation_row: int
    test_accuracy: float  # best mean (over repeats) final test accuracy
    test_row: int


class DatasetOptimum(NamedTuple):
    """The best cells of one budget as the public API names them (original hashes instead of store rows)."""

    epochs: int
    validation_accuracy: float  # best mean (over repeats) final validation accuracy
    validation_hash: str  # its cell's original hash (32 hex characters)
    test_accuracy: float  # best mean (over repeats) final test accuracy
    test_hash: str


def optima(metrics: np.ndarray, epochs: Sequence[int]) -> dict[int, Optimum]:
    """Per budget, the best mean validation and mean test accuracy and their rows.

    Args:
      metrics: float64[cells, len(epochs), repeats, 8], the store's metrics column (or any subset of rows).
      epochs: the budgets of the epochs axis.

    Returns:
      ``{epochs: Optimum}``; empty when there are no cells.
    """
    if len(metrics) == 0:
        return {}
    found = {}
    for index, budget in enumerate(epochs):
        validation = metrics[:, index, :, _VALIDATION].mean(axis=1)  # float64[cells]
        test = metrics[:, index, :, _TEST].mean(axis=1)
        best_validation, best_test = int(np.argmax(validation)), int(np.argmax(test))
        found[budget] = Optimum(
            budget, float(validation[best_validation]), best_validation, float(test[best_test]), best_test
        )
    return found
