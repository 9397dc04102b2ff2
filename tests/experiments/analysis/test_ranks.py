"""Rank statistics against scipy: Spearman with ties, subset ranks, the top X%."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from nasbench_experiments.analysis import ranks


@pytest.mark.parametrize("levels", [pytest.param(5, id="many-ties"), pytest.param(10_000, id="few-ties")])
def test_spearman_matches_scipy_with_ties(levels: int) -> None:
    rng = np.random.default_rng(levels)
    x = rng.integers(0, levels, 2000) / levels
    y = np.round(x + rng.normal(0, 0.3, len(x)), 2)
    assert ranks.spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)


def test_subset_ranks_equal_rankdata_of_the_subset() -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 50, 5000).astype(np.float64)
    y = x + rng.integers(0, 30, len(x))
    rx, ry = ranks.SubsetRanks(x), ranks.SubsetRanks(y)
    for size in (2, 17, 1000, 5000):
        rows = np.sort(rng.choice(len(x), size, replace=False))
        np.testing.assert_array_equal(rx.ranks(rows), stats.rankdata(x[rows]))
        expected = stats.spearmanr(x[rows], y[rows]).statistic
        assert ranks.subset_spearman(rx, ry, rows) == pytest.approx(expected, abs=1e-12)


def test_spearman_is_nan_for_constant_or_tiny_inputs() -> None:
    assert math.isnan(ranks.spearman(np.ones(5), np.arange(5)))
    assert math.isnan(ranks.spearman(np.ones(1), np.ones(1)))


def test_top_count_and_best_first_order_with_ties_by_row() -> None:
    values = np.array([0.5, 0.9, 0.9, 0.1, 0.9, 0.3])
    assert ranks.top_count(0.5, 6) == 3 and ranks.top_count(0.01, 423_624) == 4237 and ranks.top_count(0.1, 10) == 1
    assert ranks.top_count(0.34, 6) == 3 and ranks.top_count(0.2, 6) == 2 and ranks.top_count(0.5, 0) == 0
    np.testing.assert_array_equal(ranks.SubsetRanks(values).order(), [1, 2, 4, 0, 5, 3])
    many = np.random.default_rng(2).integers(0, 100, 10_000) / 100
    np.testing.assert_array_equal(ranks.SubsetRanks(many).order(), np.lexsort((np.arange(len(many)), -many)))
    with pytest.raises(ValueError, match="fraction"):
        ranks.top_count(0.0, 10)
