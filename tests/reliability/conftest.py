"""Helpers of the reliability suite: process memory, a server's log, waiting for a condition."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path


def anonymous_mb(pid: int) -> float:
    """The process's anonymous resident memory (what it allocated itself; mapped store pages are not counted:
    they are the page cache, shared by every process and reclaimable)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no RssAnon for {pid}")


def log_events(log: Path) -> list[dict]:
    """The JSON lines of a server's log (other lines, e.g. from faulthandler, are returned as {"raw": line})."""
    events = []
    for line in log.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            events.append({"raw": line})
    return events


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Poll ``condition`` every 0.1 s until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False
