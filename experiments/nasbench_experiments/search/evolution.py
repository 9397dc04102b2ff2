"""Regularized (aging) evolution (Real et al., 2019), as the paper's benchmark script runs it: a population of
100 filled with random points, then cycles of a tournament (10 members drawn with replacement; the best
validation error is the parent), one mutation, and the oldest member leaving.

Mutation: on an encoding, one hyperparameter changes to another of its values; on ``cells``, one edit of the
parent cell (one edge flipped or one interior op changed), redrawn until the child is a valid cell other than
the parent (``NASBench.is_valid``).

Usage::

    optimizer = RegularizedEvolution(problem, population_size=100, tournament_size=10)
"""

from __future__ import annotations

import collections
import functools
from typing import Any

import numpy as np

from nasbench import api
from nasbench_experiments.search.encodings import OPS, CellEncoding, Encoding
from nasbench_experiments.search.problem import FINAL_EPOCHS, Evaluation, Problem
from nasbench_experiments.search.random_search import RandomSearch
from nasbench_experiments.search.subspaces import Dataset

DEFAULT_POPULATION = 100
DEFAULT_TOURNAMENT = 10
_MAX_MUTATION_TRIES = 1000


class RegularizedEvolution:
    """Aging evolution over an encoding or over cells."""

    def __init__(
        self, problem: Problem, population_size: int = DEFAULT_POPULATION, tournament_size: int = DEFAULT_TOURNAMENT
    ) -> None:
        self.problem = problem
        self.rng = problem.rng
        self.population_size = population_size
        self.tournament_size = tournament_size
        self.population: collections.deque[tuple[Any, float]] = collections.deque()
        self._initial = RandomSearch(problem)
        self._told = 0

    def ask(self) -> tuple[Any, int]:
        if self._told < self.population_size:
            return self._initial.ask()
        members = self.rng.integers(len(self.population), size=self.tournament_size).tolist()
        parent = min((self.population[i] for i in members), key=lambda member: member[1])[0]
        return self.mutate(parent), FINAL_EPOCHS

    def tell(self, point: Any, epochs: int, evaluation: Evaluation) -> None:
        self.population.append((point, evaluation.validation_error))
        if self._told >= self.population_size:
            self.population.popleft()
        self._told += 1

    def mutate(self, parent: Any) -> Any:
        encoding = self.problem.encoding
        if isinstance(encoding, CellEncoding):
            return mutate_cell(parent, self.rng, self.problem.nasbench)
        return mutate_config(parent, encoding, self.rng)


def mutate_config(parent: dict[str, Any], encoding: Encoding, rng: np.random.Generator) -> dict[str, Any]:
    """One hyperparameter, chosen uniformly, changed to another of its values (uniformly)."""
    param = encoding.params[int(rng.integers(len(encoding.params)))]
    child = dict(parent)
    child[param.name] = param.other(parent[param.name], rng)
    return child


@functools.lru_cache(maxsize=16)
def _upper(size: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(size, k=1)


def mutate_cell(parent: api.ModelSpec, rng: np.random.Generator, nasbench: Dataset) -> api.ModelSpec:
    """One edit of the cell, chosen uniformly among its edge flips and op changes, until valid and different (on a
    subspace: until in the subspace, ``SubspaceView.is_valid``)."""
    matrix, ops = parent.matrix, parent.ops
    if matrix is None or ops is None:
        raise ValueError("cannot mutate an invalid spec (the input is not connected to the output)")
    size = len(ops)
    edges = size * (size - 1) // 2
    changes = (size - 2) * (len(OPS) - 1)
    rows, cols = _upper(size)
    for _ in range(_MAX_MUTATION_TRIES):
        move = int(rng.integers(edges + changes))
        child_matrix, child_ops = matrix.copy(), list(ops)
        if move < edges:
            child_matrix[rows[move], cols[move]] ^= 1
        else:
            vertex, step = divmod(move - edges, len(OPS) - 1)
            others = [op for op in OPS if op != ops[vertex + 1]]
            child_ops[vertex + 1] = others[step]
        child = api.ModelSpec(child_matrix, child_ops)
        if nasbench.is_valid(child) and not (
            child.matrix is not None
            and child.matrix.shape == matrix.shape
            and np.array_equal(child.matrix, matrix)
            and child.ops == ops
        ):
            return child
    return parent  # a cell with no valid edit (cannot happen in NAS-Bench-101's space); re-evaluate it
