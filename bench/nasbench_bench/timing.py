"""Per-call timing: many calls per round, many rounds, medians and percentiles of the per-call cost."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Timing:
    """Per-call cost in microseconds over ``rounds`` rounds of ``calls`` calls each."""

    name: str
    rounds: int
    calls: int
    median_us: float
    min_us: float
    max_us: float

    def row(self) -> str:
        return f"{self.name:<44} {self.median_us:>10.2f} µs  (min {self.min_us:.2f}, max {self.max_us:.2f})"


def time_per_call(
    name: str, func: Callable[[Any], Any], inputs: Sequence[Any], rounds: int = 15, warmup: int = 1
) -> Timing:
    """Call ``func`` on every input once per round; report the per-call cost of each round."""
    for _ in range(warmup):
        for item in inputs:
            func(item)
    per_call = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for item in inputs:
            func(item)
        per_call.append((time.perf_counter_ns() - start) / len(inputs) / 1000.0)
    return Timing(name, rounds, len(inputs), statistics.median(per_call), min(per_call), max(per_call))


def interleaved(
    cases: dict[str, tuple[Callable[[Any], Any], Sequence[Any]]], rounds: int = 15, warmup: int = 1
) -> dict[str, Timing]:
    """Time several cases round by round, alternating, so that machine noise hits them alike."""
    for func, inputs in cases.values():
        for _ in range(warmup):
            for item in inputs:
                func(item)
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, (func, inputs) in cases.items():
            start = time.perf_counter_ns()
            for item in inputs:
                func(item)
            samples[name].append((time.perf_counter_ns() - start) / len(inputs) / 1000.0)
    return {
        name: Timing(name, rounds, len(cases[name][1]), statistics.median(v), min(v), max(v))
        for name, v in samples.items()
    }


@dataclass(frozen=True)
class Stats:
    """Distribution of samples in one unit: the figures every report shows."""

    name: str
    unit: str
    count: int
    min: float
    median: float
    p90: float
    p99: float
    p999: float
    max: float

    def row(self) -> str:
        return (
            f"{self.name:<44} p50 {self.median:>9.1f}  p90 {self.p90:>9.1f}  p99 {self.p99:>9.1f}  "
            f"max {self.max:>9.1f} {self.unit}  (n={self.count})"
        )


def summarize(name: str, samples: Sequence[float], unit: str) -> Stats:
    """Percentiles of samples (linear interpolation), in ``unit``."""
    import numpy as np

    values = np.asarray(samples, dtype=float)
    q = np.percentile(values, [50, 90, 99, 99.9]) if len(values) else [float("nan")] * 4
    return Stats(
        name,
        unit,
        len(values),
        float(values.min()),
        float(q[0]),
        float(q[1]),
        float(q[2]),
        float(q[3]),
        float(values.max()),
    )
