"""Reference cells (the README's Inception cell, the cells of issues #23 and #32) and helpers shared by the tests."""

from __future__ import annotations

import numpy as np

from nasbench import api

I, O = api.INPUT, api.OUTPUT
C3, C1, MP = api.CONV3X3, api.CONV1X1, api.MAXPOOL3X3
AVAILABLE = [C3, C1, MP]

INCEPTION = (
    np.array(
        [
            [0, 1, 1, 1, 0, 1, 0],
            [0, 0, 0, 0, 0, 0, 1],
            [0, 0, 0, 0, 0, 0, 1],
            [0, 0, 0, 0, 1, 0, 0],
            [0, 0, 0, 0, 0, 0, 1],
            [0, 0, 0, 0, 0, 0, 1],
            [0, 0, 0, 0, 0, 0, 0],
        ]
    ),
    [I, C1, C3, C3, C3, MP, O],
)
INCEPTION_HASH = "28cfc7874f6d200472e1a9dcd8650aa0"
ISSUE_23 = (
    [
        [0, 1, 1, 0, 0, 1, 1],
        [0, 0, 0, 0, 0, 1, 0],
        [0, 0, 0, 1, 0, 0, 0],
        [0, 0, 0, 0, 1, 0, 0],
        [0, 0, 0, 0, 0, 1, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0] * 7,
    ],
    [I, C1, C3, MP, C3, C3, O],
)
ISSUE_32 = (
    [
        [0, 1, 0, 1, 0, 1, 1],
        [0, 0, 0, 0, 1, 1, 1],
        [0, 0, 0, 1, 0, 1, 1],
        [0, 0, 0, 0, 0, 1, 1],
        [0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 0],
    ],
    [I, MP, C1, C3, C3, C3, O],
)
SEED_0_REPEATS = [1, 1, 0, 1, 2, 1, 1, 1, 1, 1, 2, 0]


def spec(matrix, ops) -> api.ModelSpec:
    return api.ModelSpec(matrix=matrix, ops=ops)


def repeat_index(nasbench: api.NASBench, model_spec: api.ModelSpec, result: dict, epochs: int, halfway: bool) -> int:
    """Which of the three stored repeats a query returned (the synthetic repeats all differ in time)."""
    _, computed = nasbench.get_metrics_from_spec(model_spec)
    key = "halfway_training_time" if halfway else "final_training_time"
    return [run[key] for run in computed[epochs]].index(result["training_time"])
