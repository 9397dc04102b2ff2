"""The study's report, redrawn from its saved runs: summary (CSV and Markdown) and the paper's two figures.

- ``regret.png``: test regret against estimated wall-clock (the summed training time of the queries), log-log,
  every optimizer in one plot: the mean over runs (solid), the median (dashed) and the quartile band.
- ``ecdf.png``: the empirical CDF of the final test regret (at the budget) over all runs of each optimizer.

Regrets of exactly 0 (the run found the best cell) are drawn at ``REGRET_FLOOR`` on the log axes.

Usage::

    from nasbench_experiments.studies.report import render
    render(Path("study"))  # reads study.json and runs/; writes summary.csv, finals.csv, report.md and the figures
"""

from __future__ import annotations

import csv
import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from nasbench_experiments.search.registry import OPTIMIZERS
from nasbench_experiments.studies import bookkeeping, runner, table

REGRET_FLOOR = 1e-5
LEVELS = (1e-2, 1e-3)
GRID_POINTS = 200


@dataclass
class Run:
    optimizer: str
    seed: int
    time: np.ndarray  # float64[n] cumulative simulated seconds
    test_regret: np.ndarray  # float64[n]
    validation_regret: np.ndarray  # float64[n]
    valid: np.ndarray  # bool[n]


def load_runs(out: Path) -> list[Run]:
    """Every finished run of the study in ``out``."""
    rows = table.read_runs(runner.finished_runs(out))
    if rows.num_rows == 0:
        return []
    optimizer = np.asarray(rows.column("optimizer").cast(pa.string()).to_pylist(), dtype=object)
    seed = rows.column("seed").to_numpy()
    columns = {name: rows.column(name).to_numpy() for name in ("time", "test_regret", "validation_regret", "valid")}
    starts = np.flatnonzero(rows.column("step").to_numpy() == 0)
    ends = [*starts[1:].tolist(), rows.num_rows]
    return [
        Run(
            str(optimizer[start]),
            int(seed[start]),
            columns["time"][start:end],
            columns["test_regret"][start:end],
            columns["validation_regret"][start:end],
            columns["valid"][start:end],
        )
        for start, end in zip(starts.tolist(), ends, strict=True)
    ]


def finals(runs: list[Run], budget_s: float) -> list[dict[str, Any]]:
    """Per run: its evaluations, its final regrets (at the budget) and when it first reached each level (inf:
    never), the figures ``summarize`` aggregates."""
    rows = []
    for run in runs:
        row: dict[str, Any] = {
            "optimizer": run.optimizer,
            "seed": run.seed,
            "evaluations": len(run.time),
            "valid_evaluations": int(run.valid.sum()),
            "final_test_regret": float(bookkeeping.regret_at(run.time, run.test_regret, np.array([budget_s]))[0]),
            "final_validation_regret": float(
                bookkeeping.regret_at(run.time, run.validation_regret, np.array([budget_s]))[0]
            ),
        }
        for level in LEVELS:
            row[f"time_to_{level:g}_s"] = float(bookkeeping.time_to_reach(run.time, run.test_regret, level, budget_s))
        rows.append(row)
    return rows


def summarize(runs: list[Run], budget_s: float) -> list[dict[str, Any]]:
    """Per optimizer: final regrets (median, quartiles), time to reach each level, evaluations per run."""
    return summarize_finals(finals(runs, budget_s))


def summarize_finals(per_run: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``summarize`` from the rows of ``finals`` (or of a study's finals.csv, read back)."""
    rows = []
    for name in dict.fromkeys(run["optimizer"] for run in per_run):
        mine = [run for run in per_run if run["optimizer"] == name]
        final = np.array([float(run["final_test_regret"]) for run in mine])
        final_validation = np.array([float(run["final_validation_regret"]) for run in mine])
        row: dict[str, Any] = {
            "optimizer": name,
            "runs": len(mine),
            "final_test_regret_median": _quantile(final, 0.5),
            "final_test_regret_q25": _quantile(final, 0.25),
            "final_test_regret_q75": _quantile(final, 0.75),
            "final_validation_regret_median": _quantile(final_validation, 0.5),
        }
        for level in LEVELS:
            reach = np.array([float(run[f"time_to_{level:g}_s"]) for run in mine])
            row[f"time_to_{level:g}_median_s"] = float(np.median(reach))
            row[f"reached_{level:g}_fraction"] = float(np.mean(np.isfinite(reach)))
        row["evaluations_median"] = float(np.median([int(run["evaluations"]) for run in mine]))
        row["valid_evaluations_median"] = float(np.median([int(run["valid_evaluations"]) for run in mine]))
        rows.append(row)
    return rows


def _quantile(values: np.ndarray, q: float) -> float:
    finite = values[~np.isnan(values)]
    return float(np.quantile(finite, q)) if len(finite) else math.nan


def regret_grid(runs: list[Run], budget_s: float) -> np.ndarray:
    """The log-spaced time grid of the regret plot: from the earliest first evaluation to the budget."""
    starts = [r.time[np.argmax(r.time > 0)] for r in runs if np.any(r.time > 0)]
    first = max(min(starts), budget_s * 1e-6) if starts else budget_s * 1e-3
    return np.logspace(math.log10(first), math.log10(budget_s), GRID_POINTS)


def plot_regret(runs: list[Run], budget_s: float, path: Path, workers: int = 1) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = regret_grid(runs, budget_s)
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=110)
    for index, name in enumerate(dict.fromkeys(run.optimizer for run in runs)):
        curves = np.array([bookkeeping.regret_at(r.time, r.test_regret, grid) for r in runs if r.optimizer == name])
        started = np.mean(~np.isnan(curves), axis=0) >= 0.5  # drawn where most runs have an incumbent
        with warnings.catch_warnings():  # all-NaN columns (before any incumbent) are not drawn anyway
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(curves, axis=0)
            q25, median, q75 = np.nanquantile(curves, [0.25, 0.5, 0.75], axis=0)
        color = f"C{index}"
        label = f"{OPTIMIZERS[name].title if name in OPTIMIZERS else name} ({len(curves)} runs)"
        axes.plot(grid[started], np.maximum(mean[started], REGRET_FLOOR), color=color, label=label)
        axes.plot(grid[started], np.maximum(median[started], REGRET_FLOOR), color=color, linestyle="--", lw=0.9)
        axes.fill_between(
            grid[started],
            np.maximum(q25[started], REGRET_FLOOR),
            np.maximum(q75[started], REGRET_FLOOR),
            color=color,
            alpha=0.15,
            lw=0,
        )
    axes.set_xscale("log")
    axes.set_yscale("log")
    if workers > 1:
        axes.set_xlabel(f"simulated wall-clock time on {workers} workers (s)")
    else:
        axes.set_xlabel("estimated wall-clock time (summed training time, s)")
    axes.set_ylabel("test regret")
    axes.set_title("mean test regret (dashed: median; band: quartiles)")
    axes.grid(True, which="major", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    save_figure(figure, path)


def plot_ecdf(runs: list[Run], budget_s: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=110)
    for index, name in enumerate(dict.fromkeys(run.optimizer for run in runs)):
        final = np.array(
            [bookkeeping.regret_at(r.time, r.test_regret, np.array([budget_s]))[0] for r in runs if r.optimizer == name]
        )
        final = np.sort(np.maximum(final[~np.isnan(final)], REGRET_FLOOR))
        if not len(final):
            continue
        label = OPTIMIZERS[name].title if name in OPTIMIZERS else name
        axes.step(final, np.arange(1, len(final) + 1) / len(final), where="post", color=f"C{index}", label=label)
    axes.set_xscale("log")
    axes.set_ylim(0, 1.02)
    axes.set_xlabel(f"final test regret after {budget_s:.3g} simulated seconds (0 drawn at {REGRET_FLOOR:g})")
    axes.set_ylabel("fraction of runs")
    axes.set_title("empirical CDF of the final test regret")
    axes.grid(True, which="major", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    save_figure(figure, path)


def save_figure(figure: Any, path: Path) -> None:
    """Save a figure as PNG to ``path`` atomically, and close it."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    table.write_atomic(path, buffer.getvalue())


def _format(value: Any) -> str:
    if isinstance(value, float):
        return "∞" if value == math.inf else ("–" if math.isnan(value) else f"{value:.3g}")
    return str(value)


def render(out: Path) -> dict[str, Path]:
    """Write summary.csv, finals.csv, report.md, regret.png and ecdf.png into ``out`` from its saved runs."""
    record = runner.load_study(out)
    budget_s = float(record["budget_s"])
    runs = load_runs(out)
    per_run = finals(runs, budget_s)
    rows = summarize_finals(per_run)
    written = {}
    if rows:
        for name, content in (("summary", rows), ("finals", per_run)):
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=list(content[0]))
            writer.writeheader()
            writer.writerows(content)
            written[name] = out / f"{name}.csv"
            table.write_atomic(written[name], buffer.getvalue().encode())
        written["regret"] = out / "regret.png"
        plot_regret(runs, budget_s, written["regret"], int(record["parallel"]))
        written["ecdf"] = out / "ecdf.png"
        plot_ecdf(runs, budget_s, written["ecdf"])
    written["report"] = out / "report.md"
    table.write_atomic(written["report"], markdown(record, rows, len(runs)).encode())
    return written


def markdown(record: dict[str, Any], rows: list[dict[str, Any]], finished: int) -> str:
    optimum = record["optimum"]
    expected = len(record["optimizers"]) * record["runs"]
    lines = [
        "# Optimizer comparison on NAS-Bench-101",
        "",
        f"- dataset: `{record['dataset']}` ({optimum['cells']} cells, budgets {optimum['epochs']} epochs)",
        f"- best mean test accuracy at 108 epochs: {optimum['best_test_accuracy']:.6f}; best mean validation "
        f"accuracy: {optimum['best_validation_accuracy']:.6f} (from the data)",
        f"- encoding: {record['encoding']}; budget: {record['budget_s']:.3g} simulated seconds per run; "
        f"seeds {record['first_seed']} to {record['first_seed'] + record['runs'] - 1}",
        f"- runs finished: {finished} of {expected}",
    ]
    if record.get("subspace"):
        lines += [
            f"- subspace: `{record['subspace']}` ({optimum['cells']:,} cells): the optimizers propose only its cells "
            "(a configuration of any other cell is invalid: error 1 at cost 0), and regrets are against its own "
            "optimum (above)"
        ]
    lines += [
        "",
        "Regret as the paper's benchmark code computes it: the incumbent (lowest validation error at the queried "
        "budget so far) has test regret = its mean test error over the 3 runs at 108 epochs − the best mean test "
        "error of the dataset. "
        + (
            f"The time axis is the simulated wall-clock on {record['parallel']} workers per run (each run spends "
            "the budget in summed training time)."
            if record["parallel"] > 1
            else "The time axis is the summed training time of the queries."
        ),
        "",
    ]
    if rows:
        headers = list(rows[0])
        lines += ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(_format(row[h]) for h in headers) + " |" for row in rows]
        lines += ["", "![test regret over estimated wall-clock](regret.png)", "", "![ECDF of final regret](ecdf.png)"]
    lines += ["", "All rows: `results.parquet` (one row per evaluation; `pandas.read_parquet`).", ""]
    return "\n".join(lines)
