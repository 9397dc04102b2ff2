"""Noise across repeats: how much the 3 training runs of one cell disagree, and whether they rank cells alike.

Per budget:

- the spread of a cell's final accuracy across its 3 repeats (standard deviation with ``ddof=1``, and the range
  max - min), summarized over all cells;
- that spread against the cell's mean accuracy: cells in 20 equal-count bins of mean accuracy (ordered best
  first, ties by ascending canonical key), per bin the mean accuracy and the median and mean spread;
- the Spearman rank correlation between repeats (0 vs 1, 0 vs 2, 1 vs 2), over all cells and over the top 10%
  by mean accuracy at that budget.

Usage::

    result = noise(columns)
    result.budgets[108]["repeat_spearman"]["all"]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nasbench_experiments.analysis import ranks
from nasbench_experiments.analysis.columns import Columns, check_metric

BINS = 20
REPEAT_PAIRS = ((0, 1), (0, 2), (1, 2))
TOP_FRACTION = 0.1


@dataclass(frozen=True)
class Noise:
    metric: str
    rule: str
    budgets: dict[int, dict[str, Any]]  # budget -> spread summary, bins, repeat correlations

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "metric": self.metric, "budgets": {str(b): v for b, v in self.budgets.items()}}


def rule_text(metric: str) -> str:
    return (
        f"spread = standard deviation (ddof=1) of the final {metric} accuracy over the 3 repeats; bins: "
        f"{BINS} equal-count bins of the mean over the repeats, best first (ties: ascending canonical key); "
        f"top {TOP_FRACTION:.0%} by that mean"
    )


def _budget(columns: Columns, budget: int, metric: str) -> dict[str, Any]:
    runs = np.ascontiguousarray(columns.runs(budget, metric))  # float64[cells, 3]
    mean = columns.accuracy(budget, metric)
    spread = runs.std(axis=1, ddof=1)
    width = runs.max(axis=1) - runs.min(axis=1)
    order = columns.ranking(budget, metric).order()
    bins = []
    for chunk in np.array_split(order, min(BINS, max(len(order), 1))):
        if not len(chunk):
            continue
        bins.append(
            {
                "cells": len(chunk),
                "mean_accuracy": float(mean[chunk].mean()),
                "min_accuracy": float(mean[chunk].min()),
                "max_accuracy": float(mean[chunk].max()),
                "median_std": float(np.median(spread[chunk])),
                "mean_std": float(spread[chunk].mean()),
            }
        )
    top = np.sort(order[: ranks.top_count(TOP_FRACTION, len(order))]) if len(order) else order
    ranked = [ranks.SubsetRanks(runs[:, repeat]) for repeat in range(runs.shape[1])]
    correlations = {
        subset: {f"{a}-{b}": _finite(ranks.subset_spearman(ranked[a], ranked[b], rows)) for a, b in REPEAT_PAIRS}
        for subset, rows in (("all", slice(None)), (f"top {TOP_FRACTION:.0%}", top))
    }
    return {
        "mean_std": float(spread.mean()),
        "median_std": float(np.median(spread)),
        "p90_std": float(np.quantile(spread, 0.9)),
        "mean_range": float(width.mean()),
        "max_range": float(width.max()),
        "bins": bins,
        "repeat_spearman": correlations,
    }


def _finite(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


def noise(columns: Columns, metric: str = "validation", budgets: tuple[int, ...] | None = None) -> Noise:
    """The noise analysis over ``budgets`` (all the data holds by default).

    Raises:
      ConfigurationError: a budget the data does not hold, or an unknown metric.
    """
    check_metric(metric)
    chosen = columns.epochs if budgets is None else budgets
    if not columns.cells:
        return Noise(metric, rule_text(metric), {})
    return Noise(metric, rule_text(metric), {budget: _budget(columns, budget, metric) for budget in chosen})
