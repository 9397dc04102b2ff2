"""numpy's global generator as one run sees it.

Some libraries draw from ``numpy.random``'s global state instead of a generator they are given (Syne Tune's ASHA
bracket choice and BORE, hpbandster's kernel density model, scipy's ``truncnorm`` beneath it). A run that uses one
owns a global state of its own, seeded from the run and swapped in around each call into the library, so that
runs sharing a process never disturb each other or the caller's ``numpy.random``, and repeat exactly per seed.

statsmodels' kernel density estimators (used by hpbandster's BOHB and Syne Tune's KDE searchers) draw from that
global state when given no generator, and warn that from statsmodels 0.17 they will draw from fresh entropy
instead, which would make those runs unrepeatable: the experiments extra keeps statsmodels below 0.17, and the
warning is silenced inside ``active()``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np


class GlobalRandomState:
    """A private copy of numpy's global state; ``active()`` makes it the global one for a block."""

    def __init__(self, seed: int) -> None:
        self._state = np.random.RandomState(seed).get_state()

    @contextmanager
    def active(self) -> Iterator[None]:
        """Inside this block ``numpy.random`` is this run's; the caller's state is restored afterwards (the swap
        costs about 0.1 ms: enter it once per call, not per draw)."""
        saved = np.random.get_state()
        np.random.set_state(self._state)
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "After 0.17 or January 2028", FutureWarning)
                yield
        finally:
            self._state = np.random.get_state()
            np.random.set_state(saved)
