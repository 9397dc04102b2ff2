"""Scenario ``notebook``: the search experiment of the original NASBench notebook, end to end, against the model
of the original lookup path running the very same code.

Random search and regularized evolution are written the way the notebook writes them: random matrices from
``np.random.choice`` pruned by ``ModelSpec``, mutations on ``original_matrix``/``original_ops`` with Python's
``random``, ``is_valid`` to reject cells outside the space, ``query`` for the accuracy, budget counters to stop.
Each side runs in a fresh process with the same seeds; since both read the same data and draw the same repeats,
both must walk the same trajectories (checked), so the whole-run times compare equal work.

Run a side alone::

    python -m nasbench_bench.notebook ours STORE SEEDS BUDGET [ROWS_FILE]
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from nasbench import api
from nasbench_bench import baseline
from nasbench_bench.results import Context, ScenarioResult
from nasbench_bench.specs import load_columns
from nasbench_bench.timing import summarize

INPUT, OUTPUT = "input", "output"
CONV3X3, CONV1X1, MAXPOOL3X3 = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"
NUM_VERTICES = 7
OP_SPOTS = NUM_VERTICES - 2
ALLOWED_OPS = [CONV3X3, CONV1X1, MAXPOOL3X3]
ALLOWED_EDGES = [0, 1]


class Experiment:
    """The notebook's search functions, over any object with the original API (ours or the baseline model)."""

    def __init__(self, nasbench: Any, model_spec: type) -> None:
        self.nasbench = nasbench
        self.model_spec = model_spec
        self.specs = 0  # ModelSpecs built
        self.keys: list[tuple[str, ...]] = []  # every queried cell, as (adjacency, ops) of the stored answer

    def random_spec(self) -> Any:
        while True:
            matrix = np.triu(np.random.choice(ALLOWED_EDGES, size=(NUM_VERTICES, NUM_VERTICES)), 1)
            ops = np.random.choice(ALLOWED_OPS, size=NUM_VERTICES).tolist()
            ops[0], ops[-1] = INPUT, OUTPUT
            spec = self.model_spec(matrix=matrix, ops=ops)
            self.specs += 1
            if self.nasbench.is_valid(spec):
                return spec

    def mutate_spec(self, old_spec: Any, mutation_rate: float = 1.0) -> Any:
        while True:
            matrix = copy.deepcopy(old_spec.original_matrix)
            ops = copy.deepcopy(old_spec.original_ops)
            for src in range(NUM_VERTICES - 1):
                for dst in range(src + 1, NUM_VERTICES):
                    if random.random() < mutation_rate / NUM_VERTICES:
                        matrix[src, dst] = 1 - matrix[src, dst]
            for vertex in range(1, NUM_VERTICES - 1):
                if random.random() < mutation_rate / OP_SPOTS:
                    others = [op for op in self.nasbench.config["available_ops"] if op != ops[vertex]]
                    ops[vertex] = random.choice(others)
            spec = self.model_spec(matrix, ops)
            self.specs += 1
            if self.nasbench.is_valid(spec):
                return spec

    def query(self, spec: Any) -> dict[str, Any]:
        data: dict[str, Any] = self.nasbench.query(spec)
        self.keys.append((data["module_adjacency"].tobytes().hex(), *data["module_operations"]))
        return data

    def random_search(self, budget: float) -> list[float]:
        self.nasbench.reset_budget_counters()
        best = [0.0]
        while True:
            data = self.query(self.random_spec())
            best.append(max(best[-1], data["validation_accuracy"]))
            if self.nasbench.get_budget_counters()[0] > budget:
                return best

    def evolution(self, budget: float, population_size: int = 50, tournament_size: int = 10) -> list[float]:
        self.nasbench.reset_budget_counters()
        best = [0.0]
        population: list[tuple[float, Any]] = []
        for _ in range(population_size):
            spec = self.random_spec()
            data = self.query(spec)
            population.append((data["validation_accuracy"], spec))
            best.append(max(best[-1], data["validation_accuracy"]))
            if self.nasbench.get_budget_counters()[0] > budget:
                return best
        while True:
            indices = sorted(random.sample(range(len(population)), tournament_size))
            parent = sorted((population[i] for i in indices), key=lambda member: member[0])[-1][1]
            spec = self.mutate_spec(parent)
            data = self.query(spec)
            population.append((data["validation_accuracy"], spec))
            population.pop(0)
            best.append(max(best[-1], data["validation_accuracy"]))
            if self.nasbench.get_budget_counters()[0] > budget:
                return best


def run_side(side: str, store_path: str, seeds: int, budget: float, rows: list[int] | None) -> dict[str, Any]:
    """In a fresh process: open one side, then time ``seeds`` rounds of random search and evolution."""
    started = time.perf_counter()
    if side == "ours":
        nasbench: Any = api.NASBench(store_path, seed=0)
        spec_class: type = api.ModelSpec
    else:
        nasbench = baseline.OriginalNASBench(load_columns(store_path), seed=0, rows=rows)
        spec_class = baseline.OriginalModelSpec
    opened, opened_cpu = time.perf_counter(), time.process_time()
    experiment = Experiment(nasbench, spec_class)
    trajectories = []
    for seed in range(seeds):
        np.random.seed(seed)
        random.seed(seed)
        trajectories.append(experiment.random_search(budget))
        trajectories.append(experiment.evolution(budget))
    finished, finished_cpu = time.perf_counter(), time.process_time()
    digest = hashlib.sha256(json.dumps([trajectories, experiment.keys]).encode()).hexdigest()
    return {
        "open_s": opened - started,
        "run_s": finished - opened,
        "run_cpu_s": finished_cpu - opened_cpu,
        "queries": len(experiment.keys),
        "specs": experiment.specs,
        "digest": digest,
        "cells": sorted({key for key in experiment.keys}) if side == "ours" else [],
    }


def _side_process(side: str, store: str, seeds: int, budget: float, rows_file: Path | None) -> dict[str, Any]:
    command = [sys.executable, "-m", "nasbench_bench.notebook", side, store, str(seeds), repr(budget)]
    if rows_file is not None:
        command.append(str(rows_file))
    figures: dict[str, Any] = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    return figures


def _rows_of_cells(store_path: str, cells: list[list[str]]) -> list[int]:
    """Rows (of the dataset's columns) of the cells a run queried (given as stored adjacency hex and ops)."""
    from nasbench import canonical

    keys = []
    for adjacency, *ops in cells:
        matrix = np.frombuffer(bytes.fromhex(adjacency), dtype=np.int8).reshape(len(ops), len(ops))
        keys.append(canonical.canonical_key(matrix, ops))
    every = load_columns(store_path).keys
    wanted = np.array(keys, dtype=np.uint64)
    positions = np.minimum(every.searchsorted(wanted), len(every) - 1)
    return sorted(int(row) for row in positions[every[positions] == wanted])


def run(context: Context) -> ScenarioResult:
    seeds, budget, runs = (1, 2e5, 1) if context.quick else (3, 5e6, 2)
    result = ScenarioResult(params={"seeds": seeds, "time_budget_s": budget, "processes_per_side": runs})
    store = str(context.store)
    ours, theirs = [], []
    rows_file = None
    for _ in range(runs):
        ours.append(_side_process("ours", store, seeds, budget, None))
        if context.quick and rows_file is None:
            # Loading the whole store into the baseline's dicts takes a minute: a smoke run loads the cells queried.
            rows_file = context.workdir / "notebook-rows.json"
            rows_file.write_text(json.dumps(_rows_of_cells(store, ours[-1]["cells"])))
        theirs.append(_side_process("baseline", store, seeds, budget, rows_file))
    digests = {outcome["digest"] for outcome in ours + theirs}
    if len(digests) != 1:
        raise RuntimeError("the notebook workload walked different trajectories on the two sides")
    result.params["queries"] = ours[0]["queries"]
    result.params["model_specs_built"] = ours[0]["specs"]
    result.params["same_trajectories"] = True
    result.figures.append(summarize("notebook workload, ours", [o["run_s"] for o in ours], "s"))
    result.figures.append(summarize("notebook workload, baseline", [o["run_s"] for o in theirs], "s"))
    result.figures.append(summarize("open, ours", [o["open_s"] for o in ours], "s"))
    result.figures.append(summarize("open, baseline (load into dicts)", [o["open_s"] for o in theirs], "s"))
    per_query = [o["run_s"] / o["queries"] * 1e6 for o in ours]
    result.figures.append(summarize("notebook workload per query, ours", per_query, "µs"))
    result.figures.append(summarize("notebook workload CPU time, ours", [o["run_cpu_s"] for o in ours], "s"))
    result.figures.append(summarize("notebook workload CPU time, baseline", [o["run_cpu_s"] for o in theirs], "s"))
    wall = statistics.median(o["run_s"] for o in theirs) / statistics.median(o["run_s"] for o in ours)
    cpu = statistics.median(o["run_cpu_s"] for o in theirs) / statistics.median(o["run_cpu_s"] for o in ours)
    result.ratios["notebook workload: baseline / ours"] = wall
    result.ratios["notebook workload CPU time: baseline / ours"] = cpu
    # CPU time is the work each side does; on a shared machine, wall time mostly measures the other jobs (on a
    # quiet machine the two agree).
    result.target(
        "notebook workload speedup over the baseline (CPU time)", cpu, "x", 3.0, at_most=False, note="wall in ratios"
    )
    return result


def _main(argv: list[str]) -> int:
    if len(argv) not in (4, 5) or argv[0] not in ("ours", "baseline"):
        print("usage: python -m nasbench_bench.notebook ours|baseline STORE SEEDS BUDGET [ROWS_FILE]", file=sys.stderr)
        return 2
    rows = json.loads(Path(argv[4]).read_text()) if len(argv) == 5 else None
    print(json.dumps(run_side(argv[0], argv[1], int(argv[2]), float(argv[3]), rows)))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
