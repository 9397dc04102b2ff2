"""The local backend: a store opened in this process, read through the engine."""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator, Sequence

import numpy as np

from nasbench.engine import Cell, Engine
from nasbench.optima import DatasetOptimum


class LocalBackend:
    """Serves cells straight from a memory-mapped store (zero-copy metrics views)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.epochs = engine.epochs
        self.cell_by_key = engine.cell_by_key
        self.cell_by_hash = engine.cell_by_hash

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> LocalBackend:
        return cls(Engine.open(path))

    def __len__(self) -> int:
        return self.engine.cells

    def cells_by_keys(self, keys: Sequence[int]) -> list[Cell | None]:
        rows = self.engine.rows_of_keys(np.array(keys, dtype=np.uint64))
        return [None if row < 0 else self.engine.cell(row) for row in rows.tolist()]

    def hash_strings(self) -> Iterator[str]:
        return self.engine.hash_strings()

    def sample(
        self,
        k: int,
        seed: int,
        *,
        num_vertices: Collection[int] | None = None,
        num_edges: Collection[int] | None = None,
        min_parameters: int | None = None,
        max_parameters: int | None = None,
        ops: Collection[str] | None = None,
    ) -> list[Cell]:
        rows = self.engine.sample(
            k,
            np.random.default_rng(seed),
            num_vertices=num_vertices,
            num_edges=num_edges,
            min_parameters=min_parameters,
            max_parameters=max_parameters,
            ops=ops,
        )
        return [self.engine.cell(row) for row in rows.tolist()]

    def neighbors(self, key: int) -> list[Cell]:
        return [self.engine.cell(row) for row in self.engine.neighbors(key).tolist()]

    def optima(self) -> dict[int, DatasetOptimum]:
        hashes = self.engine.store.hashes
        return {
            epochs: DatasetOptimum(
                epochs,
                best.validation_accuracy,
                hashes[best.validation_row].tobytes().hex(),
                best.test_accuracy,
                hashes[best.test_row].tobytes().hex(),
            )
            for epochs, best in self.engine.optima().items()
        }

    def close(self) -> None:
        self.engine.close()
