"""What a benchmark run produces: per scenario, figures (distributions with units), ratios to baselines, and
targets (measured against the design's numbers, met or not); plus the machine, versions and store.

``validate`` checks a results.json for completeness and internal consistency (tests use it).
"""

from __future__ import annotations

import datetime
import importlib.metadata
import itertools
import json
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nasbench import files
from nasbench_bench.timing import Stats

SCHEMA = 1
SCENARIO_KEYS = ("figures", "ratios", "targets", "params")
FIGURE_KEYS = ("name", "unit", "count", "min", "median", "p90", "p99", "p999", "max")


@dataclass
class Context:
    """What every scenario may use."""

    quick: bool
    store: Path  # the store local scenarios read (and own servers serve)
    workdir: Path  # scratch space, removed after the run
    target: str | None = None  # a deployment to measure instead of starting servers
    address: str = ""  # the server the remote scenarios use: the target, or one this run started
    server_pids: list[int] = field(default_factory=list)  # its processes, when this run started it (for RSS)
    load: dict[str, Any] = field(default_factory=dict)  # load-generator options (see load.py)
    server_workers: int = 1


@dataclass
class ScenarioResult:
    """One scenario's output; ``series`` feeds the plots and stays out of results.json."""

    figures: list[Stats] = field(default_factory=list)
    ratios: dict[str, float] = field(default_factory=dict)
    targets: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    series: dict[str, Any] = field(default_factory=dict)

    def target(self, name: str, measured: float, unit: str, bound: float, at_most: bool, note: str = "") -> None:
        """Record a design target: ``measured`` must be <= ``bound`` (``at_most``) or >= ``bound``."""
        met = measured <= bound if at_most else measured >= bound
        self.targets.append(
            {
                "name": name,
                "measured": measured,
                "unit": unit,
                "target": f"{'<=' if at_most else '>='} {bound:g}",
                "met": bool(met),
                "note": note,
            }
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "figures": [figure.as_dict() for figure in self.figures],
            "ratios": self.ratios,
            "targets": self.targets,
            "params": self.params,
        }


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            models = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
        info["processor"] = models[0] if models else info["processor"]
        with open("/proc/meminfo") as meminfo:
            info["memory_gb"] = round(int(meminfo.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    return info


def versions() -> dict[str, str]:
    found = {}
    for package in ("nasbench-server", "grpcio", "protobuf", "numpy", "lmdb", "xxhash", "uvloop", "matplotlib"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "absent"
    return found


def assemble(context: Context, scenarios: dict[str, ScenarioResult], manifest: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "quick": context.quick,
        "target": context.target,
        "machine": machine(),
        "versions": versions(),
        "store": None
        if manifest is None
        else {
            "path": str(context.store),
            "cells": manifest["cells"],
            "epochs": manifest["epochs"],
            "checksum": manifest["checksum"],
            "source": manifest["source"],
        },
        "scenarios": {name: result.as_dict() for name, result in scenarios.items()},
    }


def write(results: dict[str, Any], folder: Path) -> Path:
    path = folder / "results.json"
    files.write_atomically(path, lambda handle: handle.write(json.dumps(results, indent=2, sort_keys=False).encode()))
    return path


def validate(results: dict[str, Any]) -> list[str]:
    """Problems with a results.json (empty when complete and consistent)."""
    problems = []
    for key in ("schema", "machine", "versions", "scenarios"):
        if key not in results:
            problems.append(f"missing {key}")
    for name, scenario in results.get("scenarios", {}).items():
        for key in SCENARIO_KEYS:
            if key not in scenario:
                problems.append(f"{name}: missing {key}")
        if not scenario.get("figures"):
            problems.append(f"{name}: no figures")
        for figure in scenario.get("figures", []):
            label = f"{name}/{figure.get('name')}"
            missing = [key for key in FIGURE_KEYS if key not in figure]
            if missing:
                problems.append(f"{label}: missing {missing}")
                continue
            if not figure["unit"]:
                problems.append(f"{label}: no unit")
            if figure["count"] < 1:
                problems.append(f"{label}: count {figure['count']}")
            ordered = [figure[key] for key in ("min", "median", "p90", "p99", "p999", "max")]
            if any(b < a * (1 - 1e-9) - 1e-12 for a, b in itertools.pairwise(ordered)):
                problems.append(f"{label}: percentiles out of order {ordered}")
        for target in scenario.get("targets", []):
            if not {"name", "measured", "unit", "target", "met"} <= set(target):
                problems.append(f"{name}: incomplete target {target}")
        for ratio_name, ratio in scenario.get("ratios", {}).items():
            if not ratio > 0:
                problems.append(f"{name}: ratio {ratio_name} = {ratio}")
    return problems
