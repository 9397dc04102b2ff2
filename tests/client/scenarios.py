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


def reference_hash(matrix, labeling) -> str:
    """The original ``hash_module`` (google-research/nasbench graph_util.py) written out from its description,
    independently of ``nasbench.lib.graph_util``: an oracle for inputs whose hash no test vector lists."""
    import hashlib

    matrix = np.asarray(matrix)
    size = matrix.shape[0]
    in_degrees, out_degrees = np.sum(matrix, 0).tolist(), np.sum(matrix, 1).tolist()
    hashes = [hashlib.md5(str((out_degrees[v], in_degrees[v], labeling[v])).encode()).hexdigest() for v in range(size)]
    for _ in range(size):
        hashes = [
            hashlib.md5(
                (
                    "".join(sorted(hashes[w] for w in range(size) if matrix[w, v]))
                    + "|"
                    + "".join(sorted(hashes[w] for w in range(size) if matrix[v, w]))
                    + "|"
                    + hashes[v]
                ).encode()
            ).hexdigest()
            for v in range(size)
        ]
    return hashlib.md5(str(sorted(hashes)).encode()).hexdigest()


def spec_hash(model_spec: api.ModelSpec) -> str:
    labels = [-1] + [AVAILABLE.index(op) for op in model_spec.ops[1:-1]] + [-2]
    return reference_hash(model_spec.matrix, labels)


def neighbour_hashes(model_spec: api.ModelSpec) -> set[str]:
    """The definition, literally: every single edit of the (pruned) cell that stays in the space."""
    matrix, ops = np.array(model_spec.matrix), list(model_spec.ops)
    size = len(ops)
    candidates = []
    for src in range(size):
        for dst in range(src + 1, size):
            flipped = matrix.copy()
            flipped[src, dst] = 1 - flipped[src, dst]
            candidates.append(api.ModelSpec(flipped, ops))
    for vertex in range(1, size - 1):
        for op in AVAILABLE:
            if op != ops[vertex]:
                candidates.append(api.ModelSpec(matrix, [*ops[:vertex], op, *ops[vertex + 1 :]]))
    found = set()
    for candidate in candidates:
        if candidate.valid_spec and len(candidate.ops) <= 7 and int(candidate.matrix.sum()) <= 9:
            found.add(spec_hash(candidate))
    found.discard(spec_hash(model_spec))
    return found
