"""The engine: the only place that turns rows of a store into answers.

The in-process API and the gRPC server both answer through this class, so nothing about the data is computed
twice in two places: cells by canonical key or hash, batches (with their repeat policy), samples (one filter
object), neighbours, optima, and the whole dataset as columns. It holds no global state and never touches
Python's global ``random``.

Usage::

    from nasbench._engine.engine import Engine
    engine = Engine.open("nasbench.lmdb")
    cell = engine.cell_by_key(key)            # Cell(key, representative, parameters, metrics) or None
    rows = engine.sample(10, np.random.default_rng(0), SampleFilter.of(num_vertices=[7]))
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from nasbench._cells import codes, keytable, moves
from nasbench._engine import answers
from nasbench._engine.answers import Repeat
from nasbench._engine.filters import ANY, SampleFilter
from nasbench._engine.optima import DatasetOptimum, Optimum, optima
from nasbench._store.reader import Store
from nasbench.errors import InvalidSpecError

_HASH_CHUNK = 4096


class Cell(NamedTuple):
    """Everything the API needs about one cell."""

    key: int  # canonical key
    representative: int  # code of the adjacency/ops the dataset stores (nasbench.canonical)
    parameters: int  # trainable parameters
    metrics: np.ndarray  # float64[epochs, 3 repeats, 8 METRIC_FIELDS]


# code -> (read-only int8 matrix, op names): what the dataset stores. The table answers any cell at once; the
# small cache only spares repeated cells a few dictionary lookups (bounded: a few hundred kB).
representative = functools.lru_cache(maxsize=4096)(keytable.representative)


@dataclass(frozen=True)
class Batch:
    """A batch answer as columns, one entry per requested cell in request order (zeros where absent)."""

    found: np.ndarray  # bool[n]
    keys: np.ndarray  # uint64[n]
    representatives: np.ndarray  # uint64[n]
    parameters: np.ndarray  # int32[n]
    hashes: np.ndarray  # uint8[n, 16]
    metrics: np.ndarray  # float64[n, budgets, r, v]: r = 3 and v = 8 for Repeat.all(), else 1 and 4
    epochs: tuple[int, ...]


@dataclass(frozen=True)
class DatasetColumns:
    """The whole dataset as columns, rows in ascending canonical key (the same order from a store and a server).

    Returned by ``api.NASBench.columns()``; the analyses are functions of it.
    """

    keys: np.ndarray  # uint64[cells], strictly ascending
    hashes: np.ndarray  # uint8[cells, 16]: original MD5 digests
    representatives: np.ndarray  # uint64[cells]: codes of the stored adjacency/ops (nasbench.canonical.decode)
    parameters: np.ndarray  # int64[cells]: trainable parameters
    metrics: np.ndarray  # float64[cells, budgets, 3 repeats, 8 METRIC_FIELDS]
    epochs: tuple[int, ...]  # the budgets of the metrics axis, ascending
    source: dict[str, Any] = field(default_factory=dict)  # the store manifest's "source" (name, sha256, ...)

    @property
    def cells(self) -> int:
        return len(self.keys)

    def optima(self) -> dict[int, Optimum]:
        """Per budget, the best mean validation and mean test accuracy and their rows (rows of these columns),
        as the engine computes them for ``NASBench.optima``."""
        return optima(self.metrics, self.epochs)


class Engine:
    """Read-only answers over one store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.epochs: tuple[int, ...] = store.epochs
        self.cells = store.cells
        self.manifest: dict[str, Any] = store.manifest
        self.identity: str = str(store.manifest.get("checksum", ""))  # the dataset's identity: its checksum
        self._epoch_index = {epochs: index for index, epochs in enumerate(self.epochs)}
        self._used_ops: np.ndarray | None = None
        self._optima: dict[int, Optimum] | None = None

    @classmethod
    def open(cls, path: str | os.PathLike[str], verify: bool | None = None) -> Engine:
        """An engine over the store at ``path`` (``verify`` as ``Store.open``: by default once per file identity)."""
        return cls(Store.open(path, verify=verify))

    def close(self) -> None:
        self.store.close()

    # --- single cells ----------------------------------------------------------------------------------------

    def row_of_key(self, key: int) -> int:
        """The row of a canonical key, -1 when absent (exact for any integer)."""
        return self.store.row_of_key(key)

    def row_of_hash(self, digest: bytes) -> int:
        """The row of a 16-byte original hash, -1 when absent."""
        return self.store.row_of_hash(digest)

    def epoch_index(self, epochs: int) -> int:
        """Position of a budget on the epochs axis; -1 when the store lacks it."""
        return self._epoch_index.get(epochs, -1)

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

    def key(self, row: int) -> int:
        key: int = self.store.keys.item(row)
        return key

    def digest(self, row: int) -> bytes:
        """The 16-byte original hash of a row."""
        digest: bytes = self.store.hashes[row].tobytes()
        return digest

    def runs(self, row: int, epochs: int, repeat: Repeat, stop_halfway: bool) -> np.ndarray:
        """float64[r, 4]: the runs a repeat policy picks for a row at a budget, at the halfway or final point.

        Raises:
          ValueError: a budget the store lacks (callers check budgets first, with the original's message).
        """
        index = self._epoch_index[epochs]
        chosen = answers.select(self.store.metrics[row, index], repeat, self.store.keys.item(row), epochs)
        return chosen[:, answers.point(stop_halfway)]

    # --- many cells ------------------------------------------------------------------------------------------

    def rows_of_keys(self, keys: np.ndarray | Sequence[int]) -> np.ndarray:
        """Rows (int64, -1 where absent) of canonical keys, vectorized."""
        return self.store.rows_of_keys(np.asarray(keys, dtype=np.uint64))

    def batch(self, rows: np.ndarray, span: slice, repeat: Repeat, stop_halfway: bool) -> Batch:
        """The columns of a batch answer: rows (-1 where absent) at the budgets of ``span``; with ``Repeat.all()``
        both points of the three runs, otherwise the selected run at the chosen point."""
        store = self.store
        found = rows >= 0
        safe = np.where(found, rows, 0)
        epochs = self.epochs[span]
        metrics = store.metrics[safe, span]  # float64[n, budgets, 3, 8]
        if repeat.mode != "all":
            metrics = answers.select_batch(metrics, repeat, store.keys[safe], list(epochs))
            metrics = metrics[..., answers.point(stop_halfway)]
        columns = [store.keys[safe], store.representatives[safe], store.parameters[safe], store.hashes[safe]]
        if not found.all():  # absent cells read as zeros
            metrics = np.where(found[:, None, None, None], metrics, 0.0)
            columns = [np.where(found.reshape(-1, *[1] * (c.ndim - 1)), c, 0).astype(c.dtype) for c in columns]
        keys, representatives, parameters, hashes = columns
        return Batch(found, keys, representatives, parameters, hashes, np.ascontiguousarray(metrics), epochs)

    def hashes_between(self, start: int, stop: int) -> bytes:
        """The 16-byte hashes of rows ``start`` to ``stop`` (file order), concatenated."""
        return self.store.hashes[start:stop].tobytes()

    def hash_strings(self) -> Iterator[str]:
        """Every hash as hex, in row order (the order of first appearance in the source file)."""
        for start in range(0, self.cells, _HASH_CHUNK):
            text = self.hashes_between(start, start + _HASH_CHUNK).hex()
            yield from (text[i : i + 32] for i in range(0, len(text), 32))

    def columns(self) -> DatasetColumns:
        """The whole dataset as columns in ascending key order (the metrics copied once, in that order)."""
        store = self.store
        order = np.asarray(store.key_order, dtype=np.int64)
        return DatasetColumns(
            keys=store.keys[order],
            hashes=store.hashes[order],
            representatives=store.representatives[order],
            parameters=store.parameters[order].astype(np.int64),
            metrics=np.take(store.metrics, order, axis=0),
            epochs=tuple(self.epochs),
            source=dict(self.manifest.get("source", {})),
        )

    # --- optima, sampling and neighbours ---------------------------------------------------------------------

    def optima(self) -> dict[int, Optimum]:
        """Per budget, the best mean validation and test accuracy of the data, by row (one pass, then kept)."""
        if self._optima is None:
            self._optima = optima(self.store.metrics, self.epochs)
        return self._optima

    def dataset_optima(self) -> dict[int, DatasetOptimum]:
        """``optima`` with the cells named by their original hashes, as the API returns them."""
        return {
            epochs: DatasetOptimum(
                epochs,
                best.validation_accuracy,
                self.digest(best.validation_row).hex(),
                best.test_accuracy,
                self.digest(best.test_row).hex(),
            )
            for epochs, best in self.optima().items()
        }

    def sample(self, k: int, rng: np.random.Generator, where: SampleFilter = ANY) -> np.ndarray:
        """``k`` distinct rows drawn uniformly (with ``rng``, never Python's global ``random``) from the cells that
        pass the filter.

        Raises:
          InvalidSpecError: a negative ``k``, or more cells asked for than pass the filter.
        """
        if k < 0:
            raise InvalidSpecError(f"k must be at least 0, got {k}")
        rows = np.flatnonzero(self.filter_mask(where))
        if k > len(rows):
            raise InvalidSpecError(f"asked for {k} cells but only {len(rows)} pass the filters")
        return rng.choice(rows, size=k, replace=False)

    def filter_mask(self, where: SampleFilter) -> np.ndarray:
        """bool[cells]: the rows passing the filter."""
        store = self.store
        used = self.used_ops() if where.ops is not None else np.zeros(0, dtype=np.uint8)
        return where.mask(store.num_vertices, store.num_edges, store.parameters, used)

    def used_ops(self) -> np.ndarray:
        """uint8[cells]: bit ``label`` set when the cell uses that op (computed once from the keys)."""
        if self._used_ops is None:
            labels = codes.label_slots(self.store.keys)
            bits = np.where(labels >= 0, np.left_shift(1, np.maximum(labels, 0)), 0)
            self._used_ops = np.bitwise_or.reduce(bits, axis=1).astype(np.uint8)
        return self._used_ops

    def neighbors(self, key: int) -> np.ndarray:
        """Rows of the stored cells one edit (edge flip or op change) away from the cell ``key``."""
        rows = self.rows_of_keys(moves.neighbor_keys(key))
        return rows[rows >= 0]
