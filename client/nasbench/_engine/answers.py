"""Which runs an answer holds: the repeat policies, for one cell and for a batch, in one place.

The original picks one of the three repeats with a draw from Python's global ``random`` in the client process;
that draw stays in the API (``nasbench._surface``). The other policies are computed here, for the in-process API
and for the server alike:

- ``Repeat.index(i)``: always repeat ``i``;
- ``Repeat.mean()``: the mean of the three;
- ``Repeat.hashed(seed)``: a repeat chosen from the cell's key, the budget and the seed, so the same cell gets the
  same repeat whatever the order of queries (client and server agree);
- ``Repeat.all()`` (``ALL``): the three, in file order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import xxhash

from nasbench._store.layout import FINAL, HALFWAY, NUM_REPEATS
from nasbench.errors import InvalidSpecError

Mode = Literal["all", "index", "mean", "hashed"]


@dataclass(frozen=True)
class Repeat:
    """A repeat policy (see the module docstring); build it with the class methods."""

    mode: Mode
    index: int = 0  # for "index"
    seed: int = 0  # for "hashed"

    @classmethod
    def all(cls) -> Repeat:
        return ALL

    @classmethod
    def mean(cls) -> Repeat:
        return _MEAN

    @classmethod
    def at(cls, index: int) -> Repeat:
        """Always repeat ``index`` (InvalidSpecError outside 0-2)."""
        if not 0 <= index < NUM_REPEATS:
            raise InvalidSpecError(f"repeat_index must be 0 to {NUM_REPEATS - 1}, got {index}")
        return cls("index", index=index)

    @classmethod
    def hashed(cls, seed: int) -> Repeat:
        return cls("hashed", seed=seed)


ALL = Repeat("all")
_MEAN = Repeat("mean")


def hashed_repeat(key: int, epochs: int, seed: int) -> int:
    """The repeat the hashed policy picks: a function of the cell, the budget and the seed only."""
    return xxhash.xxh3_64_intdigest(b"%d:%d:%d" % (key, epochs, seed)) % NUM_REPEATS


def select(runs: np.ndarray, repeat: Repeat, key: int, epochs: int) -> np.ndarray:
    """The runs (float64[r, 8]) a policy picks from the three of one cell at one budget (``runs``: float64[3, 8])."""
    if repeat.mode == "all":
        return runs
    if repeat.mode == "mean":
        mean: np.ndarray = runs.mean(axis=0, keepdims=True)
        return mean
    index = repeat.index if repeat.mode == "index" else hashed_repeat(key, epochs, repeat.seed)
    return runs[index : index + 1]


def select_batch(metrics: np.ndarray, repeat: Repeat, keys: np.ndarray, epochs: list[int]) -> np.ndarray:
    """``select`` over many cells and budgets: float64[n, budgets, r, 8] from float64[n, budgets, 3, 8]."""
    if repeat.mode == "all":
        return metrics
    if repeat.mode == "index":
        return metrics[:, :, repeat.index : repeat.index + 1]
    if repeat.mode == "mean":
        mean: np.ndarray = metrics.mean(axis=2, keepdims=True)
        return mean
    key_list = keys.tolist()
    picks = np.array([[hashed_repeat(k, e, repeat.seed) for e in epochs] for k in key_list], dtype=np.int64)
    return np.take_along_axis(metrics, picks.reshape(len(key_list), len(epochs), 1, 1), axis=2)


def point(stop_halfway: bool) -> slice:
    """The four values of a run at its halfway or its final evaluation."""
    return HALFWAY if stop_halfway else FINAL
