"""Pareto frontier: accuracy against cost (trainable parameters, training time, FLOPs), and where the
hand-designed cells sit.

A cell is on the frontier when no other cell costs at most as much and is at least as accurate with one of the
two strictly better (cells tied on both are all kept). Accuracy is the mean over the 3 repeats of the final
accuracy at one budget (validation at 108 epochs by default); training time is the mean final training time
at that budget. FLOPs are those of the cell's network for one 32x32x3 image (twice its multiply-accumulates,
computed by ``nasbench.model``: the data holds none).

The reference cells are the two hand-designed cells the poster places near the frontier (Ying et al. 2019):

- *Inception-like*: the README's example cell (1x1, 3x3, two stacked 3x3 and a max-pool branch side by side);
- *ResNet-like*: input → conv3x3 → conv3x3 → output plus the input → output skip (in NAS-Bench-101 an
  input→output edge adds the projected input to the output: the residual connection). The poster names the
  cell without drawing it; this is the basic residual block in the space's terms.

For each, the *gap* is the frontier's accuracy at the cell's cost minus the cell's accuracy (0 on the
frontier), and the *cost ratio* is the cost the frontier needs to reach the cell's accuracy divided by the
cell's cost (1 on the frontier).

Usage::

    result = pareto(columns)
    result.frontiers["parameters"].rows        # frontier rows, ascending cost
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nasbench import canonical, model
from nasbench.lib import config
from nasbench_experiments.analysis.columns import Columns, check_metric

_I, _O = config.INPUT, config.OUTPUT
_C3, _C1, _MP = config.CONV3X3, config.CONV1X1, config.MAXPOOL3X3
REFERENCE_CELLS: dict[str, tuple[list[list[int]], list[str]]] = {
    "ResNet-like": ([[0, 1, 0, 1], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]], [_I, _C3, _C3, _O]),
    "Inception-like": (
        [
            [0, 1, 1, 1, 0, 1, 0],
            [0, 0, 0, 0, 0, 0, 1],
            [0, 0, 0, 0, 0, 0, 1],
            [0, 0, 0, 0, 1, 0, 0],
            [0, 0, 0, 0, 0, 0, 1],
            [0, 0, 0, 0, 0, 0, 1],
            [0, 0, 0, 0, 0, 0, 0],
        ],
        [_I, _C1, _C3, _C3, _C3, _MP, _O],
    ),
}
COSTS = ("parameters", "training_time", "flops")


def cost_label(name: str, budget: int) -> str:
    """The axis label of a cost."""
    return {
        "parameters": "trainable parameters",
        "training_time": f"training time at {budget} epochs (s)",
        "flops": "FLOPs per 32x32 image",
    }[name]


def frontier_rows(cost: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """Rows of the Pareto frontier (lower cost, higher accuracy), by ascending cost then ascending row.

    A row is on it when every row of strictly lower cost is strictly less accurate and no row of equal cost
    is more accurate. (One unstable sort by cost: equal costs form groups, handled as wholes, so the result
    does not depend on the order inside a group.)
    """
    cost, accuracy = np.asarray(cost, dtype=np.float64), np.asarray(accuracy, dtype=np.float64)
    if not len(cost):
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(cost)
    sorted_cost, sorted_accuracy = cost[order], accuracy[order]
    group_start = np.flatnonzero(np.r_[True, sorted_cost[1:] != sorted_cost[:-1]])
    group_best = np.maximum.reduceat(sorted_accuracy, group_start)  # best accuracy of each equal-cost group
    before = np.r_[-np.inf, np.maximum.accumulate(group_best)[:-1]]  # best accuracy of strictly cheaper groups
    group = np.repeat(np.arange(len(group_start)), np.diff(np.r_[group_start, len(cost)]))
    keep = (sorted_accuracy == group_best[group]) & (group_best[group] > before[group])
    rows = order[keep]
    front: np.ndarray = rows[np.lexsort((rows, cost[rows]))].astype(np.int64)
    return front


@dataclass(frozen=True)
class Frontier:
    """The frontier against one cost, and the reference cells' distance to it."""

    cost_name: str
    rows: np.ndarray  # int64[frontier]: rows by ascending cost
    cost: np.ndarray  # float64[frontier]
    accuracy: np.ndarray  # float64[frontier]
    references: list[dict[str, Any]]  # name, key, row, cost, accuracy, gap, cost_ratio (absent cells: row -1)
    best_cost_quantile: float  # share of cells cheaper than the most accurate cell


@dataclass(frozen=True)
class Pareto:
    budget: int
    metric: str
    rule: str
    frontiers: dict[str, Frontier]
    keys: np.ndarray  # uint64[cells]: to name frontier rows
    hashes: np.ndarray  # uint8[cells, 16]

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "budget": self.budget,
            "metric": self.metric,
            "frontiers": {
                name: {
                    "cells": [
                        {
                            "row": int(row),
                            "key": int(self.keys[row]),
                            "hash": self.hashes[row].tobytes().hex(),
                            "cost": float(c),
                            "accuracy": float(a),
                        }
                        for row, c, a in zip(frontier.rows.tolist(), frontier.cost, frontier.accuracy, strict=True)
                    ],
                    "references": frontier.references,
                    "best_cell_cost_quantile": frontier.best_cost_quantile,
                }
                for name, frontier in self.frontiers.items()
            },
        }


def rule_text(metric: str, budget: int) -> str:
    return (
        f"accuracy = mean over the 3 repeats of the final {metric} accuracy at {budget} epochs; cost = trainable "
        f"parameters, the mean final training time at {budget} epochs (seconds), or the network's FLOPs for one "
        f"32x32x3 image; a cell is on the frontier "
        f"when no other cell is at most as costly and at least as accurate, one of them strictly"
    )


def _reference(name: str, columns: Columns, cost: np.ndarray, accuracy: np.ndarray) -> dict[str, Any]:
    key = canonical.canonical_key(*REFERENCE_CELLS[name])
    row = columns.row_of_key(key)
    if row < 0:
        return {"name": name, "key": key, "hash": None, "row": -1}
    cheaper = cost <= cost[row]
    frontier_accuracy = float(accuracy[cheaper].max())
    reaching = accuracy >= accuracy[row]
    return {
        "name": name,
        "key": key,
        "hash": columns.hash_of(row),
        "row": int(row),
        "cost": float(cost[row]),
        "accuracy": float(accuracy[row]),
        "gap": frontier_accuracy - float(accuracy[row]),
        "cost_ratio": float(cost[reaching].min()) / float(cost[row]) if cost[row] > 0 else 1.0,
        "accuracy_quantile": float((accuracy < accuracy[row]).mean()),
    }


def costs_of(columns: Columns, budget: int) -> dict[str, np.ndarray]:
    """Every cost of every cell (float64), by name (``COSTS``)."""
    _, macs = model.stats_of_keys(columns.keys)
    return {
        "parameters": columns.parameters.astype(np.float64),
        "training_time": columns.training_time(budget),
        "flops": 2.0 * macs.astype(np.float64),
    }


def pareto(columns: Columns, budget: int = 108, metric: str = "validation") -> Pareto:
    """The frontiers against parameters, training time and FLOPs (see the module docstring).

    Raises:
      ConfigurationError: a budget the data does not hold, or an unknown metric.
    """
    check_metric(metric)
    accuracy = columns.accuracy(budget, metric)
    costs = costs_of(columns, budget)
    best = columns.ranking(budget, metric).order()[0] if columns.cells else -1
    frontiers = {}
    for name, cost in costs.items():
        rows = frontier_rows(cost, accuracy)
        frontiers[name] = Frontier(
            cost_name=name,
            rows=rows,
            cost=cost[rows],
            accuracy=accuracy[rows],
            references=[_reference(ref, columns, cost, accuracy) for ref in REFERENCE_CELLS] if columns.cells else [],
            best_cost_quantile=float((cost < cost[best]).mean()) if best >= 0 else float("nan"),
        )
    return Pareto(budget, metric, rule_text(metric, budget), frontiers, columns.keys, columns.hashes)
