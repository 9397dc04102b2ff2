"""How Syne Tune's schedulers scale with simulated workers: studies alike but for ``--parallel``, drawn together.

- ``scaling_regret.png``: per optimizer, the median test regret against simulated wall-clock, one curve per
  number of workers N (log-log). Every study spends the same training per run, so a run on N workers spans
  about budget / N of wall-clock (docs/compare.md, "Parallel workers in simulated time").
- ``speedup.png``: per optimizer, the speed-up to reach a regret against N: the median wall-clock of the runs
  on one worker to reach the level, over that on N workers (each study's smallest N stands for one worker
  when none has N = 1), with the ideal speed-up N drawn dotted. A level is drawn where at least half the runs of
  every N reach it.
- ``scaling.csv``: the speed-ups drawn, one row per optimizer, level and N.

Usage::

    from nasbench_experiments.studies.scaling import render_scaling
    render_scaling([Path("n1"), Path("n4"), Path("n16"), Path("n64")], Path("scaling"))
"""

from __future__ import annotations

import csv
import io
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from nasbench.errors import ConfigurationError
from nasbench_experiments.search.registry import OPTIMIZERS
from nasbench_experiments.studies import bookkeeping, report, runner, table

LEVELS = (2e-2, 1e-2, 5e-3, 2e-3, 1e-3)  # regrets the speed-up is read at (where half the runs reach them)


def load_studies(outs: list[Path]) -> tuple[float, dict[int, list[report.Run]]]:
    """The budget and, per number of workers, the runs of each study.

    Raises:
      ConfigurationError: fewer than two studies, two with the same N, or studies that differ otherwise
        (encoding, budget, dataset) and would not compare.
    """
    if len(outs) < 2:
        raise ConfigurationError("--scaling needs two studies or more that differ only in --parallel")
    records = [runner.load_study(out) for out in outs]
    first = records[0]
    for out, record in zip(outs[1:], records[1:], strict=True):
        for name in ("encoding", "budget_s", "max_evaluations", "optimum"):
            if record[name] != first[name]:
                raise ConfigurationError(f"{out} differs from {outs[0]} in {name}: the studies would not compare")
    by_workers: dict[int, list[report.Run]] = {}
    for out, record in zip(outs, records, strict=True):
        workers = int(record["parallel"])
        if workers in by_workers:
            raise ConfigurationError(f"two studies with --parallel {workers} ({out} is the second)")
        by_workers[workers] = report.load_runs(out)
    return float(first["budget_s"]), dict(sorted(by_workers.items()))


def speedups(budget_s: float, by_workers: dict[int, list[report.Run]]) -> list[dict[str, Any]]:
    """Per optimizer (those in every study), level and N: the speed-up to reach the level (see the module)."""
    rows = []
    names = _names(by_workers)
    base = min(by_workers)
    for name in names:
        reach = {}
        for workers, runs in by_workers.items():
            mine = [r for r in runs if r.optimizer == name]
            if not mine:
                break
            reach[workers] = {
                level: np.array([bookkeeping.time_to_reach(r.time, r.test_regret, level, budget_s) for r in mine])
                for level in LEVELS
            }
        else:
            for level in LEVELS:
                if all(np.mean(np.isfinite(times[level])) >= 0.5 for times in reach.values()):
                    reference = float(np.median(reach[base][level]))
                    for workers, times in reach.items():
                        median = float(np.median(times[level]))
                        rows.append(
                            {
                                "optimizer": name,
                                "level": level,
                                "workers": workers,
                                "median_time_s": median,
                                "speedup": reference / median * base,
                            }
                        )
    return rows


def render_scaling(outs: list[Path], dest: Path) -> dict[str, Path]:
    """Write scaling_regret.png, speedup.png and scaling.csv into ``dest`` from the studies in ``outs``."""
    budget_s, by_workers = load_studies(outs)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(f"cannot write the figures into {dest}: {exc.strerror or exc}") from None
    rows = speedups(budget_s, by_workers)
    written = {"regret": dest / "scaling_regret.png", "speedup": dest / "speedup.png", "table": dest / "scaling.csv"}
    _plot_regret(budget_s, by_workers, written["regret"])
    _plot_speedup(rows, sorted(by_workers), written["speedup"])
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["optimizer", "level", "workers", "median_time_s", "speedup"])
    writer.writeheader()
    writer.writerows(rows)
    table.write_atomic(written["table"], buffer.getvalue().encode())
    return written


def _names(by_workers: dict[int, list[report.Run]]) -> list[str]:
    return list(dict.fromkeys(r.optimizer for runs in by_workers.values() for r in runs))


def _panels(count: int) -> tuple[Any, list[Any]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(count, 3)
    rows = math.ceil(count / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.4 * rows), dpi=110, squeeze=False)
    for extra in axes.flat[count:]:
        extra.set_visible(False)
    return figure, list(axes.flat[:count])


def _title(name: str) -> str:
    return OPTIMIZERS[name].title if name in OPTIMIZERS else name


def _plot_regret(budget_s: float, by_workers: dict[int, list[report.Run]], path: Path) -> None:
    names = _names(by_workers)
    figure, axes = _panels(len(names))
    every = [r for runs in by_workers.values() for r in runs]
    grid = report.regret_grid(every, budget_s)
    for panel, name in zip(axes, names, strict=True):
        for index, (workers, runs) in enumerate(by_workers.items()):
            curves = np.array([bookkeeping.regret_at(r.time, r.test_regret, grid) for r in runs if r.optimizer == name])
            if not len(curves):
                continue
            end = np.median([r.time[-1] for r in runs if r.optimizer == name])  # where the runs stop
            shown = (np.mean(~np.isnan(curves), axis=0) >= 0.5) & (grid <= end)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                median = np.nanmedian(curves, axis=0)
            panel.plot(grid[shown], np.maximum(median[shown], report.REGRET_FLOOR), color=f"C{index}",
                       label=f"N = {workers} ({len(curves)} runs)")  # fmt: skip
        panel.set_xscale("log")
        panel.set_yscale("log")
        panel.set_title(_title(name), fontsize=9)
        panel.set_xlabel("simulated wall-clock (s)", fontsize=8)
        panel.set_ylabel("median test regret", fontsize=8)
        panel.grid(True, which="major", alpha=0.3)
        panel.legend(fontsize=7)
    figure.tight_layout()
    report.save_figure(figure, path)


def _plot_speedup(rows: list[dict[str, Any]], workers: list[int], path: Path) -> None:
    names = list(dict.fromkeys(row["optimizer"] for row in rows)) or ["(no level reached by half the runs)"]
    figure, axes = _panels(len(names))
    for panel, name in zip(axes, names, strict=True):
        for index, level in enumerate(LEVELS):
            mine = [row for row in rows if row["optimizer"] == name and row["level"] == level]
            if mine:
                panel.plot([row["workers"] for row in mine], [row["speedup"] for row in mine], marker="o",
                           color=f"C{index}", label=f"regret {level:g}")  # fmt: skip
        panel.plot(workers, workers, color="0.5", linestyle=":", label="ideal")
        panel.set_xscale("log", base=2)
        panel.set_yscale("log", base=2)
        panel.set_title(_title(name), fontsize=9)
        panel.set_xlabel("simulated workers N", fontsize=8)
        panel.set_ylabel("speed-up to reach the regret", fontsize=8)
        panel.grid(True, which="major", alpha=0.3)
        panel.legend(fontsize=7)
    figure.tight_layout()
    report.save_figure(figure, path)
