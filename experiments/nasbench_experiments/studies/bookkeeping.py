"""Incumbents and regrets, exactly as the paper's benchmark code computes them (Ying et al., 2019, section 5;
https://github.com/automl/nas_benchmarks).

After each evaluation the incumbent is the evaluated configuration with the lowest validation error *at its
queried budget* so far (a strict improvement is needed to replace it; invalid configurations never count);
its **test regret** is its mean test error over the three runs at 108 epochs minus the best mean test error
of the whole dataset, and its **validation regret** is its (observed) validation error minus the best mean
validation error at 108 epochs (it can be slightly negative: one run can beat the best mean). The time axis is
the cumulative training time of the queries (``time``). Rows before the first valid evaluation have NaN regrets.

The optimum comes from the dataset itself (``NASBench.optima()``), never from a constant.

Usage::

    extra = regrets(problem.columns(), best_test_accuracy=0.94, best_validation_accuracy=0.95)
    at = regret_at(times, test_regret, grid)      # the step function on a time grid
"""

from __future__ import annotations

import numpy as np


def incumbents(valid: np.ndarray, validation_accuracy: np.ndarray) -> np.ndarray:
    """int64[n]: the index of the incumbent after each evaluation (-1 before the first valid one)."""
    error = np.where(valid, 1.0 - validation_accuracy, np.inf)
    best_before = np.concatenate(([np.inf], np.minimum.accumulate(error)[:-1]))
    improved = error < best_before
    steps = np.where(improved, np.arange(len(error)), -1)
    return np.maximum.accumulate(steps) if len(steps) else steps.astype(np.int64)


def regrets(
    columns: dict[str, np.ndarray], best_test_accuracy: float, best_validation_accuracy: float
) -> dict[str, np.ndarray]:
    """The incumbent, test and validation regret after each evaluation of one run (see the module docstring).

    Args:
      columns: ``valid``, ``validation_accuracy``, ``mean_test_accuracy`` of every evaluation (``Problem``).
      best_test_accuracy, best_validation_accuracy: the dataset's best mean accuracies at 108 epochs.
    """
    incumbent = incumbents(columns["valid"], columns["validation_accuracy"])
    known = incumbent >= 0
    safe = np.where(known, incumbent, 0)
    test_regret = np.where(known, best_test_accuracy - columns["mean_test_accuracy"][safe], np.nan)
    validation_regret = np.where(known, best_validation_accuracy - columns["validation_accuracy"][safe], np.nan)
    return {"incumbent": incumbent.astype(np.int64), "test_regret": test_regret, "validation_regret": validation_regret}


def regret_at(time: np.ndarray, regret: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """The regret of one run at each grid time: that of the last evaluation finished by then (NaN before)."""
    index = np.searchsorted(time, grid, side="right") - 1
    return np.where(index >= 0, regret[np.maximum(index, 0)], np.nan)


def time_to_reach(time: np.ndarray, regret: np.ndarray, level: float, budget_s: float) -> float:
    """The simulated time at which the run's test regret first drops to ``level`` or below (inf if never
    within the budget)."""
    reached = np.flatnonzero((regret <= level) & (time <= budget_s))
    return float(time[reached[0]]) if len(reached) else float("inf")
