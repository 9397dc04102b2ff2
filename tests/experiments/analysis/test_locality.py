"""Locality against brute force on the small space (cells up to 5 vertices): neighbours from
``oracles.neighbor_keys``, walks replayed one step at a time with the same random numbers, distances by
breadth-first search in plain Python."""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import pytest

from nasbench_experiments.analysis import locality
from tests import oracles


@pytest.fixture(scope="module")
def brute_graph(small_columns) -> list[list[int]]:
    row_of = {key: row for row, key in enumerate(small_columns.keys.tolist())}
    return [[row_of[k] for k in oracles.neighbor_keys(key)] for key in small_columns.keys.tolist()]


def _bfs(graph: list[list[int]], source: int, limit: int) -> dict[int, int]:
    seen = {source: 0}
    queue = deque([source])
    while queue:
        row = queue.popleft()
        if seen[row] == limit:
            continue
        for other in graph[row]:
            if other not in seen:
                seen[other] = seen[row] + 1
                queue.append(other)
    return seen


def _top(data, accuracy: np.ndarray, fraction: float) -> list[int]:
    """The top fraction chosen independently: lexsort by (-accuracy, key), the first ceil(fraction * N)."""
    return np.lexsort((data.keys, -accuracy))[: math.ceil(fraction * data.cells)].tolist()


def test_walks_and_autocorrelation_equal_a_step_by_step_replay(small_columns, brute_graph) -> None:
    result = locality.locality(small_columns, walks=50, steps=40, lags=10, seed=5, max_distance=2)
    accuracy = small_columns.accuracy(108)
    rng = np.random.default_rng(5)
    current = rng.integers(0, small_columns.cells, 50).tolist()
    draws = rng.random((40, 50))
    path = [list(current)]
    for step in range(40):
        for walk in range(50):
            choices = brute_graph[current[walk]]
            if choices:
                current[walk] = choices[int(draws[step, walk] * len(choices))]
        path.append(list(current))
    values = accuracy[np.array(path)]
    for lag in range(1, 11):
        expected = np.corrcoef(values[:-lag].ravel(), values[lag:].ravel())[0, 1]
        assert result.autocorrelation[lag - 1] == pytest.approx(expected, abs=1e-12)
    assert result.moves == sum(len(n) for n in brute_graph)


def test_distance_tables_equal_breadth_first_search(small_columns, brute_graph) -> None:
    fractions = (0.01, 0.1)
    result = locality.locality(small_columns, walks=10, steps=10, fractions=fractions, max_distance=3)
    accuracy = small_columns.accuracy(108)
    cells = small_columns.cells
    best = int(np.lexsort((small_columns.keys, -accuracy))[0])
    assert result.best_row == best
    from_best = _bfs(brute_graph, best, 3)
    for d in (1, 2, 3):
        near = {row for row, dist in from_best.items() if 1 <= dist <= d}
        assert result.near_best_uniform[d - 1] == pytest.approx(len(near) / (cells - 1))
        for i, fraction in enumerate(fractions):
            top = set(_top(small_columns, accuracy, fraction))
            tops_other = top - {best}
            assert result.near_best[i, d - 1] == pytest.approx(len(tops_other & near) / len(tops_other))
    for i, fraction in enumerate(fractions):
        top = _top(small_columns, accuracy, fraction)
        reached_by: dict[int, int] = {}  # row -> fewest moves from a top cell other than itself
        for source in top:
            for row, dist in _bfs(brute_graph, source, 3).items():
                if row != source and dist < reached_by.get(row, 99):
                    reached_by[row] = dist
        for d in (1, 2, 3):
            reached = {row for row, dist in reached_by.items() if dist <= d}
            assert result.near_top[i, d - 1] == pytest.approx(len(reached & set(top)) / len(top))
            assert result.near_top_uniform[i, d - 1] == pytest.approx(len(reached) / cells)
            assert result.near_top_precision[i, d - 1] == pytest.approx(len(reached & set(top)) / len(reached))


def test_locality_is_deterministic_by_seed(small_columns) -> None:
    one = locality.locality(small_columns, walks=30, steps=20, seed=1, max_distance=1)
    again = locality.locality(small_columns, walks=30, steps=20, seed=1, max_distance=1)
    other = locality.locality(small_columns, walks=30, steps=20, seed=2, max_distance=1)
    assert one.as_dict() == again.as_dict() and one.as_dict() != other.as_dict()


def test_bad_walk_settings(small_columns) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        locality.locality(small_columns, walks=0)
    with pytest.raises(ValueError, match="lags at most steps"):
        locality.locality(small_columns, steps=5, lags=10)
