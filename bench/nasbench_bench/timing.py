"""Measuring: per-call costs over rounds, interleaved comparisons, and the distribution of samples.

Every figure a benchmark reports is a ``Stats``: its unit, how many samples, and min / median / p90 / p99 /
p99.9 / max. For per-call costs a sample is one round (many calls, averaged), so machine noise shows up as
spread between rounds; for latencies a sample is one call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Stats:
    """Distribution of samples in one unit."""

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
            f"{self.name:<44} p50 {self.median:>10.2f}  p90 {self.p90:>10.2f}  p99 {self.p99:>10.2f}  "
            f"max {self.max:>10.2f} {self.unit}  (n={self.count})"
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(name: str, samples: Sequence[float], unit: str) -> Stats:
    """Percentiles of samples (linear interpolation), in ``unit``."""
    values = np.asarray(samples, dtype=float)
    if not len(values):
        raise ValueError(f"{name}: no samples")
    p50, p90, p99, p999 = map(float, np.percentile(values, [50, 90, 99, 99.9]))
    return Stats(name, unit, len(values), float(values.min()), p50, p90, p99, p999, float(values.max()))


def per_call(name: str, func: Callable[[Any], Any], inputs: Sequence[Any], rounds: int = 15, warmup: int = 1) -> Stats:
    """µs per call: ``func`` on every input once per round; each round's average is one sample."""
    return interleaved({name: (func, inputs)}, rounds, warmup)[name]


def interleaved(
    cases: dict[str, tuple[Callable[[Any], Any], Sequence[Any]]], rounds: int = 15, warmup: int = 1
) -> dict[str, Stats]:
    """µs per call of several cases, round by round, alternating, so machine noise hits them alike."""
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
    return {name: summarize(name, values, "µs") for name, values in samples.items()}
