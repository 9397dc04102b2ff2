"""Builder benchmark: synthetic full-scale files in the original format, built into stores.

For each file kind (``108``: 1,270,872 records like nasbench_only108; ``full``: 5,083,488 records like
nasbench_full) it measures: writing the file, the build (wall time, records/s, peak RSS of the build process and
its workers), the store size, the time to open the store (median of 20) and to verify it; then it checks the
round trip: the store equals the generated dataset bit for bit.

Run: ``python -m nasbench_bench.build [--kinds 108,full] [--workdir DIR]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nasbench import space
from nasbench.store.reader import Store
from nasbench_builder import synthetic, verify

KINDS = {"108": (108,), "full": synthetic.ALL_EPOCHS}
TARGETS_S = {"108": 30.0, "full": 120.0}


@dataclass
class BuildResult:
    kind: str
    records: int
    file_mb: float
    synth_s: float
    build_s: float
    peak_rss_mb: float
    store_mb: float
    open_ms: float
    verify_s: float
    round_trip: bool

    def rows(self) -> list[str]:
        target = TARGETS_S[self.kind]
        met = "met" if self.build_s <= target else "NOT met"
        return [
            f"{self.kind:>4}: {self.records:,} records, file {self.file_mb:,.0f} MB (written in {self.synth_s:.1f} s)",
            f"      build {self.build_s:.1f} s = {self.records / self.build_s:,.0f} records/s "
            f"(target <= {target:.0f} s: {met}); peak RSS {self.peak_rss_mb:,.0f} MB",
            f"      store {self.store_mb:,.0f} MB; open {self.open_ms:.1f} ms (median of 20); "
            f"verify {self.verify_s:.1f} s; round trip bit-identical: {self.round_trip}",
        ]


def _run_build(source: Path, store: Path) -> tuple[float, float]:
    """Wall time and peak RSS (MB) of ``nasbench build`` in a child process (workers included)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "nasbench._cli", "build", str(source), str(store), "--force"],
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"build of {source} failed")
    return elapsed, usage.ru_maxrss / 1024.0


def bench_kind(kind: str, workdir: Path, table: space.SpaceTable) -> BuildResult:
    epochs = KINDS[kind]
    source = workdir / f"synthetic_{kind}.tfrecord"
    store_path = workdir / f"synthetic_{kind}.lmdb"
    started = time.perf_counter()
    data = synthetic.synthesize(epochs, table=table)
    records = synthetic.write_tfrecord(data, source)
    synth_s = time.perf_counter() - started
    build_s, peak = _run_build(source, store_path)
    opens = []
    for _ in range(20):
        begin = time.perf_counter()
        store = Store.open(store_path)
        opens.append((time.perf_counter() - begin) * 1000)
        store.close()
    begin = time.perf_counter()
    verify.verify_store(store_path, table=table)
    verify_s = time.perf_counter() - begin
    store = Store.open(store_path)
    expected = data.dataset
    round_trip = (
        np.array_equal(store.hashes, expected.hashes)
        and np.array_equal(store.keys, expected.keys)
        and np.array_equal(store.representatives, expected.representatives)
        and np.array_equal(store.parameters, expected.parameters)
        and store.metrics.tobytes() == expected.metrics.tobytes()
    )
    store.close()
    return BuildResult(
        kind=kind,
        records=records,
        file_mb=source.stat().st_size / 1e6,
        synth_s=synth_s,
        build_s=build_s,
        peak_rss_mb=peak,
        store_mb=store_path.stat().st_size / 1e6,
        open_ms=statistics.median(opens),
        verify_s=verify_s,
        round_trip=round_trip,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", default="108,full", help="comma-separated: 108, full")
    parser.add_argument("--workdir", type=Path, default=None, help="where to write the files (default: a temp dir)")
    args = parser.parse_args(argv)
    table = space.load_space()
    with tempfile.TemporaryDirectory(dir=args.workdir) as folder:
        for kind in args.kinds.split(","):
            for row in bench_kind(kind, Path(folder), table).rows():
                print(row, flush=True)


if __name__ == "__main__":
    main()
