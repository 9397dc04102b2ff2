"""Budget correlation: how well a short training budget ranks cells the way a longer one does (the poster's table).

For each pair of budgets (small, large) and each subset (the top 1%, 10%, 25%, 50% of cells, and all), the
Spearman rank correlation between the cells' accuracy at the small and at the large budget. Accuracy is the
mean over the 3 repeats of the final accuracy (validation by default); the top X% are ranked by that accuracy
at the *larger* budget of the pair (the natural reading of the poster, which does not say), the ``ceil(X * N)``
best, ties by ascending canonical key.

Usage::

    result = budget_correlation(columns)
    result.spearman[result.pairs.index((4, 108)), result.fractions.index(0.01)]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nasbench_experiments.analysis import ranks
from nasbench_experiments.analysis.columns import Columns, check_metric

DEFAULT_PAIRS: tuple[tuple[int, int], ...] = ((4, 12), (4, 36), (4, 108), (12, 36), (12, 108), (36, 108))
DEFAULT_FRACTIONS: tuple[float, ...] = (0.01, 0.1, 0.25, 0.5, 1.0)
# The poster's table (Ying et al., 2019, the NAS-Bench-101 poster), rows DEFAULT_PAIRS, columns
# DEFAULT_FRACTIONS: the real NAS-Bench-101 values every output is compared with.
POSTER = np.array(
    [
        [0.172, 0.170, 0.336, 0.676, 0.875],
        [0.073, 0.128, 0.203, 0.396, 0.734],
        [0.041, 0.078, 0.226, 0.358, 0.514],
        [0.176, 0.344, 0.492, 0.641, 0.863],
        [0.090, 0.191, 0.383, 0.517, 0.665],
        [0.226, 0.495, 0.737, 0.853, 0.962],
    ]
)


@dataclass(frozen=True)
class BudgetCorrelation:
    """Spearman correlations per budget pair (rows) and subset (columns)."""

    pairs: tuple[tuple[int, int], ...]
    fractions: tuple[float, ...]
    spearman: np.ndarray  # float64[pairs, fractions]
    cells: np.ndarray  # int64[pairs, fractions]: how many cells each subset holds
    metric: str
    rule: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "metric": self.metric,
            "fractions": list(self.fractions),
            "rows": [
                {
                    "budgets": list(pair),
                    "spearman": [_finite(value) for value in self.spearman[i]],
                    "cells": self.cells[i].tolist(),
                }
                for i, pair in enumerate(self.pairs)
            ],
        }


def _finite(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


def rule_text(metric: str) -> str:
    return (
        f"accuracy = mean over the 3 repeats of the final {metric} accuracy at each budget; the top X% of a row "
        f"are the ceil(X*N) cells with the highest accuracy at the row's larger budget (ties: ascending canonical "
        f"key); Spearman with average ranks for ties (as scipy.stats.spearmanr)"
    )


def budget_correlation(
    columns: Columns,
    pairs: Sequence[tuple[int, int]] = DEFAULT_PAIRS,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    metric: str = "validation",
) -> BudgetCorrelation:
    """The budget-correlation table (see the module docstring).

    Raises:
      ConfigurationError: a budget the data does not hold, or an unknown metric.
    """
    check_metric(metric)
    budgets = sorted({budget for pair in pairs for budget in pair})
    ranked = {budget: columns.ranking(budget, metric) for budget in budgets}
    spearman = np.full((len(pairs), len(fractions)), np.nan)
    cells = np.zeros((len(pairs), len(fractions)), dtype=np.int64)
    for i, (small, large) in enumerate(pairs):
        low, high = sorted((small, large))
        for j, fraction in enumerate(fractions):
            chosen: slice | np.ndarray
            if fraction >= 1.0:
                chosen = slice(None)
                cells[i, j] = columns.cells
            else:
                chosen = np.sort(ranked[high].order()[: ranks.top_count(fraction, columns.cells)])
                cells[i, j] = len(chosen)
            spearman[i, j] = ranks.subset_spearman(ranked[low], ranked[high], chosen)
    return BudgetCorrelation(
        tuple((int(a), int(b)) for a, b in pairs),
        tuple(float(f) for f in fractions),
        spearman,
        cells,
        metric,
        rule_text(metric),
    )
