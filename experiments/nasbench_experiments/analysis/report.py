"""The report: Markdown tables, a JSON file with every number, and PNG plots, written into one folder.

``report.md`` has one section per analysis (its rule, its tables, its plot); ``results.json`` holds every
result's ``as_dict()`` plus where the data came from; the plots are drawn from the same results. Files are
written atomically (temporary file, then rename).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nasbench import files
from nasbench_experiments.analysis import budget_correlation as budget_module
from nasbench_experiments.analysis.budget_correlation import BudgetCorrelation
from nasbench_experiments.analysis.columns import Columns
from nasbench_experiments.analysis.locality import Locality
from nasbench_experiments.analysis.noise import Noise
from nasbench_experiments.analysis.ops import OPS, Ops
from nasbench_experiments.analysis.pareto import Pareto, cost_label
from nasbench_experiments.analysis.summary import Summary

_TITLES = {
    "summary": "Summary",
    "budget-correlation": "Budget correlation",
    "pareto": "Pareto frontier",
    "locality": "Locality",
    "noise": "Noise across repeats",
    "ops": "Ops",
}


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _number(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _summary(result: Summary) -> str:
    parts = [
        _table(["vertices", *map(str, result.by_vertices)], [["cells", *map(_count, result.by_vertices.values())]]),
        _table(["edges", *map(str, result.by_edges)], [["cells", *map(_count, result.by_edges.values())]]),
        "Accuracy per budget (mean over the 3 repeats of the final accuracy):",
    ]
    rows = []
    for budget, metrics in result.distributions.items():
        for metric, values in metrics.items():
            q = values["quantiles"]
            rows.append(
                [
                    budget,
                    metric,
                    _number(values["mean"]),
                    _number(q["0"]),
                    _number(q["0.01"]),
                    _number(q["0.25"]),
                    _number(q["0.5"]),
                    _number(q["0.75"]),
                    _number(q["0.99"]),
                    _number(q["1"]),
                ]
            )
    parts.append(_table(["epochs", "accuracy", "mean", "min", "1%", "25%", "median", "75%", "99%", "max"], rows))
    parts.append("Best cells per budget (these are the optima every regret needs):")
    rows = [
        [
            cell["budget"],
            f"mean {cell['by']}",
            cell["hash"],
            _count(cell["parameters"]),
            _number(cell["training_time"], 1),
            _number(cell["validation_accuracy"]),
            _number(cell["test_accuracy"]),
            " ".join(op.replace("-bn-relu", "") for op in cell["ops"][1:-1]),
        ]
        for cell in result.best
    ]
    parts.append(
        _table(["epochs", "best by", "hash", "parameters", "time (s)", "validation", "test", "interior ops"], rows)
    )
    ranges = [[name, _count(v["min"]), _count(v["median"]), _count(v["max"])] for name, v in result.ranges.items()]
    parts.append(_table(["quantity", "min", "median", "max"], ranges))
    return "\n\n".join(parts)


def _count(value: float) -> str:
    return f"{value:,.0f}"


def _budget_correlation(result: BudgetCorrelation) -> str:
    poster = result.pairs == budget_module.DEFAULT_PAIRS and result.fractions == budget_module.DEFAULT_FRACTIONS
    header = ["epochs", *[("all" if f >= 1 else f"top {f * 100:g}%") for f in result.fractions]]
    rows = [[f"{a} / {b}", *(_number(v, 3) for v in result.spearman[i])] for i, (a, b) in enumerate(result.pairs)]
    parts = [_table(header, rows)]
    if poster:
        parts.append("The poster's values for the real NAS-Bench-101 data, and the difference (this − poster):")
        rows = [
            [
                f"{a} / {b}",
                *(f"{p:.3f} ({m - p:+.3f})" for p, m in zip(budget_module.POSTER[i], result.spearman[i], strict=True)),
            ]
            for i, (a, b) in enumerate(result.pairs)
        ]
        parts.append(_table(header, rows))
    parts.append(f"Cells per subset: {', '.join(f'{c:,}' for c in result.cells[0])}.")
    return "\n\n".join(parts)


def _pareto(result: Pareto) -> str:
    parts = []
    for name, frontier in result.frontiers.items():
        label = cost_label(name, result.budget)
        parts.append(
            f"**Against {label}**: {len(frontier.rows)} cells on the frontier; the most accurate cell is cheaper "
            f"than {frontier.best_cost_quantile:.1%} of the cells."
        )
        shown = list(range(len(frontier.rows)))
        if len(shown) > 25:
            shown = shown[:10] + shown[-15:]
        digits = 1 if name == "training_time" else 0
        rows = [
            [
                result.hashes[frontier.rows[i]].tobytes().hex(),
                f"{frontier.cost[i]:,.{digits}f}",
                _number(frontier.accuracy[i]),
            ]
            for i in shown
        ]
        parts.append(_table(["hash", name.replace("_", " "), "accuracy"], rows))
        if len(frontier.rows) > len(shown):
            parts.append(f"(the 10 cheapest and the 15 most accurate of {len(frontier.rows)}; all are in results.json)")
        rows = [
            [
                ref["name"],
                ref["hash"],
                f"{ref['cost']:,.{digits}f}",
                _number(ref["accuracy"]),
                _number(ref["gap"]),
                _number(ref["cost_ratio"], 3),
                f"{ref['accuracy_quantile']:.1%}",
            ]
            if ref.get("row", -1) >= 0
            else [ref["name"], "", "not in the data", "", "", "", ""]
            for ref in frontier.references
        ]
        parts.append(
            _table(
                [
                    "cell",
                    "hash",
                    name.replace("_", " "),
                    "accuracy",
                    "gap to frontier",
                    "frontier cost ratio",
                    "better than",
                ],
                rows,
            )
        )
    return "\n\n".join(parts)


def _locality(result: Locality) -> str:
    lags = _table(
        ["lag", *map(str, result.lags.tolist())],
        [["autocorrelation", *(_number(v, 3) for v in result.autocorrelation)]],
    )
    parts = [
        f"{result.walks:,} random walks of {result.steps} moves (seed {result.seed}); {result.moves:,} moves in "
        f"the neighbour graph; random pairs of cells would correlate 0.",
        lags,
        f"Most accurate cell: key {result.best_key}.",
    ]
    header = ["cells", *[f"d ≤ {d}" for d in result.distances.tolist()]]
    rows = [
        [f"top {f * 100:g}% near the best", *(_percent(v) for v in result.near_best[i])]
        for i, f in enumerate(result.fractions)
    ]
    rows.append(["all cells near the best (uniform draw)", *(_percent(v) for v in result.near_best_uniform)])
    for i, f in enumerate(result.fractions):
        rows.append(
            [f"top {f * 100:g}% reached by another top {f * 100:g}% cell", *(_percent(v) for v in result.near_top[i])]
        )
        rows.append(
            [
                f"all cells reached by a top {f * 100:g}% cell (uniform draw)",
                *(_percent(v) for v in result.near_top_uniform[i]),
            ]
        )
        rows.append(
            [
                f"share of top {f * 100:g}% among those (uniform: {f * 100:g}%)",
                *(_percent(v) for v in result.near_top_precision[i]),
            ]
        )
    parts.append(_table(header, rows))
    return "\n\n".join(parts)


def _percent(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:.3%}"


def _noise(result: Noise) -> str:
    rows = []
    for budget, values in result.budgets.items():
        correlations = values["repeat_spearman"]
        rows.append(
            [
                budget,
                _number(values["mean_std"]),
                _number(values["median_std"]),
                _number(values["p90_std"]),
                _number(values["mean_range"]),
                " / ".join(_number(v, 3) for v in correlations["all"].values()),
                " / ".join(_number(v, 3) for v in list(correlations.values())[1].values()),
            ]
        )
    parts = [
        _table(
            [
                "epochs",
                "mean std",
                "median std",
                "90% std",
                "mean range",
                "Spearman repeats 0-1/0-2/1-2 (all)",
                "(top 10%)",
            ],
            rows,
        )
    ]
    for budget, values in result.budgets.items():
        bins = values["bins"]
        best, worst = bins[0], bins[-1]
        parts.append(
            f"{budget} epochs: median std {best['median_std']:.4f} in the best 5% of cells (mean accuracy "
            f"{best['mean_accuracy']:.4f}), {worst['median_std']:.4f} in the worst 5% ({worst['mean_accuracy']:.4f})."
        )
    return "\n\n".join(parts)


def _ops(result: Ops) -> str:
    short = [op.replace("-bn-relu", "") for op in OPS]
    rows = [
        [
            f"{short[a]} → {short[b]}",
            _count(result.swap_count[a, b]),
            f"{result.swap_mean[a, b]:+.4f}",
            _number(result.swap_std[a, b]),
            f"{result.swap_time_mean[a, b]:+.1f}",
        ]
        for a in range(len(OPS))
        for b in range(len(OPS))
        if a != b
    ]
    parts = [_table(["swap", "swaps", "mean accuracy change", "std", "mean time change (s)"], rows)]
    header = ["op", *[f"{n} vertices" for n in range(result.count_mean.shape[1])]]
    rows = [
        [
            short[op],
            *(
                f"{_number(result.count_mean[op, n])} ({_count(result.count_cells[op, n])})"
                for n in range(result.count_mean.shape[1])
            ),
        ]
        for op in range(len(OPS))
    ]
    parts.append("Mean accuracy (cells) by how many interior vertices carry each op:")
    parts.append(_table(header, rows))
    return "\n\n".join(parts)


_MARKDOWN: dict[str, Callable[[Any], str]] = {
    "summary": _summary,
    "budget-correlation": _budget_correlation,
    "pareto": _pareto,
    "locality": _locality,
    "noise": _noise,
    "ops": _ops,
}


def markdown(name: str, result: Any) -> str:
    """The Markdown section body of one analysis result (its rule first)."""
    rule = getattr(result, "rule", None) or result.as_dict().get("rule", "")
    return f"*Rule: {rule}.*\n\n{_MARKDOWN[name](result)}"


def _plot(name: str, result: Any, columns: Columns, folder: Path, label: str) -> Path:
    from nasbench_experiments.analysis import plots

    if name == "pareto":
        return plots.pareto(result, columns, folder, label)
    path: Path = getattr(plots, name.replace("-", "_"))(result, folder, label)
    return path


def _write_text(path: Path, text: str) -> None:
    files.write_atomically(path, lambda handle: handle.write(text.encode()))


def results_document(columns: Columns, results: dict[str, Any], skipped: dict[str, str]) -> dict[str, Any]:
    """Everything ``results.json`` holds (plain JSON values)."""
    return {
        "data": {
            "description": columns.describe(),
            "cells": columns.cells,
            "epochs": list(columns.epochs),
            "synthetic": columns.synthetic,
            "source": columns.source,
        },
        "analyses": {name: result.as_dict() for name, result in results.items()},
        "skipped": skipped,
    }


def write(
    folder: Path,
    columns: Columns,
    results: dict[str, Any],
    *,
    skipped: dict[str, str] | None = None,
    timings: dict[str, float] | None = None,
    plots: bool = True,
) -> Path:
    """Write report.md, results.json and (with ``plots``) one PNG per analysis into ``folder``; returns the
    report's path."""
    folder.mkdir(parents=True, exist_ok=True)
    skipped = skipped or {}
    label = "SYNTHETIC data" if columns.synthetic else str(columns.source.get("name", "data"))
    document = results_document(columns, results, skipped)
    if timings:
        document["timings_s"] = timings
    lines = [
        "# NAS-Bench-101 dataset analyses",
        "",
        f"Data: {columns.describe()}.",
    ]
    if columns.synthetic:
        lines += [
            "",
            "**These are SYNTHETIC data** (the embedded default or `nasbench synth`), generated to resemble the real "
            "dataset's published statistics (docs/synthetic-data.md); they are not NAS-Bench-101's measurements.",
        ]
    for name, result in results.items():
        lines += ["", f"## {_TITLES[name]}", "", markdown(name, result)]
        if plots:
            image = _plot(name, result, columns, folder, label)
            lines += ["", f"![{_TITLES[name]}]({image.name})"]
    for name, reason in skipped.items():
        lines += ["", f"## {_TITLES[name]}", "", f"Not run: {reason}."]
    _write_text(folder / "results.json", json.dumps(document, indent=1, sort_keys=False, allow_nan=False) + "\n")
    path = folder / "report.md"
    _write_text(path, "\n".join(lines) + "\n")
    return path
