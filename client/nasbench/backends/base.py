"""The interface ``api.NASBench`` calls; the local and the remote backend both implement it."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from typing import Protocol

from nasbench.engine import Cell
from nasbench.optima import DatasetOptimum


class Backend(Protocol):
    """Cells by canonical key or by hash, in bulk, sampled, or as neighbours; every cell fully, at once.

    ``epochs`` lists the budgets in the order of the ``metrics`` axis of every Cell (ascending).
    """

    epochs: tuple[int, ...]

    def __len__(self) -> int: ...

    def cell_by_key(self, key: int) -> Cell | None: ...

    def cell_by_hash(self, digest: bytes) -> Cell | None: ...

    def cells_by_keys(self, keys: Sequence[int]) -> list[Cell | None]: ...

    def hash_strings(self) -> Iterator[str]: ...

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
    ) -> list[Cell]: ...

    def neighbors(self, key: int) -> list[Cell]: ...

    def optima(self) -> dict[int, DatasetOptimum]: ...

    def close(self) -> None: ...
