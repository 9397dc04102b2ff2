"""Scenario ``memory``: many optimizer processes on one machine, each querying cells it has never seen through the
drop-in API over one store, all alive at once. Measured: their proportional set size (PSS: each shared page split
among the processes mapping it, so the sum over processes counts it once), and how much of it is the shared key
table and the store's pages. Read from ``/proc/<pid>/smaps`` (Linux)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from nasbench_bench.results import Context, ScenarioResult
from nasbench_bench.specs import load_columns, random_specs
from nasbench_bench.timing import summarize

_CHILD = """
import json, sys
import numpy as np
from nasbench import api
store, seed, specs_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(specs_file) as handle:
    specs = [(np.array(matrix, dtype=np.int8), ops) for matrix, ops in json.load(handle)]
nasbench = api.NASBench(store, seed=seed)
epochs = max(nasbench.valid_epochs)
for matrix, ops in specs:
    nasbench.query(api.ModelSpec(matrix, ops), epochs)
del specs
print("ready", flush=True)
sys.stdin.read()  # stay alive, with everything mapped, until the parent has measured
"""
TARGET_MB = 530.0  # the 16-process figure before the key table was shared
_KEY_TABLE = "keytable-v"  # the name of the key table file in the cache folder


def mapped_pss_kb(pid: int) -> dict[str, int]:
    """PSS (kB) of a process by mapped file path ('' for anonymous memory), summed over its mappings."""
    found: dict[str, int] = {}
    current = ""
    with open(f"/proc/{pid}/smaps") as smaps:
        for line in smaps:
            first = line.split(maxsplit=1)[0]
            if not first.endswith(":"):  # a mapping header: address perms offset dev inode [path]
                fields = line.split(maxsplit=5)
                current = fields[5].strip() if len(fields) == 6 else ""
            elif first == "Pss:":
                found[current] = found.get(current, 0) + int(line.split()[1])
    return found


def run(context: Context) -> ScenarioResult:
    processes, cells = (4, 500) if context.quick else (16, 3000)
    result = ScenarioResult(params={"processes": processes, "never_seen_cells_per_process": cells})
    store = str(Path(context.store).resolve())
    data = load_columns(store)
    for seed in range(processes):  # chosen here, so the measured processes touch nothing but their queries
        specs = [(matrix.tolist(), ops) for matrix, ops in random_specs(data, cells, seed=1000 + seed)]
        (context.workdir / f"memory-specs-{seed}.json").write_text(json.dumps(specs))
    del data
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, store, str(seed), str(context.workdir / f"memory-specs-{seed}.json")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for seed in range(processes)
    ]
    try:
        for child in children:
            if child.stdout is None or child.stdout.readline().strip() != "ready":
                raise RuntimeError(f"memory: client process {child.pid} did not finish its queries")
        measured = [mapped_pss_kb(child.pid) for child in children]
    finally:
        for child in children:
            if child.stdin is not None:
                child.stdin.close()
        for child in children:
            child.wait(timeout=60)
            if child.stdout is not None:
                child.stdout.close()
    totals = [sum(m.values()) / 1024 for m in measured]
    table_path = next((path for m in measured for path in m if Path(path).name.startswith(_KEY_TABLE)), None)
    table_mb = [m.get(table_path, 0) / 1024 for m in measured] if table_path else [0.0] * processes
    store_mb = [m.get(store, 0) / 1024 for m in measured]
    private_mb = [sum(v for k, v in m.items() if not k.startswith("/")) / 1024 for m in measured]
    result.figures.append(summarize(f"total PSS of {processes} client processes", [sum(totals)], "MB"))
    result.figures.append(summarize("PSS per client process", totals, "MB"))
    result.figures.append(summarize("anonymous (private) PSS per process", private_mb, "MB"))
    result.figures.append(summarize("store pages, PSS summed over processes", [sum(store_mb)], "MB"))
    result.figures.append(summarize("key table, PSS summed over processes", [sum(table_mb)], "MB"))
    result.params["key_table_file_mb"] = round(os.stat(table_path).st_size / 2**20, 2) if table_path else 0.0
    result.params["key_table_shared"] = table_path is not None
    if not context.quick:
        result.target(f"total PSS, {processes} processes", sum(totals), "MB", TARGET_MB, at_most=True)
    result.target(
        "key table counted once (PSS summed over processes)",
        sum(table_mb),
        "MB",
        result.params["key_table_file_mb"] * 1.01,
        at_most=True,
    )
    return result
