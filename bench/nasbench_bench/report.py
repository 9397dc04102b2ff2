"""Render a run: report.md (targets, then one table per scenario) and PNG plots (latency CDFs and histograms,
throughput against client processes, cost per cell against batch size)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from nasbench_bench.results import ScenarioResult


def _plots(scenarios: dict[str, ScenarioResult], folder: Path) -> dict[str, list[str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made: dict[str, list[str]] = {}

    def save(figure: Any, scenario: str, name: str) -> None:
        figure.tight_layout()
        figure.savefig(folder / name, dpi=110)
        plt.close(figure)
        made.setdefault(scenario, []).append(name)

    def cdf(axis: Any, values: list[float], label: str) -> None:
        ordered = np.sort(np.asarray(values))
        axis.plot(ordered, np.arange(1, len(ordered) + 1) / len(ordered), label=label)

    for scenario, key in (("remote", "latency"), ("concurrency", "latency"), ("load", "latency")):
        series = scenarios.get(scenario, ScenarioResult()).series.get(key)
        if not series:
            continue
        figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
        for label, values in series.items():
            cdf(left, values, str(label))
            clipped = np.asarray(values)[np.asarray(values) <= np.percentile(values, 99)]
            right.hist(clipped, bins=60, alpha=0.5, label=str(label))
        left.set(xscale="log", xlabel="latency (µs)", ylabel="fraction of calls", title=f"{scenario}: latency CDF")
        right.set(xlabel="latency (µs), up to p99", ylabel="calls", title=f"{scenario}: latency histogram")
        left.legend(title="clients" if scenario == "concurrency" else None)
        right.legend()
        save(figure, scenario, f"{scenario}_latency.png")
    throughput = scenarios.get("concurrency", ScenarioResult()).series.get("throughput")
    if throughput:
        figure, axis = plt.subplots(figsize=(6, 4))
        counts = sorted(throughput)
        axis.plot(counts, [throughput[c] for c in counts], marker="o")
        axis.set(
            xlabel="client processes",
            ylabel="unary Query calls/s",
            title="aggregate throughput",
            xscale="log",
            xticks=counts,
            xticklabels=[str(c) for c in counts],
        )
        save(figure, "concurrency", "concurrency_throughput.png")
    batch = scenarios.get("remote", ScenarioResult()).series.get("batch_cost")
    if batch:
        figure, axis = plt.subplots(figsize=(6, 4))
        sizes = sorted(batch)
        axis.plot(sizes, [batch[s] for s in sizes], marker="o")
        axis.set(
            xscale="log",
            yscale="log",
            xlabel="cells per QueryBatch",
            ylabel="µs per cell",
            title="QueryBatch: cost per cell",
        )
        save(figure, "remote", "batch_cost.png")
    return made


def _table(figures: list[dict[str, Any]]) -> list[str]:
    lines = ["| figure | unit | n | min | p50 | p90 | p99 | p99.9 | max |", "|---|---|---|---|---|---|---|---|---|"]
    for f in figures:
        values = " | ".join(f"{f[k]:,.4g}" for k in ("min", "median", "p90", "p99", "p999", "max"))
        lines.append(f"| {f['name']} | {f['unit']} | {f['count']} | {values} |")
    return lines


def render(results: dict[str, Any], scenarios: dict[str, ScenarioResult], folder: Path) -> Path:
    """Write the plots and report.md into ``folder``; returns the report's path."""
    plots = _plots(scenarios, folder)
    machine, store = results["machine"], results.get("store")
    lines = [
        "# nasbench-server benchmark report",
        "",
        f"Created {results['created']}{' (quick run)' if results['quick'] else ''}. "
        f"Machine: {machine.get('processor')}, "
        f"{machine.get('cpus')} CPUs, {machine.get('memory_gb', '?')} GB, Python {machine.get('python')}.",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()) + ".",
    ]
    if store:
        lines.append(
            f"Store: {store['path']} ({store['cells']:,} cells, epochs {store['epochs']}, "
            f"{'synthetic' if store['source'].get('synthetic') else store['source'].get('name')})."
        )
    if results.get("target"):
        lines.append(f"Target deployment: {results['target']}.")
    lines += ["", "## Targets", "", "| scenario | target | measured | met |", "|---|---|---|---|"]
    for name, scenario in results["scenarios"].items():
        for t in scenario["targets"]:
            note = f" ({t['note']})" if t.get("note") else ""
            lines.append(
                f"| {name} | {t['name']} {t['target']} {t['unit']}{note} | {t['measured']:,.4g} | "
                f"{'met' if t['met'] else '**not met**'} |"
            )
    for name, scenario in results["scenarios"].items():
        lines += ["", f"## {name}", ""]
        if scenario["params"]:
            lines.append("Parameters: " + ", ".join(f"{k} = {v}" for k, v in scenario["params"].items()) + ".")
            lines.append("")
        lines += _table(scenario["figures"])
        if scenario["ratios"]:
            lines += ["", "Ratios: " + "; ".join(f"{k}: {v:,.2f}" for k, v in scenario["ratios"].items()) + "."]
        for plot in plots.get(name, []):
            lines += ["", f"![{plot}]({plot})"]
    path = folder / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
