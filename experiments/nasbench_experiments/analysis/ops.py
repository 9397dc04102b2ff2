"""Ops: what each interior operation does to accuracy and training time.

- *Swaps*: for every cell and every interior vertex, change that vertex's op to each of the two other ops (the
  result is always a cell of the space: the graph is unchanged); per pair (from, to), the mean and standard
  deviation of the change in accuracy and in training time, over every such swap whose result the data holds.
  Swaps are counted per vertex, so a cell with three conv3x3 vertices contributes three conv3x3 → maxpool
  swaps.
- *Counts*: accuracy against how many vertices of a cell carry each op (0 to 5): cells, mean, median, and the
  10th and 90th percentiles.

Usage::

    result = ops(columns)
    result.swap_mean[OPS.index("conv3x3-bn-relu"), OPS.index("maxpool3x3")]   # mean accuracy change
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nasbench import canonical, space
from nasbench.lib import config
from nasbench_experiments.analysis.columns import Columns, check_metric

OPS: tuple[str, ...] = tuple(config.AVAILABLE_OPS)
_MAX_COUNT = canonical.MAX_VERTICES - 2


@dataclass(frozen=True)
class Ops:
    budget: int
    metric: str
    rule: str
    swap_count: np.ndarray  # int64[3 from, 3 to]
    swap_mean: np.ndarray  # float64[3, 3]: mean change in accuracy (NaN on the diagonal or without swaps)
    swap_std: np.ndarray  # float64[3, 3]
    swap_time_mean: np.ndarray  # float64[3, 3]: mean change in training time (seconds)
    count_cells: np.ndarray  # int64[3 ops, 6 counts]
    count_mean: np.ndarray  # float64[3, 6]: mean accuracy of the cells with that many vertices of that op
    count_quantiles: np.ndarray  # float64[3, 6, 3]: 10th, 50th, 90th percentile

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "budget": self.budget,
            "metric": self.metric,
            "ops": list(OPS),
            "swaps": [
                {
                    "from": OPS[a],
                    "to": OPS[b],
                    "swaps": int(self.swap_count[a, b]),
                    "mean_accuracy_change": _finite(self.swap_mean[a, b]),
                    "std_accuracy_change": _finite(self.swap_std[a, b]),
                    "mean_training_time_change": _finite(self.swap_time_mean[a, b]),
                }
                for a in range(len(OPS))
                for b in range(len(OPS))
                if a != b
            ],
            "counts": [
                {
                    "op": OPS[op],
                    "count": count,
                    "cells": int(self.count_cells[op, count]),
                    "mean": _finite(self.count_mean[op, count]),
                    "p10": _finite(self.count_quantiles[op, count, 0]),
                    "median": _finite(self.count_quantiles[op, count, 1]),
                    "p90": _finite(self.count_quantiles[op, count, 2]),
                }
                for op in range(len(OPS))
                for count in range(_MAX_COUNT + 1)
            ],
        }


def _finite(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


def rule_text(metric: str, budget: int) -> str:
    return (
        f"accuracy = mean over the 3 repeats of the final {metric} accuracy at {budget} epochs; training time = "
        f"mean final training time at {budget} epochs; a swap changes one interior vertex's op (per vertex)"
    )


def ops(columns: Columns, budget: int = 108, metric: str = "validation") -> Ops:
    """The ops analysis (see the module docstring).

    Raises:
      ConfigurationError: a budget the data does not hold, or an unknown metric.
    """
    check_metric(metric)
    accuracy = columns.accuracy(budget, metric)
    time = columns.training_time(budget)
    swaps = space.op_swaps(columns.keys)
    pair = (swaps.from_label * len(OPS) + swaps.to_label).astype(np.intp)
    change = np.take(accuracy, swaps.neighbors) - np.take(accuracy, swaps.rows)
    time_change = np.take(time, swaps.neighbors) - np.take(time, swaps.rows)
    size = len(OPS) ** 2
    count = np.bincount(pair, minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(pair, weights=change, minlength=size) / count
        square = np.bincount(pair, weights=change**2, minlength=size) / count
        std = np.sqrt(np.maximum(square - mean**2, 0.0))
        time_mean = np.bincount(pair, weights=time_change, minlength=size) / count
    shape = (len(OPS), len(OPS))
    labels = canonical.label_slots(columns.keys).astype(np.int8)  # [cells, 5], -1 past the interior
    count_cells = np.zeros((len(OPS), _MAX_COUNT + 1), dtype=np.int64)
    count_mean = np.full((len(OPS), _MAX_COUNT + 1), np.nan)
    count_quantiles = np.full((len(OPS), _MAX_COUNT + 1, 3), np.nan)
    for op in range(len(OPS)):
        per_cell = (labels == op).sum(axis=1, dtype=np.int8)
        order = np.argsort(per_cell, kind="stable")  # a radix sort: cells grouped by count
        bounds = np.searchsorted(per_cell[order], np.arange(_MAX_COUNT + 2))
        for number in range(_MAX_COUNT + 1):
            chosen = accuracy[order[bounds[number] : bounds[number + 1]]]
            count_cells[op, number] = len(chosen)
            if len(chosen):
                count_mean[op, number] = chosen.mean()
                count_quantiles[op, number] = np.quantile(chosen, (0.1, 0.5, 0.9))
    return Ops(
        budget,
        metric,
        rule_text(metric, budget),
        count.reshape(shape),
        mean.reshape(shape),
        std.reshape(shape),
        time_mean.reshape(shape),
        count_cells,
        count_mean,
        count_quantiles,
    )
