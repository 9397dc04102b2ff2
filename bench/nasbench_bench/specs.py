"""Benchmark inputs: random cells of a store, each under a random relabelling that keeps it upper triangular."""

from __future__ import annotations

import random

import numpy as np

from nasbench import canonical
from nasbench.store.reader import Store


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
    store: Store, count: int, seed: int = 0, rows: int | None = None
) -> list[tuple[np.ndarray, list[str]]]:
    """``count`` random cells among the first ``rows`` rows of the store, randomly relabelled (int8 arrays)."""
    rng = random.Random(seed)
    limit = store.cells if rows is None else min(rows, store.cells)
    picked = rng.sample(range(limit), min(count, limit))
    specs = []
    for row in picked:
        matrix, ops = canonical.decode(int(store.representatives[row]))
        specs.append(relabel(matrix, ops, rng))
    return specs
