"""What one client can make the server hold or do, bounded in one place.

- ``AnswerBudget``: the bytes of big answers (large batches, large samples) being built or sent at once. A
  request takes its answer's size from the budget before the answer is built and gives it back when the call
  ends (sent, failed or cancelled), so clients that ask for big answers and read them slowly (or never) wait
  for room instead of growing the server without bound.
- ``StreamSlots``: how many streams (``ListCells``, ``QueryStream``) are open at once; past the limit a new
  stream is refused with RESOURCE_EXHAUSTED instead of holding its buffers.
- ``RequestBytes``: a garbage collection after every 64 MB of requests read, so reference cycles cannot keep
  big requests alive.
- The memos of request-derived facts are bounded by ``nasbench._memo`` (entries and bytes), the messages by
  gRPC's size limits, and the calls by ``maximum_concurrent_rpcs``: ``held`` tells what is held now, by pool
  (the ``nasbench_request_memory_bytes`` metric), ``bound`` the most it may be.

CPU-heavy answers run on one worker thread (``HEAVY_THREADS``), never on the event loop, so health checks and
small calls keep answering within milliseconds while a big request is computed.
"""

from __future__ import annotations

import asyncio
import collections
import gc

from nasbench import _memo
from nasbench.errors import RequestRejectedError
from nasbench.store.layout import METRIC_FIELDS, NUM_REPEATS

HEAVY_THREADS = 1
INLINE_CELLS = 512  # answers of at most this many cells are computed on the event loop (well under a millisecond)
DEFAULT_ANSWER_BUDGET_BYTES = 256 << 20
DEFAULT_MAX_STREAMS = 64
DEFAULT_STREAM_STALL_S = 30.0  # a stream whose client reads nothing for this long is ended
DEFAULT_COLLECT_AFTER_BYTES = 64 << 20  # requests read between two garbage collections


def cell_answer_bytes(budgets: int) -> int:
    """An upper bound on the bytes one cell adds to an answer carrying ``budgets`` budgets of all repeats."""
    return 96 + budgets * NUM_REPEATS * len(METRIC_FIELDS) * 8


class AnswerBudget:
    """Bytes of big answers in flight, bounded; waiters are served first come, first served."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    async def acquire(self, nbytes: int) -> int:
        """Take ``nbytes`` (at most the whole budget); returns what was taken, to give back with ``release``."""
        nbytes = min(nbytes, self.limit)
        if not self._waiters and self.used + nbytes <= self.limit:
            self.used += nbytes
            return nbytes
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((nbytes, waiter))
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release(nbytes)  # granted just as the caller gave up
            else:
                self._waiters = collections.deque(w for w in self._waiters if w[1] is not waiter)
            raise
        return nbytes

    def release(self, nbytes: int) -> None:
        self.used -= nbytes
        while self._waiters and self.used + self._waiters[0][0] <= self.limit:
            wanted, waiter = self._waiters.popleft()
            if not waiter.done():
                self.used += wanted
                waiter.set_result(None)


class StreamSlots:
    """At most ``limit`` streams open at once."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0

    def take(self) -> None:
        """Raises RequestRejectedError when every slot is taken."""
        if self.open >= self.limit:
            raise RequestRejectedError(f"too many open streams ({self.limit}): close finished streams or retry later")
        self.open += 1

    def give_back(self) -> None:
        self.open -= 1


class RequestBytes:
    """Collects garbage after every ``threshold`` bytes of requests read.

    Python's cyclic collector runs after a number of new objects, not bytes: a few huge requests caught in
    reference cycles (gRPC keeps a failed call's exception, its traceback frames and so the request) would
    stay alive for thousands of calls. Counting request bytes bounds what such cycles can hold to about the
    threshold, at the cost of one collection (milliseconds) per ``threshold`` bytes received.
    """

    def __init__(self, threshold: int = DEFAULT_COLLECT_AFTER_BYTES) -> None:
        self.threshold = threshold
        self.pending = 0

    def note(self, nbytes: int) -> None:
        self.pending += nbytes
        if self.pending >= self.threshold:
            self.pending = 0
            gc.collect()


def held(answers: AnswerBudget) -> dict[str, int]:
    """Request-derived memory held now, by pool: each memo of this process, and the big answers in flight."""
    return {**_memo.held_by_name(), "answers": answers.used}


def bound(answers: AnswerBudget) -> int:
    """The most request-derived memory the pools of ``held`` may hold together."""
    return _memo.bound_bytes() + answers.limit
