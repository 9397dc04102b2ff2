"""Re-check a store: every array checksum, then the invariants that tie the columns together."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from nasbench import canonical, space
from nasbench._store import layout
from nasbench._store.reader import Store
from nasbench.errors import StoreCorruptError


def verify_store(path: str | os.PathLike[str], table: space.SpaceTable | None = None) -> dict[str, Any]:
    """Open ``path`` verifying checksums, check its invariants; returns the manifest.

    Raises:
      StoreCorruptError: naming the first invariant that does not hold.
      StoreNotFoundError, StoreSchemaError: as ``Store.open``.
    """
    store = Store.open(path, verify=True)
    try:
        _check(store, table if table is not None else space.load_space())
        return store.manifest
    finally:
        store.close()


def _fail(store: Store, message: str) -> None:
    raise StoreCorruptError(f"{store.path}: {message}")


def _is_permutation(order: np.ndarray, cells: int) -> bool:
    return np.array_equal(np.sort(order), np.arange(cells))


def _check(store: Store, table: space.SpaceTable) -> None:
    keys = store.keys
    if list(store.epochs) != sorted(set(store.epochs)):
        _fail(store, f"the epochs {list(store.epochs)} are not ascending and distinct")
    # index columns are checked to be permutations before they index anything (no IndexError on damage)
    if not _is_permutation(store.key_order, store.cells):
        _fail(store, "the key index is not a permutation of the rows")
    sorted_keys = keys[store.key_order]
    if not np.all(sorted_keys[1:] > sorted_keys[:-1]):
        _fail(store, "canonical keys are not unique, or the key index is not sorted")
    if not _is_permutation(store.hash_order, store.cells):
        _fail(store, "the hash index is not a permutation of the rows")
    ordered = store.hashes[store.hash_order]
    if not np.array_equal(layout.hash_prefix(ordered), store.sorted_hash_prefix) or not np.array_equal(
        np.lexsort(ordered.T[::-1]), np.arange(store.cells)
    ):
        _fail(store, "the hash index is not sorted by hash")
    structure_rows = store.structure_rows
    if int((structure_rows >= 0).sum()) != store.cells or not all(
        store.row_of_key(int(key)) == row for row, key in enumerate(keys.tolist())
    ):
        _fail(store, "the structure index does not map every key to its row")
    vertices, edges = canonical.vertices_and_edges(keys)
    sizes = np.flatnonzero((vertices < canonical.MIN_VERTICES) | (vertices > canonical.MAX_VERTICES))
    if sizes.size:
        _fail(store, f"row {int(sizes[0])}: key {int(keys[sizes[0]])} is not the code of a cell of 2 to 7 vertices")
    if not np.array_equal(store.num_vertices, vertices) or not np.array_equal(store.num_edges, edges):
        _fail(store, "vertex or edge counts do not match the keys")
    # a representative of another size is no isomorph (and is not canonicalized: a garbage size would not end)
    mismatch = np.flatnonzero(canonical.vertices_and_edges(store.representatives)[0] != vertices)
    if not mismatch.size:
        canonical_of_representatives = np.array(
            [canonical.canonicalize(int(code)) for code in store.representatives.tolist()], dtype=np.uint64
        )
        mismatch = np.flatnonzero(canonical_of_representatives != keys)
    if mismatch.size:
        _fail(store, f"row {int(mismatch[0])}: the stored representative is not an isomorph of the row's cell")
    positions = np.minimum(np.searchsorted(table.keys, keys), len(table.keys) - 1)
    outside = np.flatnonzero(table.keys[positions] != keys)
    if outside.size:
        _fail(store, f"row {int(outside[0])}: the cell is not in the search space")
    wrong_hash = np.flatnonzero(np.any(table.hashes[positions] != store.hashes, axis=1))
    if wrong_hash.size:
        _fail(store, f"row {int(wrong_hash[0])}: hash {store.hash_of_row(int(wrong_hash[0]))} does not match its cell")
    metrics = store.metrics
    if not np.isfinite(metrics).all():
        _fail(store, "some metrics are not finite")
    accuracies = metrics[..., [1, 2, 3, 5, 6, 7]]
    if accuracies.size and (accuracies.min() < 0 or accuracies.max() > 1):
        _fail(store, "some accuracies are outside [0, 1]")
    if metrics.size and metrics[..., [0, 4]].min() < 0:
        _fail(store, "some training times are negative")
