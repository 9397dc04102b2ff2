"""Helpers of the reliability suite: process memory, a server's log."""

from __future__ import annotations

import json
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
