"""The engine: cells of a store by canonical key or hash, batches, sampling and neighbours.

The in-process client and the gRPC server both answer through this class, so nothing about the data is
computed twice in two places. It holds no global state and never touches Python's global ``random``.

Usage::

    from nasbench.engine import Engine
    engine = Engine.open("nasbench.lmdb")
    cell = engine.cell_by_key(key)            # Cell(key, representative, parameters, metrics) or None
    rows = engine.sample(10, np.random.default_rng(0), num_vertices=[7])
"""

from __future__ import annotations

import functools
import os
from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import xxhash

from nasbench import canonical, domain, keytable
from nasbench.errors import InvalidSpecError
from nasbench.lib import config
from nasbench.store.reader import Store

if TYPE_CHECKING:
    from nasbench.optima import Optimum

_HASH_CHUNK = 4096


class Cell(NamedTuple):
    """Everything the API needs about one cell."""

    key: int  # canonical key
    representative: int  # code of the adjacency/ops the dataset stores (nasbench.canonical)
    parameters: int  # trainable parameters
    metrics: np.ndarray  # float64[epochs, 3 repeats, 8 METRIC_FIELDS]


def hashed_repeat(key: int, epochs: int, seed: int) -> int:
    """The repeat the 'hashed' policy picks: a function of the cell, the budget and the seed only, so the
    same cell gets the same repeat whatever the order of queries (client and server agree)."""
    return xxhash.xxh3_64_intdigest(b"%d:%d:%d" % (key, epochs, seed)) % 3


# code -> (read-only int8 matrix, op names): what the dataset stores. The table answers any cell at once; the
# small cache only spares repeated cells a few dictionary lookups (bounded: a few hundred kB).
representative = functools.lru_cache(maxsize=4096)(keytable.representative)


class Engine:
    """Read-only queries over one store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.epochs: tuple[int, ...] = store.epochs
        self.cells = store.cells
        self._used_ops: np.ndarray | None = None
        self._optima: dict[int, Optimum] | None = None

    @classmethod
    def open(cls, path: str | os.PathLike[str], verify: bool | None = None) -> Engine:
        """An engine over the store at ``path`` (``verify`` as ``Store.open``: by default once per file identity)."""
        return cls(Store.open(path, verify=verify))

    def close(self) -> None:
        self.store.close()

    # --- single cells ----------------------------------------------------------------------------------------

    def cell(self, row: int, span: slice = slice(None)) -> Cell:
        """The cell of a row, with its metrics at the budgets of ``span`` (all by default)."""
        store = self.store
        return Cell(
            store.keys.item(row), store.representatives.item(row), store.parameters.item(row), store.metrics[row, span]
        )

    def cell_by_key(self, key: int) -> Cell | None:
        """The hot path of every query: one O(1) row lookup, then the cell's fields."""
        store = self.store
        row = store.row_of_key(key)
        if row < 0:
            return None
        return Cell(key, store.representatives.item(row), store.parameters.item(row), store.metrics[row])

    def cell_by_hash(self, digest: bytes) -> Cell | None:
        row = self.store.row_of_hash(digest)
        return None if row < 0 else self.cell(row)

    # --- many cells ------------------------------------------------------------------------------------------

    def rows_of_keys(self, keys: np.ndarray) -> np.ndarray:
        """Rows (int64, -1 where absent) of canonical keys, vectorized."""
        return self.store.rows_of_keys(keys)

    def hash_strings(self) -> Iterator[str]:
        """Every hash as hex, in row order (the order of first appearance in the source file)."""
        from nasbench.space import hex_digests

        hashes = self.store.hashes
        for start in range(0, self.cells, _HASH_CHUNK):
            yield from hex_digests(hashes[start : start + _HASH_CHUNK])

    def optima(self) -> dict[int, Optimum]:
        """Per budget, the best mean validation and test accuracy of the data (one pass, then kept)."""
        if self._optima is None:
            from nasbench.optima import optima

            self._optima = optima(self.store.metrics, self.epochs)
        return self._optima

    # --- sampling and neighbours -----------------------------------------------------------------------------

    def sample(
        self,
        k: int,
        rng: np.random.Generator,
        *,
        num_vertices: Collection[int] | None = None,
        num_edges: Collection[int] | None = None,
        min_parameters: int | None = None,
        max_parameters: int | None = None,
        ops: Collection[str] | None = None,
    ) -> np.ndarray:
        """``k`` distinct rows drawn uniformly from the cells that pass every filter given.

        Args:
          k: how many cells (without replacement).
          rng: the random generator (never Python's global ``random``).
          num_vertices, num_edges: allowed counts.
          min_parameters, max_parameters: inclusive bounds on trainable parameters.
          ops: allowed interior ops: a cell passes when it uses no other op.

        Raises:
          InvalidSpecError: a negative ``k``, an unknown op, or more cells asked for than pass the filters.
        """
        if k < 0:
            raise InvalidSpecError(f"k must be at least 0, got {k}")
        rows = np.flatnonzero(self.filter_mask(num_vertices, num_edges, min_parameters, max_parameters, ops))
        if k > len(rows):
            raise InvalidSpecError(f"asked for {k} cells but only {len(rows)} pass the filters")
        return rng.choice(rows, size=k, replace=False)

    def filter_mask(
        self,
        num_vertices: Collection[int] | None = None,
        num_edges: Collection[int] | None = None,
        min_parameters: int | None = None,
        max_parameters: int | None = None,
        ops: Collection[str] | None = None,
    ) -> np.ndarray:
        """bool[cells]: the rows passing every filter given (see ``sample``)."""
        store = self.store
        mask = np.ones(self.cells, dtype=bool)
        if num_vertices is not None:
            mask &= np.isin(store.num_vertices, np.fromiter(num_vertices, dtype=np.int64))
        if num_edges is not None:
            mask &= np.isin(store.num_edges, np.fromiter(num_edges, dtype=np.int64))
        if min_parameters is not None:
            mask &= store.parameters >= min_parameters
        if max_parameters is not None:
            mask &= store.parameters <= max_parameters
        if ops is not None:
            unknown = set(ops) - set(config.AVAILABLE_OPS)
            if unknown:
                raise InvalidSpecError(
                    f"unknown op {sorted(unknown)[0]!r} (available ops = {list(config.AVAILABLE_OPS)})"
                )
            allowed = 0
            for op in set(ops):  # a set: naming an op twice allows it once (bits or-ed, never summed)
                allowed |= 1 << canonical.OP_LABELS[op]
            mask &= (self.used_ops() & ~np.uint8(allowed)) == 0
        return mask

    def used_ops(self) -> np.ndarray:
        """uint8[cells]: bit ``label`` set when the cell uses that op (computed once from the keys)."""
        if self._used_ops is None:
            labels = canonical.label_slots(self.store.keys)
            bits = np.where(labels >= 0, np.left_shift(1, np.maximum(labels, 0)), 0)
            self._used_ops = np.bitwise_or.reduce(bits, axis=1).astype(np.uint8)
        return self._used_ops

    def neighbors(self, key: int) -> np.ndarray:
        """Rows of the stored cells one edit (edge flip or op change) away from the cell ``key``."""
        keys = np.array(domain.neighbor_keys(key), dtype=np.uint64)
        rows = self.rows_of_keys(keys)
        return rows[rows >= 0]
