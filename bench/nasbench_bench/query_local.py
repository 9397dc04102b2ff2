"""In-process query benchmark: the drop-in API over a store, side by side with a model of the original.

Measures, on one store: ``NASBench(store)`` construction time and RSS (fresh processes); the per-call cost of
``query`` on random cells of the space under random relabellings (``ModelSpec`` construction included, and
with prebuilt specs); the same for a faithful model of the original lookup path (``baseline.py``) loaded from
the same store, interleaved round by round; and ``query_batch`` per cell.

Run: ``python -m nasbench_bench.query_local STORE [--cells N] [--rounds R]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from nasbench import api
from nasbench.store.reader import Store
from nasbench_bench import baseline
from nasbench_bench.canonicalization import random_specs
from nasbench_bench.timing import interleaved, time_per_call

_CONSTRUCT = """
import json, resource, sys, time
start = time.perf_counter()
from nasbench import api
imported = time.perf_counter()
nasbench = api.NASBench(sys.argv[1])
built = time.perf_counter()
print(json.dumps({"import_s": imported - start, "construct_s": built - imported,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def construction(store: Path, runs: int = 5) -> dict[str, float]:
    """Medians over fresh processes: import time, construction time, peak RSS after construction."""
    results = [
        json.loads(
            subprocess.run([sys.executable, "-c", _CONSTRUCT, str(store)], capture_output=True, check=True).stdout
        )
        for _ in range(runs)
    ]
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


def run(store_path: Path, cells: int = 1000, rounds: int = 21) -> dict[str, object]:
    report: dict[str, object] = {"store": str(store_path), "construction": construction(store_path)}
    specs = random_specs(cells, seed=1)
    nasbench = api.NASBench(store_path, seed=0)
    epochs = max(nasbench.valid_epochs)
    started = time.perf_counter()
    store = Store.open(store_path)
    original = baseline.OriginalNASBench(store, seed=0)
    report["baseline_load_s"] = time.perf_counter() - started
    prebuilt = [api.ModelSpec(m, o) for m, o in specs]
    prebuilt_original = [baseline.OriginalModelSpec(m, list(o)) for m, o in specs]
    timings = interleaved(
        {
            "query, ModelSpec included": (lambda s: nasbench.query(api.ModelSpec(*s), epochs), specs),
            "baseline query, ModelSpec included": (
                lambda s: original.query(baseline.OriginalModelSpec(s[0], list(s[1])), epochs),
                specs,
            ),
            "query, prebuilt ModelSpec": (lambda s: nasbench.query(s, epochs), prebuilt),
            "baseline query, prebuilt ModelSpec": (lambda s: original.query(s, epochs), prebuilt_original),
        },
        rounds=rounds,
    )
    batch = time_per_call(
        "query_batch of 1000, per cell", lambda chunk: nasbench.query_batch(chunk, epochs), [prebuilt[:1000]], rounds
    )
    report["timings_us"] = {name: t.median_us for name, t in timings.items()}
    report["timings_us"]["query_batch per cell"] = batch.median_us / 1000
    ours = timings["query, ModelSpec included"].median_us
    theirs = timings["baseline query, ModelSpec included"].median_us
    report["speedup"] = theirs / ours
    report["speedup_prebuilt"] = (
        timings["baseline query, prebuilt ModelSpec"].median_us / timings["query, prebuilt ModelSpec"].median_us
    )
    store.close()
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--cells", type=int, default=1000, help="random relabelled cells, the same for both")
    parser.add_argument("--rounds", type=int, default=21, help="interleaved rounds; medians are reported")
    args = parser.parse_args(argv)
    report = run(args.store, args.cells, args.rounds)
    c = report["construction"]
    print(f"store {report['store']}")
    construct_ms, import_ms = c["construct_s"] * 1000, c["import_s"] * 1000
    print(f"NASBench(store): {construct_ms:.1f} ms (import {import_ms:.0f} ms), RSS {c['rss_mb']:.0f} MB")
    print(f"baseline load (dicts of per-hash dicts from the same store): {report['baseline_load_s']:.1f} s")
    for name, value in report["timings_us"].items():
        print(f"  {name:<40} {value:>9.2f} µs")
    print(f"speedup, ModelSpec included: {report['speedup']:.1f}x  (prebuilt specs: {report['speedup_prebuilt']:.1f}x)")


if __name__ == "__main__":
    main()
