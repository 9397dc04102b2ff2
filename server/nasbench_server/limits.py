"""What one client can make the server hold or do, bounded in one place.

- ``Lanes``: where big answers (batches and samples of more than ``INLINE_CELLS`` cells) are computed, and the
  bytes of those being built or sent at once (the answer budget). Two lanes, medium (up to ``MEDIUM_CELLS``
  cells) and heavy, each one worker thread and a part of the budget, so heavy calls never queue medium ones;
  in each, clients take turns and none holds more than half of its bytes. A call takes its answer's size
  before the answer is built and gives it back when the call ends (sent, failed or cancelled), so clients that
  ask for big answers and read them slowly (or never) wait for room instead of growing the server without
  bound, and only ever hold up themselves.
- ``StreamSlots``: how many streams (``ListCells``, ``QueryStream``) are open at once, and per client; a stream
  whose client sends or reads nothing for the stall time is ended, one idle for 5 s gives its slot to a new
  stream when all are taken, and only past that is a new stream refused with RESOURCE_EXHAUSTED.
- ``RequestBytes``: a garbage collection after every 64 MB of requests read, so reference cycles cannot keep
  big requests alive.
- The memos of request-derived facts are bounded by ``nasbench._memo`` (entries and bytes), the messages by
  gRPC's size limits, and the calls by ``maximum_concurrent_rpcs``: ``held`` tells what is held now, by pool
  (the ``nasbench_request_memory_bytes`` metric), ``bound`` the most it may be.

CPU-heavy answers run on the lanes' threads, never on the event loop, so health checks and small calls keep
answering within milliseconds while a big request is computed.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from nasbench import _memo
from nasbench._store.layout import METRIC_FIELDS, NUM_REPEATS
from nasbench.errors import RequestRejectedError, ServiceUnavailableError

INLINE_CELLS = 512  # answers of at most this many cells are computed on the event loop (well under a millisecond)
MEDIUM_CELLS = 16_384  # bigger answers (tens of milliseconds and more) take the heavy lane
DEFAULT_ANSWER_BUDGET_BYTES = 256 << 20
DEFAULT_MAX_STREAMS = 64
DEFAULT_STREAM_STALL_S = 30.0  # a stream whose client sends or reads nothing for this long is ended
EVICT_IDLE_S = 5.0  # a stream idle this long gives its slot to a new stream when every slot is taken
DEFAULT_COLLECT_AFTER_BYTES = 64 << 20  # requests read between two garbage collections


def cell_answer_bytes(budgets: int) -> int:
    """An upper bound on the bytes one cell adds to an answer carrying ``budgets`` budgets of all repeats."""
    return 96 + budgets * NUM_REPEATS * len(METRIC_FIELDS) * 8


class Ticket:
    """One call's place in a lane: its client, the answer bytes it holds once admitted, when its answer is due."""

    __slots__ = ("admitted", "client", "deadline", "nbytes", "released")

    def __init__(self, client: str, nbytes: int, deadline: float | None) -> None:
        self.client = client
        self.nbytes = nbytes
        self.deadline = deadline  # time.monotonic() after which nobody waits for the answer (None: never)
        self.admitted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.released = False


class Lane:
    """One worker thread, computing one call at a time, with its share of the answer budget.

    Calls take turns by client (a connection): the next call to run is the oldest of the next client in turn
    (round robin), so a client with many calls queued delays another client's call by at most one of its own.
    A call runs once its answer's size fits in the lane's bytes and in its client's half of them (a client over
    its half waits; the others go on), and holds those bytes until the call ends (its answer sent, or the call
    failed or cancelled). A call whose deadline passed while it queued is dropped without being computed.
    """

    def __init__(self, name: str, limit: int) -> None:
        self.name = name
        self.limit = limit
        self.per_client = max(1, limit // 2)
        self.used = 0
        self._held: collections.Counter[str] = collections.Counter()  # bytes per client
        self._queues: dict[str, collections.deque[Ticket]] = {}  # per client, oldest first; dict order: turns
        self._running = False  # a call computes on the thread
        self._idle = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"nasbench-{name}")

    def ticket(self, client: str, nbytes: int, deadline: float | None = None) -> Ticket:
        """A place in the queue for a call of ``client`` whose answer takes ``nbytes`` (at most a client's half)."""
        return Ticket(client, min(nbytes, self.per_client), deadline)

    async def run(self, ticket: Ticket, call: Callable[..., Any], *args: Any) -> Any:
        """``call(*args)`` on the lane's thread once the ticket's turn comes; the bytes stay held until
        ``release(ticket)``.

        Raises:
          DeadlineExpiredError: the deadline passed before the call's turn came.
        """
        self._queues.setdefault(ticket.client, collections.deque()).append(ticket)
        self._dispatch()
        try:
            await ticket.admitted
        except BaseException:
            self.release(ticket)
            raise
        computed = asyncio.get_running_loop().run_in_executor(self._executor, call, *args)
        computed.add_done_callback(self._finished)  # when the thread is done, even if nobody waits any more
        return await asyncio.shield(computed)

    def release(self, ticket: Ticket) -> None:
        """The call ended: its bytes go back (or it leaves the queue). Once, however often this is called."""
        if ticket.released:
            return
        ticket.released = True
        if ticket.admitted.done() and not ticket.admitted.cancelled() and ticket.admitted.exception() is None:
            self.used -= ticket.nbytes
            self._held[ticket.client] -= ticket.nbytes
            if self._held[ticket.client] <= 0:
                del self._held[ticket.client]
        else:
            queue = self._queues.get(ticket.client)
            if queue is not None and ticket in queue:
                queue.remove(ticket)
                if not queue:
                    del self._queues[ticket.client]
            if not ticket.admitted.done():
                ticket.admitted.cancel()
        self._dispatch()

    @property
    def running(self) -> bool:
        return self._running

    async def wait_idle(self) -> None:
        """Return once no call computes on the lane's thread."""
        while self._running:
            await self._idle.wait()

    def _finished(self, _: object) -> None:
        self._running = False
        self._idle.set()
        self._dispatch()

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _dispatch(self) -> None:
        """Admit the next call if the thread is free: clients in turn, skipping those over their half; a call
        that does not fit the lane's bytes waits for them (no smaller call passes it, so none starves)."""
        if self._running:
            return
        now = time.monotonic()
        for client in list(self._queues):
            queue = self._queues[client]
            while queue and queue[0].deadline is not None and now > queue[0].deadline:
                expired = queue.popleft()
                expired.released = True
                expired.admitted.set_exception(DeadlineExpiredError())
            if not queue:
                del self._queues[client]
                continue
            ticket = queue[0]
            if self._held[client] + ticket.nbytes > self.per_client:
                continue
            if self.used + ticket.nbytes > self.limit:
                return
            queue.popleft()
            del self._queues[client]
            if queue:
                self._queues[client] = queue  # back of the turns
            self.used += ticket.nbytes
            self._held[ticket.client] += ticket.nbytes
            self._running = True
            self._idle.clear()
            ticket.admitted.set_result(None)
            return


class DeadlineExpiredError(ServiceUnavailableError):
    """The call's deadline passed while it waited for its turn: nobody waits for its answer any more."""

    def __init__(self) -> None:
        super().__init__("the deadline passed before the answer could be computed")


class Lanes:
    """The two lanes big calls run on: medium answers (up to ``MEDIUM_CELLS`` cells) and heavy ones, each with its
    own thread and part of the answer budget, so a heavy call never queues a medium one (they share the CPU)."""

    def __init__(self, budget_bytes: int) -> None:
        medium = max(1, budget_bytes // 4)
        self.medium = Lane("medium", medium)
        self.heavy = Lane("heavy", max(1, budget_bytes - medium))
        self.limit = budget_bytes

    @property
    def used(self) -> int:
        return self.medium.used + self.heavy.used

    def for_cells(self, cells: int) -> Lane:
        return self.medium if cells <= MEDIUM_CELLS else self.heavy

    async def wait_idle(self) -> None:
        """Return once neither lane computes."""
        while self.medium.running or self.heavy.running:
            await (self.medium if self.medium.running else self.heavy).wait_idle()

    def close(self) -> None:
        self.medium.close()
        self.heavy.close()


class Stream:
    """One open stream: its client (the connection), what it waits for, and since when."""

    __slots__ = ("client", "ended", "released", "since", "task", "waiting")

    def __init__(self, client: str, task: asyncio.Task[Any] | None) -> None:
        self.client = client
        self.task = task  # the handler's task, cancelled to end the stream
        self.waiting: str | None = None  # READING (the client's next message) or WRITING (room to write)
        self.since = time.monotonic()
        self.ended: str | None = None  # why the server ended it (None: it was not)
        self.released = False

    def wait(self, what: str | None) -> None:
        """Say what the stream waits for from now on (None: it is working)."""
        self.waiting = what
        self.since = time.monotonic()


READING, WRITING = "reading", "writing"


class StreamSlots:
    """At most ``limit`` streams open at once, and at most half of them per client (a connection), none of them
    waiting on its client for longer than ``stall_s``.

    A stream whose client sends nothing (a QueryStream between messages) or reads nothing (the server's write
    waits for room) for ``stall_s`` is ended RESOURCE_EXHAUSTED. When a new stream finds every slot taken (or its
    client's half), the stream that has waited on its client longest, for at least ``EVICT_IDLE_S``, is ended to
    make room; only if none has is the new stream refused. So streams that do nothing never keep others out.
    """

    def __init__(self, limit: int, stall_s: float = DEFAULT_STREAM_STALL_S) -> None:
        self.limit = limit
        self.per_client = max(1, limit // 2)
        self.stall_s = stall_s
        self.evict_after_s = min(EVICT_IDLE_S, stall_s)
        self._streams: dict[Stream, None] = {}  # in opening order
        self._per_client: collections.Counter[str] = collections.Counter()
        self._watching = False

    @property
    def open(self) -> int:
        return len(self._streams)

    def take(self, client: str) -> Stream:
        """A slot for a new stream of ``client``, run by the current task.

        Raises:
          RequestRejectedError: every slot (or the client's half) is taken by streams that are not idle.
        """
        if self._per_client[client] >= self.per_client:
            if not self._evict(client):
                raise RequestRejectedError(
                    f"too many open streams from this client ({self.per_client} of {self.limit}): close finished "
                    "streams or retry later"
                )
        elif len(self._streams) >= self.limit and not self._evict(None):
            raise RequestRejectedError(f"too many open streams ({self.limit}): close finished streams or retry later")
        stream = Stream(client, asyncio.current_task())
        self._streams[stream] = None
        self._per_client[client] += 1
        if not self._watching:
            self._watching = True
            self._watch()
        return stream

    def give_back(self, stream: Stream) -> None:
        """The stream ended: its slot is free (once, however often this is called)."""
        if stream.released:
            return
        stream.released = True
        del self._streams[stream]
        self._per_client[stream.client] -= 1
        if not self._per_client[stream.client]:
            del self._per_client[stream.client]

    def _evict(self, client: str | None) -> bool:
        """End the stream (of ``client``, or of anyone) that has waited on its client longest, if long enough."""
        now = time.monotonic()
        idlest = max(
            (s for s in self._streams if s.waiting and (client is None or s.client == client)),
            key=lambda s: now - s.since,
            default=None,
        )
        if idlest is None or now - idlest.since < self.evict_after_s:
            return False
        doing = "sent nothing" if idlest.waiting == READING else "read nothing"
        self._end(
            idlest,
            f"the stream was ended to make room for another: its client had {doing} for {now - idlest.since:.0f} s",
        )
        return True

    def _end(self, stream: Stream, reason: str) -> None:
        stream.ended = reason
        self.give_back(stream)
        if stream.task is not None:
            stream.task.cancel()

    def _watch(self) -> None:
        """End the streams that waited on their client for the stall time; look again a few times per stall time."""
        now = time.monotonic()
        for stream in [s for s in self._streams if s.waiting and now - s.since >= self.stall_s]:
            doing = "sent nothing" if stream.waiting == READING else "read nothing"
            self._end(stream, f"the stream was ended: its client {doing} for {self.stall_s:g} s")
        if not self._streams:
            self._watching = False
            return
        asyncio.get_running_loop().call_later(min(1.0, self.stall_s / 4), self._watch)


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


def held(answers: Lanes) -> dict[str, int]:
    """Request-derived memory held now, by pool: each memo of this process, and the big answers in flight."""
    return {**_memo.held_by_name(), "answers": answers.used}


def bound(answers: Lanes) -> int:
    """The most request-derived memory the pools of ``held`` may hold together."""
    return _memo.bound_bytes() + answers.limit
