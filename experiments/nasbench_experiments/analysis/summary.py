"""Summary: what the dataset holds, how accuracy is distributed per budget, and its best cells.

- cells by vertex count and by edge count;
- per budget, the distribution of accuracy (mean over the 3 repeats of the final validation and test
  accuracy): quantiles and a histogram over 100 equal bins of [0, 1];
- per budget, the best cell by mean validation and by mean test accuracy, with its spec, trainable parameters
  and training time: these are the optima every regret needs (``NASBench.optima``'s rule, the same function the
  engine caches), so the regret of a study can be checked against this table;
- the range of trainable parameters and of training time.

Usage::

    result = summarize(columns)
    result.optima[108]["test_accuracy"]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nasbench import canonical
from nasbench_experiments.analysis.columns import TEST, TRAINING_TIME, VALIDATION, Columns

HISTOGRAM_BINS = np.linspace(0.0, 1.0, 101)
QUANTILES = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)


@dataclass(frozen=True)
class Summary:
    """Counts, distributions and best cells (plain values, JSON-ready)."""

    description: str
    cells: int
    epochs: tuple[int, ...]
    synthetic: bool
    by_vertices: dict[int, int]
    by_edges: dict[int, int]
    distributions: dict[int, dict[str, dict[str, Any]]]  # budget -> metric -> {mean, quantiles, histogram}
    best: list[dict[str, Any]]  # per budget and metric: the best cell (see ``cell_record``)
    optima: dict[int, dict[str, Any]]  # budget -> the optimum (validation and test accuracy, keys, hashes)
    ranges: dict[str, dict[str, float]]  # parameters, training time at the largest budget: min / median / max

    def as_dict(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "cells": self.cells,
            "epochs": list(self.epochs),
            "synthetic": self.synthetic,
            "by_vertices": {str(k): v for k, v in self.by_vertices.items()},
            "by_edges": {str(k): v for k, v in self.by_edges.items()},
            "distributions": {str(budget): metrics for budget, metrics in self.distributions.items()},
            "best": self.best,
            "optima": {str(budget): value for budget, value in self.optima.items()},
            "ranges": self.ranges,
            "rule": "accuracy = mean over the 3 repeats of the final accuracy at each budget",
        }


def cell_record(columns: Columns, row: int, budget: int) -> dict[str, Any]:
    """One cell as plain values: key, hash, spec, parameters, and its mean accuracies and time at ``budget``."""
    key = int(columns.keys[row])
    matrix, ops = canonical.decode(key)
    index = columns.budget_index(budget)
    runs = columns.metrics[row, index]  # float64[3, 8]
    return {
        "row": int(row),
        "key": key,
        "hash": columns.hash_of(row),
        "matrix": matrix.tolist(),
        "ops": ops,
        "parameters": int(columns.parameters[row]),
        "budget": budget,
        "training_time": float(runs[:, TRAINING_TIME].mean()),
        "validation_accuracy": float(runs[:, VALIDATION].mean()),
        "test_accuracy": float(runs[:, TEST].mean()),
    }


def _distribution(values: np.ndarray) -> dict[str, Any]:
    counts, _ = np.histogram(values, bins=HISTOGRAM_BINS)
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "quantiles": {f"{q:g}": float(v) for q, v in zip(QUANTILES, np.quantile(values, QUANTILES), strict=True)},
        "histogram": counts.tolist(),
    }


def summarize(columns: Columns) -> Summary:
    """The summary of ``columns`` (see the module docstring)."""
    vertices, edges = canonical.vertices_and_edges(columns.keys)
    by_vertices = dict(zip(*(v.tolist() for v in np.unique(vertices, return_counts=True)), strict=True))
    by_edges = dict(zip(*(v.tolist() for v in np.unique(edges, return_counts=True)), strict=True))
    distributions = {
        budget: {metric: _distribution(columns.accuracy(budget, metric)) for metric in ("validation", "test")}
        for budget in columns.epochs
    }
    best, found = [], {}
    for budget, optimum in columns.optima().items():
        by_validation = cell_record(columns, optimum.validation_row, budget)
        by_test = cell_record(columns, optimum.test_row, budget)
        best += [{"by": "validation", **by_validation}, {"by": "test", **by_test}]
        found[budget] = {
            "validation_accuracy": optimum.validation_accuracy,
            "validation_key": by_validation["key"],
            "validation_hash": by_validation["hash"],
            "test_accuracy": optimum.test_accuracy,
            "test_key": by_test["key"],
            "test_hash": by_test["hash"],
        }
    ranges = {}
    if columns.cells:
        ranges["parameters"] = _range(columns.parameters.astype(np.float64))
        largest = max(columns.epochs)
        ranges[f"training_time_{largest}"] = _range(columns.training_time(largest))
    return Summary(
        description=columns.describe(),
        cells=columns.cells,
        epochs=columns.epochs,
        synthetic=columns.synthetic,
        by_vertices=by_vertices,
        by_edges=by_edges,
        distributions=distributions if columns.cells else {},
        best=best,
        optima=found,
        ranges=ranges,
    )


def _range(values: np.ndarray) -> dict[str, float]:
    return {"min": float(values.min()), "median": float(np.median(values)), "max": float(values.max())}
