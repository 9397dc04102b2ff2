"""The analyses by name, with the settings they share: what ``nasbench analyze`` runs, and what Python users may
run the same way.

Usage::

    from nasbench_experiments.analysis import analyses, columns
    data = columns.load("nasbench.lmdb")
    results = analyses.run_all(data, ["summary", "budget-correlation"], analyses.Options())
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from nasbench.errors import ConfigurationError
from nasbench_experiments.analysis import budget_correlation as budget_module
from nasbench_experiments.analysis import locality as locality_module
from nasbench_experiments.analysis.columns import Columns, check_metric
from nasbench_experiments.analysis.noise import noise
from nasbench_experiments.analysis.ops import ops
from nasbench_experiments.analysis.pareto import pareto
from nasbench_experiments.analysis.summary import summarize

NAMES: tuple[str, ...] = ("summary", "budget-correlation", "pareto", "locality", "noise", "ops")
DESCRIPTIONS = {
    "summary": "cells by vertices and edges, accuracy per budget, the best cells and the optima",
    "budget-correlation": "the poster's table: Spearman between budgets over the top 1/10/25/50% and all cells",
    "pareto": "accuracy against parameters and training time; ResNet- and Inception-like cells",
    "locality": "random-walk autocorrelation; top cells within edit distance d (the slow one)",
    "noise": "spread across the 3 repeats against accuracy; rank correlation between repeats",
    "ops": "accuracy change of each op swap; accuracy against op counts",
}


@dataclass(frozen=True)
class Options:
    """Settings shared by the analyses (keyword-only; the defaults are the paper's choices)."""

    budget: int = 108  # the budget of single-budget analyses (pareto, locality, ops)
    metric: str = "validation"  # which final accuracy ranks and measures cells
    walks: int = locality_module.DEFAULT_WALKS
    steps: int = locality_module.DEFAULT_STEPS
    lags: int = locality_module.DEFAULT_LAGS
    seed: int = 0
    max_distance: int = locality_module.DEFAULT_MAX_DISTANCE
    locality_fractions: tuple[float, ...] = locality_module.DEFAULT_FRACTIONS


def check_names(names: Sequence[str]) -> list[str]:
    """The analyses asked for, in the canonical order, every one once; all of them for an empty list.

    Raises:
      ConfigurationError: an unknown name (naming the known ones).
    """
    unknown = [name for name in names if name not in NAMES]
    if unknown:
        raise ConfigurationError(f"unknown analysis {unknown[0]!r} (choose from {', '.join(NAMES)})")
    wanted = set(names) or set(NAMES)
    return [name for name in NAMES if name in wanted]


def missing_budgets(columns: Columns, name: str, options: Options) -> list[int]:
    """Budgets an analysis needs that the data lacks (empty when it can run)."""
    if name == "budget-correlation":
        needed = sorted({b for pair in budget_module.DEFAULT_PAIRS for b in pair})
    elif name in ("pareto", "locality", "ops"):
        needed = [options.budget]
    else:
        needed = []
    return [budget for budget in needed if budget not in columns.epochs]


def check(columns: Columns, names: Sequence[str], options: Options) -> None:
    """Raise ConfigurationError when an analysis asked for cannot run on this data.

    Raises:
      ConfigurationError: an unknown metric, or a budget an analysis needs that the data lacks.
    """
    check_metric(options.metric)
    for name in names:
        missing = missing_budgets(columns, name, options)
        if missing:
            held = ", ".join(map(str, columns.epochs))
            raise ConfigurationError(
                f"{name} needs budget {missing[0]} epochs, which this dataset does not hold (it holds: {held})"
            )


def run(columns: Columns, name: str, options: Options, progress: Callable[[str], None] | None = None) -> Any:
    """One analysis by name; returns its result (each has ``as_dict()``)."""
    if name == "summary":
        return summarize(columns)
    if name == "budget-correlation":
        return budget_module.budget_correlation(columns, metric=options.metric)
    if name == "pareto":
        return pareto(columns, options.budget, options.metric)
    if name == "locality":
        return locality_module.locality(
            columns,
            options.budget,
            options.metric,
            walks=options.walks,
            steps=options.steps,
            lags=options.lags,
            seed=options.seed,
            fractions=options.locality_fractions,
            max_distance=options.max_distance,
            progress=progress,
        )
    if name == "noise":
        return noise(columns, options.metric)
    if name == "ops":
        return ops(columns, options.budget, options.metric)
    raise ConfigurationError(f"unknown analysis {name!r} (choose from {', '.join(NAMES)})")


def run_all(columns: Columns, names: Sequence[str], options: Options) -> dict[str, Any]:
    """Several analyses by name (checked first: nothing runs when one cannot)."""
    chosen = check_names(names)
    check(columns, chosen, options)
    return {name: run(columns, name, options) for name in chosen}
