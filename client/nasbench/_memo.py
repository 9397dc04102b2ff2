"""A bounded memo for the hot paths: a dict that forgets its oldest entry past ``maxsize``.

Specs repeat constantly (optimizers re-query the same cells), and their analysis is a pure function of the
matrix bytes and dtype; a plain dict lookup costs a fraction of ``functools.lru_cache`` with composite keys.
"""

from __future__ import annotations

from typing import Any


class Memo(dict):
    """``get`` as a dict; ``put`` stores a value, evicting the oldest entry when full, and returns it."""

    def __init__(self, maxsize: int) -> None:
        super().__init__()
        self.maxsize = maxsize

    def put(self, key: Any, value: Any) -> Any:
        if len(self) >= self.maxsize:
            del self[next(iter(self))]
        self[key] = value
        return value
