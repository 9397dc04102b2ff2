"""Worker processes sharing one port (``serve --workers N``): started, watched, replaced, stopped together.

- Ready means every worker serves: the port file is written (and "all workers serving" logged) only once each
  worker has opened the store and reports SERVING.
- A worker that dies is logged (pid, exit code or signal) and replaced; one that keeps dying within
  ``CRASH_WINDOW_S`` of its start is retried with growing pauses, and after ``MAX_CRASHES`` such deaths in a row
  the supervisor stops the others and exits with status 1, so a container or service manager restarts it.
- SIGTERM/SIGINT are passed to every worker, which drain their calls; the supervisor exits 0 when all stopped
  cleanly. Workers stop on their own when the supervisor dies (parent-death signal, and a check of the parent
  pid), so a killed supervisor never leaves orphans holding the port.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from nasbench import files
from nasbench_server.config import ServerConfig

log = logging.getLogger("nasbench.server")
CRASH_WINDOW_S = 30.0
MAX_CRASHES = 5
_STOP_MARGIN_S = 10.0
_PR_SET_PDEATHSIG = 1
_CLEAN_EXITS = (0, -signal.SIGTERM, -signal.SIGINT)  # a worker stopped before its handlers were in place


class Supervisor:
    """Runs ``config.workers`` copies of the one-process server and keeps them running."""

    def __init__(
        self,
        worker_config: ServerConfig,
        workers: int,
        port_file: Path | None,
        worker: Callable[[ServerConfig, Any, int], None],
        on_exit: Callable[[int], None] = lambda pid: None,
    ) -> None:
        self.config = worker_config
        self._worker = worker  # a module-level function (spawned): serves, reports SERVING on the pipe it gets
        self._on_exit = on_exit  # told the pid of every worker that ended (its metrics are dropped)
        self.count = workers
        self.port_file = port_file
        self._context = multiprocessing.get_context("spawn")
        self._processes: list[Any] = [None] * workers
        self._ready: list[Any] = [None] * workers  # per worker, the read end of the pipe it reports SERVING on
        self._started = [0.0] * workers
        self._crashes = [0] * workers
        self._stopping = False
        self._failed = False

    def run(self) -> int:
        """Supervise until stopped; returns the exit status (0 after a clean stop)."""
        previous = {signum: signal.signal(signum, self._stop) for signum in (signal.SIGTERM, signal.SIGINT)}
        try:
            for index in range(self.count):
                self._start(index)
            self._wait_until_all_serve()
            return self._watch()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _start(self, index: int) -> None:
        receive, send = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=self._worker, args=(self.config, send, os.getpid()), name=f"nasbench-worker-{index}"
        )
        process.start()
        send.close()
        self._processes[index] = process
        self._ready[index] = receive
        self._started[index] = time.monotonic()
        log.info("worker started", extra={"worker": index, "pid": process.pid})

    def _stop(self, signum: int, _frame: object) -> None:
        self._stopping = True
        for process in self._processes:
            if process is not None and process.is_alive() and process.pid is not None:
                os.kill(process.pid, signum)

    def _serving(self) -> set[int]:
        """Workers that reported SERVING since the last look."""
        serving = set()
        for index, receive in enumerate(self._ready):
            try:
                if receive is not None and receive.poll():
                    receive.recv()
                    serving.add(index)
            except (EOFError, OSError):  # the worker died before reporting; its death is handled elsewhere
                self._ready[index] = None
        return serving

    def _wait_until_all_serve(self) -> None:
        waiting = set(range(self.count))
        while waiting and not self._stopping:
            wait([r for r in self._ready if r is not None] + self._sentinels(), timeout=0.5)
            waiting -= self._serving()
            self._check_workers()
        if not self._stopping:
            if self.port_file is not None:
                write_port(self.port_file, self.config.port)
            log.info("all workers serving", extra={"workers": self.count, "port": self.config.port})

    def _sentinels(self) -> list[int]:
        return [process.sentinel for process in self._processes if process is not None]

    def _watch(self) -> int:
        while not self._stopping:
            wait([r for r in self._ready if r is not None] + self._sentinels(), timeout=0.5)
            for index in self._serving():
                log.info("worker serving", extra={"worker": index, "pid": self._processes[index].pid})
            self._check_workers()
        status = self._join_all()
        return 1 if self._failed else status

    def _check_workers(self) -> None:
        if self._replace_dead() is False:
            self._failed = True
            self._stop(signal.SIGTERM, None)

    def _replace_dead(self) -> bool:
        """Replace dead workers (after a pause if they keep dying); False once one died too often."""
        for index, process in enumerate(self._processes):
            if process is None or process.is_alive() or self._stopping:
                continue
            self._on_exit(process.pid)
            lived = time.monotonic() - self._started[index]
            self._crashes[index] = self._crashes[index] + 1 if lived < CRASH_WINDOW_S else 1
            log.error(
                "worker died",
                extra={
                    "worker": index,
                    "pid": process.pid,
                    "exit": _describe(process.exitcode),
                    "lived_s": round(lived, 1),
                },
            )
            if self._crashes[index] >= MAX_CRASHES:
                log.error("worker keeps dying: stopping the server", extra={"worker": index, "deaths": MAX_CRASHES})
                return False
            pause = min(2.0 ** (self._crashes[index] - 1) - 1, 8.0)
            if pause:
                time.sleep(pause)
            if not self._stopping:
                self._start(index)
        return True

    def _join_all(self) -> int:
        deadline = time.monotonic() + self.config.grace_s + _STOP_MARGIN_S
        status = 0
        for process in self._processes:
            if process is None:
                continue
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.error("worker did not stop in time: killed", extra={"pid": process.pid})
                process.kill()
                process.join()
            self._on_exit(process.pid)
            if process.exitcode not in _CLEAN_EXITS:
                status = 1
        log.info("stopped", extra={"workers": self.count, "status": status})
        return status


def die_with_parent() -> None:
    """Ask the kernel for SIGTERM when the supervisor dies (Linux); ``serve`` also checks the parent pid."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _describe(exitcode: int | None) -> str:
    if exitcode is None:
        return "running"
    if exitcode < 0:
        return f"killed by {signal.Signals(-exitcode).name}"
    return f"exit code {exitcode}"


def write_port(path: Path, port: int) -> None:
    """Write the port atomically (readers never see a half-written file)."""
    files.write_atomically(path, lambda handle: handle.write(str(port).encode()))
