"""PNG plots of the analyses' results (matplotlib, Agg backend); one function per analysis, each drawn only from
the result it is given, so a plot can be redrawn from the same numbers the tables show."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import matplotlib.ticker as ticker
import numpy as np
from matplotlib.figure import Figure

from nasbench import files
from nasbench_experiments.analysis import budget_correlation as budget_module
from nasbench_experiments.analysis.budget_correlation import BudgetCorrelation
from nasbench_experiments.analysis.columns import Columns
from nasbench_experiments.analysis.locality import Locality
from nasbench_experiments.analysis.noise import Noise
from nasbench_experiments.analysis.ops import OPS, Ops
from nasbench_experiments.analysis.pareto import Pareto, cost_label, costs_of
from nasbench_experiments.analysis.summary import HISTOGRAM_BINS, Summary

_DPI = 90
_SHORT = {"conv3x3-bn-relu": "conv3x3", "conv1x1-bn-relu": "conv1x1", "maxpool3x3": "maxpool"}


def _plain_log(axis: Any, which: str) -> None:
    """Log-scale tick labels as plain numbers (matplotlib's default renders each through mathtext: slow)."""
    target = axis.xaxis if which == "x" else axis.yaxis
    target.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    target.set_minor_formatter(ticker.NullFormatter())


def _save(figure: Figure, path: Path) -> Path:
    try:
        with files.atomic_path(path) as temp:
            figure.savefig(temp, dpi=_DPI, format="png")
    finally:
        plt.close(figure)
    return path


def summary(result: Summary, folder: Path, label: str) -> Path:
    figure, axis = plt.subplots(figsize=(7, 4))
    centers = (HISTOGRAM_BINS[:-1] + HISTOGRAM_BINS[1:]) / 2
    for budget, metrics in result.distributions.items():
        axis.step(centers, metrics["validation"]["histogram"], where="mid", label=f"{budget} epochs")
    axis.set_yscale("log")
    _plain_log(axis, "y")
    axis.set_xlabel("mean validation accuracy (3 repeats)")
    axis.set_ylabel("cells per 0.01 bin")
    axis.set_title(f"Accuracy per budget ({label})", fontsize=10)
    axis.legend(fontsize=8)
    figure.tight_layout()
    return _save(figure, folder / "summary_accuracy.png")


def budget_correlation(result: BudgetCorrelation, folder: Path, label: str) -> Path:
    figure, axis = plt.subplots(figsize=(7, 4))
    x = np.arange(len(result.fractions))
    poster = result.pairs == budget_module.DEFAULT_PAIRS and result.fractions == budget_module.DEFAULT_FRACTIONS
    for i, pair in enumerate(result.pairs):
        (line,) = axis.plot(x, result.spearman[i], marker="o", label=f"{pair[0]} / {pair[1]}")
        if poster:
            axis.plot(x, budget_module.POSTER[i], linestyle=":", color=line.get_color())
    axis.set_xticks(x, [("all" if f >= 1 else f"top {f * 100:g}%") for f in result.fractions])
    axis.set_ylabel("Spearman rank correlation")
    axis.set_xlabel(f"cells: the top X% by mean {result.metric} accuracy at the larger budget", fontsize=9)
    axis.set_ylim(-0.1, 1.0)
    title = f"Budget correlation ({label})" + ("; dotted: the poster's real data" if poster else "")
    axis.set_title(title, fontsize=10)
    axis.legend(fontsize=8, title="epochs", title_fontsize=8)
    figure.tight_layout()
    return _save(figure, folder / "budget_correlation.png")


def pareto(result: Pareto, columns: Columns, folder: Path, label: str) -> Path:
    accuracy = columns.accuracy(result.budget, result.metric)
    costs = costs_of(columns, result.budget)
    figure, axes = plt.subplots(1, len(result.frontiers), figsize=(5.5 * len(result.frontiers), 4.2))
    low = float(np.quantile(accuracy, 0.02)) if len(accuracy) else 0.0
    high = float(accuracy.max()) + 0.003 if len(accuracy) else 1.0
    for axis, (name, frontier) in zip(axes, result.frontiers.items(), strict=True):
        cost = costs[name]
        shown = (accuracy >= low) & (cost > 0)
        if shown.any():
            x_edges = np.geomspace(cost[shown].min(), cost[shown].max(), 120)
            y_edges = np.linspace(low, high, 100)
            density, _, _ = np.histogram2d(cost[shown], accuracy[shown], bins=(x_edges, y_edges))
            masked = np.ma.masked_equal(density.T, 0)
            axis.pcolormesh(x_edges, y_edges, masked, cmap="Greys", norm=matplotlib.colors.LogNorm(), rasterized=True)
        axis.step(frontier.cost, frontier.accuracy, where="post", color="tab:red", label="Pareto frontier")
        for marker, reference in zip(("s", "^"), frontier.references, strict=False):
            if reference.get("row", -1) >= 0:
                axis.plot(
                    reference["cost"],
                    reference["accuracy"],
                    marker=marker,
                    markersize=8,
                    linestyle="none",
                    label=f"{reference['name']} (gap {reference['gap']:.4f})",
                )
        axis.set_xscale("log")
        _plain_log(axis, "x")
        axis.set_ylim(low, high)
        axis.set_xlabel(cost_label(name, result.budget))
        axis.set_ylabel(f"mean {result.metric} accuracy at {result.budget} epochs")
        axis.legend(fontsize=7, loc="lower right")
    figure.suptitle(f"Accuracy against cost ({label}); grey: cell density", fontsize=10)
    figure.tight_layout()
    return _save(figure, folder / "pareto.png")


def locality(result: Locality, folder: Path, label: str) -> Path:
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot(result.lags, result.autocorrelation, marker="o", label="random walks")
    left.axhline(0.0, color="grey", linestyle=":", label="random pairs")
    left.set_xlabel("lag (moves)")
    left.set_ylabel("autocorrelation of accuracy")
    left.set_ylim(-0.1, 1.0)
    left.legend(fontsize=8)
    left.set_title("Random-walk autocorrelation", fontsize=10)
    for i, fraction in enumerate(result.fractions):
        (line,) = right.plot(
            result.distances, result.near_best[i], marker="o", label=f"top {fraction * 100:g}%, near the best"
        )
        right.plot(
            result.distances,
            result.near_top[i],
            marker="s",
            color=line.get_color(),
            alpha=0.6,
            label=f"top {fraction * 100:g}%, near another top cell",
        )
        right.plot(result.distances, result.near_top_uniform[i], linestyle=":", color=line.get_color())
    right.plot(
        result.distances, result.near_best_uniform, linestyle="--", color="grey", label="all cells, near the best"
    )
    right.set_yscale("log")
    _plain_log(right, "y")
    right.set_xlabel("edit distance")
    right.set_ylabel("fraction of cells")
    right.set_xticks(result.distances)
    right.legend(fontsize=7)
    right.set_title(
        f"Within d moves; top X% by mean {result.metric} accuracy at {result.budget} epochs\n"
        "(dotted: all cells some top cell reaches)",
        fontsize=9,
    )
    figure.suptitle(f"Locality ({label})", fontsize=10)
    figure.tight_layout()
    return _save(figure, folder / "locality.png")


def noise(result: Noise, folder: Path, label: str) -> Path:
    figure, axis = plt.subplots(figsize=(7, 4))
    for budget, values in result.budgets.items():
        bins = values["bins"]
        axis.plot(
            [b["mean_accuracy"] for b in bins], [b["median_std"] for b in bins], marker="o", label=f"{budget} epochs"
        )
    axis.set_xlabel(f"mean {result.metric} accuracy (bin of 5% of the cells)")
    axis.set_ylabel("median std over the 3 repeats")
    axis.set_yscale("log")
    _plain_log(axis, "y")
    axis.legend(fontsize=8)
    axis.set_title(f"Noise across repeats ({label})", fontsize=10)
    figure.tight_layout()
    return _save(figure, folder / "noise.png")


def ops(result: Ops, folder: Path, label: str) -> Path:
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    names = [_SHORT.get(op, op) for op in OPS]
    image = left.imshow(
        result.swap_mean,
        cmap="RdBu",
        vmin=-np.nanmax(np.abs(result.swap_mean)),
        vmax=np.nanmax(np.abs(result.swap_mean)),
    )
    for a in range(len(OPS)):
        for b in range(len(OPS)):
            if a != b and np.isfinite(result.swap_mean[a, b]):
                left.text(b, a, f"{result.swap_mean[a, b]:+.4f}", ha="center", va="center", fontsize=9)
    left.set_xticks(range(len(OPS)), names)
    left.set_yticks(range(len(OPS)), names)
    left.set_xlabel("to")
    left.set_ylabel("from")
    left.set_title("Mean accuracy change of one op swap", fontsize=10)
    figure.colorbar(image, ax=left, fraction=0.046)
    counts = np.arange(result.count_mean.shape[1])
    for op, name in enumerate(names):
        (line,) = right.plot(counts, result.count_mean[op], marker="o", label=name)
        right.fill_between(
            counts,
            result.count_quantiles[op, :, 0],
            result.count_quantiles[op, :, 2],
            color=line.get_color(),
            alpha=0.15,
        )
    right.set_xlabel("vertices with this op")
    right.set_ylabel(f"mean {result.metric} accuracy at {result.budget} epochs")
    right.legend(fontsize=8)
    right.set_title("Accuracy against op counts (band: 10th-90th percentile)", fontsize=10)
    figure.suptitle(f"Ops ({label})", fontsize=10)
    figure.tight_layout()
    return _save(figure, folder / "ops.png")
