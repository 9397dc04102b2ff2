"""Per-call cost of spec construction, the original hash and the canonical key, on random relabelled cells.

Run: ``python -m nasbench_bench.canonicalization [--cells N] [--rounds R]``
"""

from __future__ import annotations

import argparse
import random

import numpy as np

from nasbench import canonical, space
from nasbench.lib import config
from nasbench.lib.model_spec import ModelSpec
from nasbench_bench.timing import Timing, time_per_call


def random_specs(count: int, seed: int = 0) -> list[tuple[np.ndarray, list[str]]]:
    """Random cells of the space, each under a random upper-triangular relabelling, as int8 arrays."""
    rng = random.Random(seed)
    keys = space.enumerate_cells().keys
    specs = []
    for index in rng.sample(range(len(keys)), count):
        matrix, ops = canonical.decode(int(keys[index]))
        specs.append(_relabel(matrix, ops, rng))
    return specs


def _relabel(matrix: np.ndarray, ops: list[str], rng: random.Random) -> tuple[np.ndarray, list[str]]:
    size = len(matrix)
    indegree = matrix.sum(axis=0).tolist()
    ready, order = [0], []
    while ready:
        choices = [v for v in ready if v != size - 1] or ready
        v = rng.choice(choices)
        ready.remove(v)
        order.append(v)
        for w in np.flatnonzero(matrix[v]).tolist():
            indegree[w] -= 1
            if indegree[w] == 0:
                ready.append(w)
    return matrix[np.ix_(order, order)].copy(), [ops[v] for v in order]


def run(cells: int = 2000, rounds: int = 15) -> list[Timing]:
    specs = random_specs(cells)
    lists = [(m.tolist(), o) for m, o in specs]
    built = [ModelSpec(m, o) for m, o in specs]
    available = list(config.AVAILABLE_OPS)
    results = [
        time_per_call("ModelSpec(int8 ndarray, ops)", lambda s: ModelSpec(*s), specs, rounds),
        time_per_call("ModelSpec(nested lists, ops)", lambda s: ModelSpec(*s), lists, rounds),
        time_per_call("spec.hash_spec(available_ops)  [original]", lambda s: s.hash_spec(available), built, 3),
        time_per_call("canonical_key(int8 ndarray, ops)", lambda s: canonical.canonical_key(*s), specs, rounds),
    ]

    def cold_key(spec: tuple[np.ndarray, list[str]]) -> int:
        canonical.canonicalize.cache_clear()
        return canonical.canonical_key(*spec)

    results.append(time_per_call("canonical_key, labelled-cell cache cold", cold_key, specs, rounds))
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=2000, help="random relabelled cells per round")
    parser.add_argument("--rounds", type=int, default=15, help="rounds; the median per-call cost is reported")
    args = parser.parse_args(argv)
    print(f"per-call cost, median of rounds over {args.cells} random relabelled cells of the space")
    for timing in run(args.cells, args.rounds):
        print(timing.row())


if __name__ == "__main__":
    main()
