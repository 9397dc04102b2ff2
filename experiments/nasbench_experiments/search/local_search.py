"""Local search over edit-distance-1 neighbours (as in White et al., 2020, "Local search is state of the art
for NAS benchmarks"): from a random valid point, evaluate every not-yet-evaluated neighbour (in random order), move
to the best one if it improves on the current point, else restart from a new random point.

Neighbours: on ``cells``, the data's cells one edit away (``NASBench.neighbors``: one edge flipped or one
interior op changed, pruned, de-duplicated); on an encoding, the one-exchange neighbourhood of the
configuration (every other value of one categorical; the adjacent integers; four Gaussian steps of a float).
Points already evaluated in this run are never evaluated again (their first result is reused).

Usage::

    optimizer = LocalSearch(problem)
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from nasbench import api
from nasbench_experiments.search.encodings import CellEncoding
from nasbench_experiments.search.problem import FINAL_EPOCHS, Evaluation, Problem
from nasbench_experiments.search.random_search import RandomSearch

_NEIGHBOURS_MEMO = 1 << 14
_MAX_DRAWS = 1000
_neighbours_memo: dict[Hashable, list[api.ModelSpec]] = {}  # by dataset (whole or a subspace's view) and cell


class LocalSearch:
    """Best-improvement hill climbing with random restarts."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.rng = problem.rng
        self._random = RandomSearch(problem)
        self._seen: dict[Hashable, float] = {}  # identity -> validation error
        self._current: tuple[Any, float] | None = None
        self._queue: list[Any] = []  # neighbours of the current point still to evaluate
        self._best_neighbour: tuple[Any, float] | None = None

    def ask(self) -> tuple[Any, int]:
        while True:
            if self._current is None:
                return self._random_point(), FINAL_EPOCHS
            while self._queue:
                point = self._queue.pop()
                known = self._seen.get(self._identity(point))
                if known is None:
                    return point, FINAL_EPOCHS
                self._consider(point, known)
            best = self._best_neighbour
            if best is not None and best[1] < self._current[1]:
                self._start(*best)  # move, and go through the new neighbourhood
            else:
                self._current = None  # a local optimum: restart

    def tell(self, point: Any, epochs: int, evaluation: Evaluation) -> None:
        self._seen[self._identity(point)] = evaluation.validation_error
        if self._current is None:
            if evaluation.valid:  # climb from valid points only (an invalid start is redrawn, at no cost)
                self._start(point, evaluation.validation_error)
        else:
            self._consider(point, evaluation.validation_error)

    def _start(self, point: Any, error: float) -> None:
        self._current = (point, error)
        self._best_neighbour = None
        self._queue = self._neighbours(point)
        self.rng.shuffle(self._queue)

    def _consider(self, point: Any, error: float) -> None:
        if self._best_neighbour is None or error < self._best_neighbour[1]:
            self._best_neighbour = (point, error)

    def _random_point(self) -> Any:
        """A random point not evaluated yet (a seen one if the space seems exhausted)."""
        for _ in range(_MAX_DRAWS):
            point, _ = self._random.ask()
            if self._identity(point) not in self._seen:
                return point
        return point

    def _identity(self, point: Any) -> Hashable:
        if isinstance(point, api.ModelSpec) and point.matrix is not None and point.ops is not None:
            return (point.matrix.tobytes(), len(point.ops), tuple(point.ops))
        return tuple(point.values())

    def _neighbours(self, point: Any) -> list[Any]:
        encoding = self.problem.encoding
        if isinstance(encoding, CellEncoding):
            key = (self.problem.nasbench, self._identity(point))
            found = _neighbours_memo.get(key)
            if found is None:
                found = self.problem.nasbench.neighbors(point)
                if len(_neighbours_memo) >= _NEIGHBOURS_MEMO:
                    _neighbours_memo.clear()
                _neighbours_memo[key] = found
            return list(found)
        neighbours = []
        for param in encoding.params:
            for value in param.neighbours(point[param.name], self.rng):
                child = dict(point)
                child[param.name] = value
                neighbours.append(child)
        return neighbours
