"""Bounded, thread-safe memos: the one place where request-derived memory is held and bounded, in entries and bytes.

Specs repeat constantly (optimizers re-query the same cells) and their analysis is a pure function of the matrix
bytes and the ops, so the hot paths memoize it; a remote client keeps the cells it fetched. Whatever a caller (or
a hostile client of the server) can make the process keep goes through a ``Memo``, which bounds both the number
of entries and their bytes, and which several threads may share:

- ``get`` is a single dictionary lookup (atomic), never raises, and never sees a half-done eviction;
- ``put`` inserts and evicts the oldest entries under a lock, and returns the value it was given, so a caller
  never reads back from the memo what it just put in (the put may already have evicted it).

``held_bytes()`` sums every live memo of the process (the server reports it as a metric); the bound of the whole
process is the sum of the ``maxbytes`` of its memos (see ``bound_bytes()``).
"""

from __future__ import annotations

import sys
import threading
import weakref
from typing import Any

_MEMOS: weakref.WeakSet[Memo] = weakref.WeakSet()


class Memo:
    """A dict-like memo bounded by ``maxsize`` entries and ``maxbytes`` bytes (oldest entries leave first)."""

    __slots__ = ("__weakref__", "_data", "_lock", "_sizes", "get", "maxbytes", "maxsize", "name", "nbytes")

    def __init__(self, maxsize: int, maxbytes: int, name: str = "memo") -> None:
        if maxsize < 1 or maxbytes < 1:
            raise ValueError(f"a memo needs room for at least one entry, got maxsize={maxsize} maxbytes={maxbytes}")
        self.name = name
        self.maxsize = maxsize
        self.maxbytes = maxbytes
        self.nbytes = 0
        self._data: dict[Any, Any] = {}
        self._sizes: dict[Any, int] = {}
        self._lock = threading.Lock()
        # get(key, default=None): the kept value, else default. The dict's own method: one atomic lookup, no
        # Python frame on the hot path, safe beside concurrent puts.
        self.get = self._data.get
        _MEMOS.add(self)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def put(self, key: Any, value: Any, nbytes: int | None = None) -> Any:
        """Keep ``value`` for ``key`` (``nbytes``: its size, estimated from the key if None); returns ``value``.

        An entry larger than the whole byte bound is not kept at all.
        """
        size = estimate_bytes(key) if nbytes is None else nbytes
        if size > self.maxbytes:
            return value
        with self._lock:
            data, sizes = self._data, self._sizes
            if key in data:
                self.nbytes -= sizes.pop(key)
                del data[key]
            while data and (len(data) >= self.maxsize or self.nbytes + size > self.maxbytes):
                oldest = next(iter(data))
                del data[oldest]
                self.nbytes -= sizes.pop(oldest)
            data[key] = value
            sizes[key] = size
            self.nbytes += size
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._sizes.clear()
            self.nbytes = 0

    def __repr__(self) -> str:
        return f"Memo({self.name!r}, {len(self._data)}/{self.maxsize} entries, {self.nbytes}/{self.maxbytes} bytes)"


def estimate_bytes(key: Any) -> int:
    """A generous estimate of what a memo entry holds: the key, its parts (nested tuples included), and the
    entry's slots in two dictionaries plus a small value."""
    return _size(key) + 64


def _size(part: Any) -> int:
    size = sys.getsizeof(part)
    if isinstance(part, tuple):
        size += sum(_size(item) for item in part)
    return size


def held_bytes() -> int:
    """Bytes held by every memo of this process (estimated as ``put`` counted them)."""
    return sum(memo.nbytes for memo in list(_MEMOS))


def held_by_name() -> dict[str, int]:
    """Bytes held per memo name (memos of one name, e.g. the caches of several clients, summed)."""
    held: dict[str, int] = {}
    for memo in list(_MEMOS):
        held[memo.name] = held.get(memo.name, 0) + memo.nbytes
    return held


def bound_bytes() -> int:
    """The most every memo of this process together may hold."""
    return sum(memo.maxbytes for memo in list(_MEMOS))
