"""Rank statistics shared by the analyses: Spearman correlation with ties, and the top X% of cells.

Spearman follows ``scipy.stats.spearmanr``: average ranks for ties (as ``scipy.stats.rankdata(method="average")``),
then the Pearson correlation of the ranks; NaN when fewer than two cells or when one side is constant. (Computed
with numpy; the tests hold it to scipy.)

The top X% of N cells are the ``ceil(X * N)`` cells with the highest value, ties broken by ascending canonical
key (the row order of ``Columns``), so a selection never depends on where the data came from.
"""

from __future__ import annotations

import math

import numpy as np


def rank(values: np.ndarray) -> np.ndarray:
    """Average ranks (1-based, ties share the mean of their positions), as ``scipy.stats.rankdata``."""
    return SubsetRanks(values).ranks(slice(None))


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two float arrays; NaN for fewer than two values or a constant side."""
    if len(x) < 2:
        return math.nan
    dx, dy = x - x.mean(), y - y.mean()
    # Elementwise products summed by numpy, not BLAS dot: on a loaded machine BLAS threads cost 50x more.
    denominator = math.sqrt(float((dx * dx).sum()) * float((dy * dy).sum()))
    if denominator == 0.0:
        return math.nan
    return float(np.clip(float((dx * dy).sum()) / denominator, -1.0, 1.0))


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation with ties handled as ``scipy.stats.spearmanr`` does (see the module)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2:
        return math.nan
    return pearson(rank(x), rank(y))


class SubsetRanks:
    """Average ranks of one array's values within any subset of it, without sorting per subset, and the order
    of all its values best first.

    The values are sorted once into distinct levels; a subset's ranks then follow from a count per level
    (``np.bincount``) and its running sum, in O(n + levels). Equal to ``rank(values[rows])`` exactly (ranks
    are half-integers, exact in float64). Accuracies take few distinct values (means of three multiples of
    1/9984), so the best-first order is a stable sort of 16-bit level numbers (a radix sort).
    """

    def __init__(self, values: np.ndarray) -> None:
        levels, self._level = np.unique(np.asarray(values, dtype=np.float64), return_inverse=True)
        self._levels = len(levels)
        self._order: np.ndarray | None = None

    def order(self) -> np.ndarray:
        """Rows by descending value, ties in ascending row order (the top X% are its first ``top_count``)."""
        if self._order is None:
            dtype = np.uint16 if self._levels <= 1 << 16 else np.int64
            descending = (self._levels - 1 - self._level).astype(dtype)
            self._order = np.argsort(descending, kind="stable")
        return self._order

    def ranks(self, rows: np.ndarray | slice) -> np.ndarray:
        """float64 average ranks (1-based) of ``values[rows]`` within that subset, in the order of ``rows``."""
        level = self._level[rows]
        counts = np.bincount(level, minlength=self._levels)
        ends = np.cumsum(counts)
        return (ends - (counts - 1) / 2.0)[level]


def subset_spearman(x: SubsetRanks, y: SubsetRanks, rows: np.ndarray | slice) -> float:
    """Spearman correlation of two ranked arrays over the same ``rows`` (as ``spearman(x[rows], y[rows])``)."""
    rx = x.ranks(rows)
    if len(rx) < 2:
        return math.nan
    return pearson(rx, y.ranks(rows))


def top_count(fraction: float, cells: int) -> int:
    """How many cells the top ``fraction`` of ``cells`` holds: ``ceil(fraction * cells)`` (at least 1)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    return min(cells, max(1, math.ceil(round(fraction * cells, 9))))
