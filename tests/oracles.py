"""Independent answers the tests compare the product with: computed the slow, obvious way, from the definitions."""

from __future__ import annotations

import itertools

import numpy as np

from nasbench import canonical
from nasbench._cells import codes, domain
from nasbench.errors import OutOfDomainError
from nasbench.lib import config
from nasbench.lib.model_spec import ModelSpec


def neighbor_keys(key: int) -> list[int]:
    """Canonical keys of the cells one edit away from ``key``, by definition: every edge flipped and every interior op
    changed, each built as a ``ModelSpec`` (which prunes it), checked by the original rules, named by its key;
    de-duplicated, the cell itself excluded, ascending."""
    cfg = config.build_config()
    matrix, ops = canonical.decode(key)
    candidates = []
    for src, dst in itertools.combinations(range(len(matrix)), 2):
        flipped = matrix.copy()
        flipped[src, dst] ^= 1
        candidates.append((flipped, ops))
    for vertex, current in enumerate(ops[1:-1], start=1):
        for op in config.AVAILABLE_OPS:
            if op != current:
                candidates.append((matrix, [*ops[:vertex], op, *ops[vertex + 1 :]]))
    found = set()
    for candidate_matrix, candidate_ops in candidates:
        try:
            neighbor = domain.check_spec(ModelSpec(candidate_matrix, candidate_ops), cfg)
        except OutOfDomainError:
            continue
        if neighbor is not None and neighbor != key:
            found.add(neighbor)
    return sorted(found)


def labelled_graphs(num_vertices: int) -> tuple[np.ndarray, np.ndarray]:
    """Every labelled graph of the space with ``num_vertices`` vertices in the original enumeration's order, and its
    canonical key by the search over interior orders (``codes.canonical_structure``): per structure its minimal
    relabellings, per labelling the smallest relabelled label code. Independent of the key table."""
    interior = num_vertices - 2
    rows = list(itertools.product(range(len(config.AVAILABLE_OPS)), repeat=interior))
    labellings = np.array(rows, dtype=np.int64).reshape(len(rows), interior)
    weights = 4 ** np.arange(interior - 1, -1, -1, dtype=np.int64)
    own = labellings @ weights
    found_codes, found_keys = [], []
    for bits in codes.structures(num_vertices).tolist():
        best_bits, orders = codes.canonical_structure(num_vertices, bits)
        best = np.minimum.reduce([labellings[:, list(order)] @ weights for order in orders])
        found_codes.append(own.astype(np.uint64) | np.uint64(codes.pack(num_vertices, bits, ())))
        found_keys.append(best.astype(np.uint64) | np.uint64(codes.pack(num_vertices, best_bits, ())))
    return np.concatenate(found_codes), np.concatenate(found_keys)
