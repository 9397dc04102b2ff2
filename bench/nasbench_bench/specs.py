"""Benchmark inputs: a dataset's columns, and random cells of it, each under a random relabelling that keeps it
upper triangular."""

from __future__ import annotations

import os
import random

import numpy as np

from nasbench import api, canonical
from nasbench.types import DatasetColumns


def load_columns(location: str | os.PathLike[str]) -> DatasetColumns:
    """The whole dataset of a store or server (``NASBench.columns``), leaving Python's global ``random`` as it was."""
    state = random.getstate()
    nasbench = api.NASBench(location)
    random.setstate(state)
    try:
        return nasbench.columns()
    finally:
        nasbench.close()


def relabel(matrix: np.ndarray, ops: list[str], rng: random.Random) -> tuple[np.ndarray, list[str]]:
    """A random topological order of the cell's vertices (input first, output last), applied."""
    size = len(matrix)
    indegree = matrix.sum(axis=0).tolist()
    ready, order = [0], []
    while ready:
        choices = [v for v in ready if v != size - 1] or ready
        vertex = rng.choice(choices)
        ready.remove(vertex)
        order.append(vertex)
        for successor in np.flatnonzero(matrix[vertex]).tolist():
            indegree[successor] -= 1
            if indegree[successor] == 0:
                ready.append(successor)
    return matrix[np.ix_(order, order)].copy(), [ops[v] for v in order]


def random_specs(
    data: DatasetColumns, count: int, seed: int = 0, rows: int | None = None
) -> list[tuple[np.ndarray, list[str]]]:
    """``count`` random cells among the first ``rows`` rows of the columns, randomly relabelled (int8 arrays)."""
    rng = random.Random(seed)
    limit = data.cells if rows is None else min(rows, data.cells)
    picked = rng.sample(range(limit), min(count, limit))
    specs = []
    for row in picked:
        matrix, ops = canonical.decode(int(data.representatives[row]))
        specs.append(relabel(matrix, ops, rng))
    return specs
