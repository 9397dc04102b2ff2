"""Locality: do cells one edit apart have similar accuracy, and do the top cells sit close together?

Moves are the edits of ``nasbench.space.neighbor_keys`` (one edge flipped or one interior op changed, then
pruned; see ``nasbench.space``), between cells the data holds. Distances follow moves (a directed graph: removing an
edge may prune vertices, which one move cannot add back).

- *Random-walk autocorrelation*: ``walks`` walks of ``steps`` moves from uniformly drawn cells, each move to a
  uniformly drawn neighbour (a cell without neighbours stays put); for each lag k, the Pearson correlation of
  accuracy between the cells k moves apart, pooled over every walk and position (as in the paper, after
  Weinberger's random-walk autocorrelation). Random pairs of cells would give 0.
- *Near the global best*: for the top X% of cells, the fraction within edit distance d of the most accurate
  cell, against the fraction of all cells within d of it (what a uniform draw would hit).
- *Near any top cell*: the fraction of top-X% cells that another top-X% cell reaches within d moves, against
  the fraction of all cells some top-X% cell (other than itself) reaches within d; and, among all the cells
  within d of a top cell, the share that are top cells themselves (against X for a uniform draw).

Usage::

    result = locality(columns)
    result.autocorrelation[0]     # lag 1
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nasbench import space
from nasbench_experiments.analysis import ranks
from nasbench_experiments.analysis.columns import Columns, check_metric

DEFAULT_WALKS = 1000
DEFAULT_STEPS = 200
DEFAULT_LAGS = 10
DEFAULT_FRACTIONS = (0.01, 0.1)
DEFAULT_MAX_DISTANCE = 4
_UNREACHED = 1 << 30  # int32 keys: distance * (cells + 1) + source, far below 2**31


@dataclass(frozen=True)
class Locality:
    budget: int
    metric: str
    rule: str
    walks: int
    steps: int
    seed: int
    lags: np.ndarray  # int64[lags]: 1..L
    autocorrelation: np.ndarray  # float64[lags]
    moves: int  # edges of the neighbour graph
    best_row: int
    best_key: int
    fractions: tuple[float, ...]
    distances: np.ndarray  # int64[D]: 1..max_distance
    near_best: np.ndarray  # float64[fractions, D]: share of top-X% cells within d of the best cell
    near_best_uniform: np.ndarray  # float64[D]: share of all cells within d of the best cell
    near_top: np.ndarray  # float64[fractions, D]: share of top-X% cells another top cell reaches within d
    near_top_uniform: np.ndarray  # float64[fractions, D]: share of all cells a top cell (not itself) reaches
    near_top_precision: np.ndarray  # float64[fractions, D]: share of top cells among the cells reached

    def as_dict(self) -> dict[str, Any]:
        def rows(table: np.ndarray) -> list[list[float | None]]:
            return [[None if not np.isfinite(v) else float(v) for v in row] for row in table]

        return {
            "rule": self.rule,
            "budget": self.budget,
            "metric": self.metric,
            "walks": self.walks,
            "steps": self.steps,
            "seed": self.seed,
            "lags": self.lags.tolist(),
            "autocorrelation": rows(self.autocorrelation[None, :])[0],
            "moves": self.moves,
            "best": {"row": self.best_row, "key": self.best_key},
            "fractions": list(self.fractions),
            "distances": self.distances.tolist(),
            "near_best": rows(self.near_best),
            "near_best_uniform": rows(self.near_best_uniform[None, :])[0],
            "near_top": rows(self.near_top),
            "near_top_uniform": rows(self.near_top_uniform),
            "near_top_precision": rows(self.near_top_precision),
        }


def rule_text(metric: str, budget: int) -> str:
    return (
        f"accuracy = mean over the 3 repeats of the final {metric} accuracy at {budget} epochs; top X% = the "
        f"ceil(X*N) most accurate cells (ties: ascending canonical key); a move = one edge flip or one interior op "
        f"change, pruned, between cells of the data; distance = fewest moves"
    )


def random_walks(graph: space.NeighborGraph, walks: int, steps: int, rng: np.random.Generator) -> np.ndarray:
    """int64[steps + 1, walks]: the rows visited. Starts are ``rng.integers(0, cells, walks)``; step t moves to
    neighbour ``floor(u * degree)`` of the current row's ascending neighbour list, u = ``rng.random((steps,
    walks))[t]``; a row without neighbours stays."""
    degree = graph.degree()
    current = rng.integers(0, graph.cells, walks)
    draws = rng.random((steps, walks))
    path = np.empty((steps + 1, walks), dtype=np.int64)
    path[0] = current
    for step in range(steps):
        count = degree[current]
        pick = np.minimum((draws[step] * count).astype(np.int64), np.maximum(count - 1, 0))
        moved = graph.indices[np.minimum(graph.indptr[current] + pick, max(len(graph.indices) - 1, 0))]
        current = np.where(count > 0, moved, current)
        path[step + 1] = current
    return path


def autocorrelation(values: np.ndarray, lags: Sequence[int] | np.ndarray) -> np.ndarray:
    """float64[lags]: Pearson correlation of ``values[t]`` and ``values[t + k]`` over every walk and position
    (``values``: [steps + 1, walks])."""
    return np.array([ranks.pearson(values[:-lag].ravel(), values[lag:].ravel()) for lag in lags])


def _gather(graph: space.NeighborGraph, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner, neighbour) for every move out of ``rows``."""
    starts, counts = graph.indptr[rows], graph.degree()[rows]
    owner = np.repeat(np.arange(len(rows)), counts)
    offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return owner, graph.indices[np.repeat(starts, counts) + offsets].astype(np.int64)


def distances_from(graph: space.NeighborGraph, source: int, max_distance: int) -> np.ndarray:
    """int64[cells]: fewest moves from ``source`` (0 for itself), -1 beyond ``max_distance``."""
    distance = np.full(graph.cells, -1, dtype=np.int64)
    distance[source] = 0
    frontier = np.array([source], dtype=np.int64)
    for level in range(1, max_distance + 1):
        _, reached = _gather(graph, frontier)
        reached = np.unique(reached)
        frontier = reached[distance[reached] < 0]
        distance[frontier] = level
        if not len(frontier):
            break
    return distance


def reverse(graph: space.NeighborGraph) -> space.NeighborGraph:
    """The graph with every move turned around: row v lists the rows that reach v in one move."""
    sources = np.repeat(np.arange(graph.cells, dtype=np.int32), graph.degree())
    order = np.argsort(graph.indices, kind="stable")
    counts = np.bincount(graph.indices, minlength=graph.cells)
    indptr = np.zeros(graph.cells + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return space.NeighborGraph(indptr, sources[order])


def nearest_other_source(reversed_graph: space.NeighborGraph, sources: np.ndarray, max_distance: int) -> np.ndarray:
    """int64[cells]: fewest moves from a source row other than the row itself (-1 beyond ``max_distance``).

    Multi-source relaxation keeping, per row, the nearest source and the nearest *other* source (two sources
    suffice: a path from a third passes a row that already knows two nearer distinct ones). A row's state is
    one int32 per slot, ``distance * (cells + 1) + source`` (the minimum is the nearest, ties by lowest source).
    """
    cells = reversed_graph.cells
    scale = cells + 1
    if (max_distance + 2) * scale >= _UNREACHED:
        raise ValueError(f"max_distance {max_distance} is too large for {cells} cells")
    first = np.full(cells, _UNREACHED, dtype=np.int32)
    second = np.full(cells, _UNREACHED, dtype=np.int32)
    source_rows = np.flatnonzero(sources)
    first[source_rows] = source_rows  # distance 0, itself
    degree = reversed_graph.degree()
    has_in = degree > 0
    starts = reversed_graph.indptr[:-1][has_in]
    target = np.repeat(np.arange(cells, dtype=np.int32), degree)
    origin = reversed_graph.indices
    for _ in range(max_distance):
        step_first = np.minimum(first[origin] + scale, _UNREACHED)
        new_first = first.copy()
        if len(starts):
            new_first[has_in] = np.minimum(first[has_in], np.minimum.reduceat(step_first, starts))
        label = np.where(new_first >= _UNREACHED, -1, new_first % scale)
        label_of_move = label[target]
        step_first[step_first % scale == label_of_move] = _UNREACHED
        step_second = np.minimum(second[origin] + scale, _UNREACHED)
        step_second[step_second % scale == label_of_move] = _UNREACHED
        np.minimum(step_first, step_second, out=step_first)
        del step_second, label_of_move
        own = np.minimum(
            np.where(first % scale == label, _UNREACHED, first), np.where(second % scale == label, _UNREACHED, second)
        )
        if len(starts):
            own[has_in] = np.minimum(own[has_in], np.minimum.reduceat(step_first, starts))
        first, second = new_first, own
    chosen = np.where(sources, second, first).astype(np.int64)  # a source's nearest is itself: take the other
    return np.where(chosen >= _UNREACHED, -1, chosen // scale)


def locality(
    columns: Columns,
    budget: int = 108,
    metric: str = "validation",
    *,
    walks: int = DEFAULT_WALKS,
    steps: int = DEFAULT_STEPS,
    lags: int = DEFAULT_LAGS,
    seed: int = 0,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    max_distance: int = DEFAULT_MAX_DISTANCE,
    graph: space.NeighborGraph | None = None,
    progress: Callable[[str], None] | None = None,
) -> Locality:
    """The locality analysis (see the module docstring).

    Args:
      columns: the data.
      budget, metric: which accuracy (mean over the 3 repeats).
      walks, steps, lags, seed: the random walks (deterministic by ``seed``).
      fractions: the top fractions of the distance tables.
      max_distance: the largest edit distance of the tables.
      graph: the neighbour graph of ``columns.keys``, when already built.
      progress: called with the name of each stage as it starts.

    Raises:
      ConfigurationError: a budget the data does not hold, or an unknown metric.
      ValueError: walks, steps, lags or max_distance below 1.
    """
    check_metric(metric)
    accuracy = columns.accuracy(budget, metric)
    if min(walks, steps, lags, max_distance) < 1 or lags > steps:
        raise ValueError("walks, steps, lags and max_distance must be at least 1, and lags at most steps")
    say = progress or (lambda stage: None)
    if graph is None:
        say("neighbour graph")
        graph = space.neighbor_graph(columns.keys)
    say("random walks")
    lag_values = np.arange(1, lags + 1)
    if columns.cells:
        path = random_walks(graph, walks, steps, np.random.default_rng(seed))
        correlation = autocorrelation(accuracy[path], lag_values)
    else:
        correlation = np.full(lags, np.nan)
    distances = np.arange(1, max_distance + 1)
    fractions = tuple(float(f) for f in fractions)
    near_best = np.full((len(fractions), max_distance), np.nan)
    near_best_uniform = np.full(max_distance, np.nan)
    near_top = np.full((len(fractions), max_distance), np.nan)
    near_top_uniform = np.full((len(fractions), max_distance), np.nan)
    precision = np.full((len(fractions), max_distance), np.nan)
    best = int(columns.ranking(budget, metric).order()[0]) if columns.cells else -1
    if best >= 0:
        say("distances from the best cell")
        from_best = distances_from(graph, best, max_distance)
        others = np.arange(columns.cells) != best
        reached_best = (from_best[:, None] >= 1) & (from_best[:, None] <= distances[None, :])  # [cells, D]
        if others.any():
            near_best_uniform = reached_best[others].mean(axis=0)
        say("distances between top cells")
        turned = reverse(graph)
        for i, fraction in enumerate(fractions):
            top = np.zeros(columns.cells, dtype=bool)
            top[columns.ranking(budget, metric).order()[: ranks.top_count(fraction, columns.cells)]] = True
            top_others = top & others
            if top_others.any():
                near_best[i] = reached_best[top_others].mean(axis=0)
            nearest = nearest_other_source(turned, top, max_distance)
            reached = (nearest[:, None] >= 1) & (nearest[:, None] <= distances[None, :])  # [cells, D]
            near_top[i] = reached[top].mean(axis=0)
            near_top_uniform[i] = reached.mean(axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                precision[i] = reached[top].sum(axis=0) / reached.sum(axis=0)
    return Locality(
        budget=budget,
        metric=metric,
        rule=rule_text(metric, budget),
        walks=walks,
        steps=steps,
        seed=seed,
        lags=lag_values,
        autocorrelation=correlation,
        moves=len(graph.indices),
        best_row=best,
        best_key=int(columns.keys[best]) if best >= 0 else -1,
        fractions=fractions,
        distances=distances,
        near_best=near_best,
        near_best_uniform=near_best_uniform,
        near_top=near_top,
        near_top_uniform=near_top_uniform,
        near_top_precision=precision,
    )
