"""A study's progress as it runs: a tqdm bar on a terminal, log lines otherwise (a log file, a batch job), as the
builder and the downloader report theirs.

A log line says the runs done, the share, the time so far, the rate and the ETA; one is written each time
another tenth of the runs is done, and at least every ``every_s`` seconds while runs go on (a run of SMAC can
take hours). The ETA is the estimate of the runs not done yet (``cost``), each scaled by how the finished runs
of its optimizer compared with their estimate: it corrects itself for the machine it runs on.

Usage::

    progress = Progress(estimate, logger, terminal=sys.stderr.isatty())
    for summary in finished_runs:
        progress.run_done(task, summary.seconds, summary.simulated_s)
    progress.close()
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any

from nasbench_experiments.studies import cost

DEFAULT_EVERY_S = 300.0


class Progress:
    """Reports the runs of one study as they finish (see the module docstring)."""

    def __init__(
        self, estimate: cost.Estimate, logger: logging.Logger, terminal: bool, every_s: float = DEFAULT_EVERY_S
    ) -> None:
        self.estimate = estimate
        self.log = logger
        self.total = len(estimate.tasks)
        self.done = 0
        self.started = time.monotonic()
        self.last_line = self.started
        self.simulated = 0.0
        self._remaining = dict(estimate.tasks)
        self._estimated_done: dict[str, float] = {}  # per optimizer the estimated seconds of its finished runs
        self._measured_done: dict[str, float] = {}  # and what they took
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._bar: Any = None
        self._heartbeat: threading.Thread | None = None
        if terminal:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, unit="run", desc="compare", dynamic_ncols=True)
        else:
            self._heartbeat = threading.Thread(target=self._beat, args=(every_s,), name="compare-progress", daemon=True)
            self._heartbeat.start()

    def run_done(self, task: cost.Run, seconds: float, simulated_s: float) -> None:
        """A run finished: it took ``seconds`` in its worker and spent ``simulated_s`` of simulated time."""
        with self._lock:
            self.done += 1
            self.simulated += simulated_s
            _, estimated = self._remaining.pop(task, (0.0, 0.0))
            name = task.optimizer
            self._estimated_done[name] = self._estimated_done.get(name, 0.0) + estimated
            self._measured_done[name] = self._measured_done.get(name, 0.0) + seconds
            if self._bar is not None:
                self._bar.set_postfix_str(f"simulated {self.simulated:.3g} s", refresh=False)
                self._bar.update()
            elif self.done * 10 // self.total > (self.done - 1) * 10 // self.total or self.done == self.total:
                self._line()

    def eta_s(self) -> float:
        """Seconds until the last run ends (NaN while unknown): the estimate of each run not done, scaled by how
        the finished runs of its optimizer (of all optimizers, while it has none) compared with their estimate,
        placed on the workers; on a cluster of unknown size, the scaled seconds left over the scaled seconds done
        per second so far."""
        elapsed = time.monotonic() - self.started
        estimated, measured = sum(self._estimated_done.values()), sum(self._measured_done.values())
        if not self.done or estimated <= 0:  # nothing measured yet: the estimate less the time spent
            return max(self.estimate.wall_s - elapsed, 0.0) if self.estimate.workers else math.nan
        overall = measured / estimated

        def scale(name: str) -> float:
            done = self._estimated_done.get(name, 0.0)
            return self._measured_done[name] / done if done > 0 else overall

        seconds = [estimate * scale(task.optimizer) for task, (_, estimate) in self._remaining.items()]
        if self.estimate.workers is None:
            return sum(seconds) * elapsed / measured if measured > 0 else math.nan
        return cost.makespan(seconds, self.estimate.workers)

    def close(self) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
        if self._bar is not None:
            self._bar.close()

    def _beat(self, every_s: float) -> None:
        while not self._stop.wait(min(every_s, 5.0)):
            with self._lock:
                if time.monotonic() - self.last_line >= every_s and self.done < self.total:
                    self._line()

    def _line(self) -> None:
        now = time.monotonic()
        self.last_line = now
        elapsed = now - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = self.eta_s() if self.done < self.total else 0.0
        known = not math.isnan(eta)
        self.log.info(
            "compare: %d of %d runs done (%.0f%%) in %s, %s; ETA %s",
            self.done,
            self.total,
            100.0 * self.done / self.total,
            cost.duration(elapsed),
            _rate(rate),
            cost.duration(eta) if known else "unknown yet",
            extra={"runs": self.done, "total": self.total, "runs_per_s": rate, "eta_s": eta if known else None},
        )


def _rate(runs_per_s: float) -> str:
    """Runs per second, minute or hour, whichever reads best."""
    for unit, seconds in (("s", 1.0), ("min", 60.0), ("h", 3600.0)):
        if runs_per_s * seconds >= 1:
            return f"{runs_per_s * seconds:.3g} runs/{unit}"
    return f"{runs_per_s * 86400:.2g} runs/day"
