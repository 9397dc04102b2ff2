"""Small helpers shared by the scenarios: keys to ask for, processes and their memory."""

from __future__ import annotations

from nasbench.transport import Transport
from nasbench.v1 import nasbench_pb2 as pb


def random_keys(address: str, count: int, seed: int = 0) -> list[int]:
    """Keys of ``count`` random cells of the server's store."""
    return [cell.key for cell in Transport(address).call("Sample", pb.SampleRequest(k=count, seed=seed)).cells]


def rss_mb(pid: int) -> tuple[float, float]:
    """(anonymous, file-backed) resident MB of a process: its own memory, and shared page cache it maps."""
    values = {"RssAnon": float("nan"), "RssFile": float("nan")}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                name = line.split(":")[0]
                if name in values:
                    values[name] = int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return values["RssAnon"], values["RssFile"]


def high_water_mb(pid: int) -> float:
    """VmHWM of a process: the peak RSS of its own address space (reset at exec, unlike ru_maxrss)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children, ...)."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        try:
            with open(f"/proc/{current}/task/{current}/children") as handle:
                children = [int(child) for child in handle.read().split()]
        except OSError:
            children = []
        found += children
        queue += children
    return found
