"""The cells a remote client has fetched, by canonical key and by hash: bounded, thread-safe, shared by the sync
and the asyncio client. Cells are immutable, so a kept cell is always right; a lookup either finds it or fetches
it again, and callers build answers from what they fetched, never by reading back what they just kept."""

from __future__ import annotations

from collections.abc import Sequence

from nasbench._backends import wire
from nasbench._engine.engine import Cell
from nasbench._memo import Memo
from nasbench.v1 import nasbench_pb2 as pb

DEFAULT_CACHE_CELLS = 1 << 15
_CELL_BYTES = 1200  # a Cell with four budgets: 768 bytes of metrics, the message bytes they view, the tuple
_DIGEST_BYTES = 200


class CellCache:
    """Up to ``cells`` fetched cells (about 1.2 KB each at four budgets), oldest forgotten first."""

    def __init__(self, cells: int = DEFAULT_CACHE_CELLS) -> None:
        self._by_key = Memo(cells, cells * _CELL_BYTES, "remote cells")
        self._key_of_digest = Memo(cells, cells * _DIGEST_BYTES, "remote hashes")

    def by_key(self, key: int) -> Cell | None:
        return self._by_key.get(key)

    def by_digest(self, digest: bytes) -> Cell | None:
        key = self._key_of_digest.get(digest)
        return None if key is None else self._by_key.get(key)

    def keep(self, cell: Cell, digest: bytes) -> Cell:
        """Remember a fetched cell; returns it (callers use this return value, not a lookup)."""
        self._by_key.put(cell.key, cell, _CELL_BYTES)
        self._key_of_digest.put(digest, cell.key, _DIGEST_BYTES)
        return cell

    def partition(self, keys: Sequence[int], chunk: int) -> tuple[dict[int, Cell], list[list[int]]]:
        """The cached cells among ``keys``, and the other keys (distinct, ascending) in chunks to fetch."""
        cells: dict[int, Cell] = {}
        missing = set()
        for key in keys:
            cell = self._by_key.get(key)
            if cell is None:
                missing.add(key)
            else:
                cells[key] = cell
        ordered = sorted(missing)
        return cells, [ordered[start : start + chunk] for start in range(0, len(ordered), chunk)]

    def keep_batch(self, keys: Sequence[int], response: pb.QueryBatchResponse, into: dict[int, Cell]) -> None:
        """Keep the cells of a REPEAT_ALL batch answer for ``keys`` and add them to ``into``.

        Raises:
          ValueError: a malformed answer.
        """
        for key, answer in zip(keys, wire.batch_cells(response, keys), strict=True):
            if answer is not None:
                into[key] = self.keep(*answer)

    def clear(self) -> None:
        self._by_key.clear()
        self._key_of_digest.clear()

    def __len__(self) -> int:
        return len(self._by_key)
