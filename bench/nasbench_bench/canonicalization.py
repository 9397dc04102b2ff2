"""Scenario ``canonicalization``: the per-call cost of building a spec, of the original hash, and of the canonical
key, on random relabelled cells; the original hash is the baseline the key replaces."""

from __future__ import annotations

import numpy as np

from nasbench import canonical
from nasbench.lib import config
from nasbench.lib.model_spec import ModelSpec
from nasbench_bench.results import Context, ScenarioResult
from nasbench_bench.specs import load_columns, random_specs
from nasbench_bench.timing import per_call


def run(context: Context) -> ScenarioResult:
    cells, rounds = (300, 5) if context.quick else (2000, 15)
    specs = random_specs(load_columns(context.store), cells, seed=0)
    lists = [(m.tolist(), o) for m, o in specs]
    built = [ModelSpec(m, o) for m, o in specs]
    available = list(config.AVAILABLE_OPS)

    def searched_key(spec: tuple[np.ndarray, list[str]]) -> int:
        """The key without the table: a search over vertex orders, structure memo cleared."""
        canonical.canonical_structure.cache_clear()
        return canonical.solve(canonical.cell_code(*spec))

    result = ScenarioResult(params={"cells": cells, "rounds": rounds})
    result.figures = [
        per_call("ModelSpec(int8 ndarray, ops)", lambda s: ModelSpec(*s), specs, rounds),
        per_call("ModelSpec(nested lists, ops)", lambda s: ModelSpec(*s), lists, rounds),
        per_call("hash_spec (the original MD5 hash)", lambda s: s.hash_spec(available), built[: cells // 4], 3),
        per_call("canonical_key(int8 ndarray, ops) (key table)", lambda s: canonical.canonical_key(*s), specs, rounds),
        per_call("key by search over vertex orders, memo cleared", searched_key, specs, rounds),
    ]
    key, original = result.figures[3].median, result.figures[2].median
    result.ratios["canonical key vs original hash"] = original / key
    result.ratios["key table vs search over vertex orders"] = result.figures[4].median / key
    result.target("canonical key per call", key, "µs", 10.0, at_most=True, note="a few microseconds")
    return result
