"""Connections and file descriptors: one client cannot take the descriptors every other client needs.

- At start the soft limit on open files is raised to the hard one (systemd's default soft limit of 1,024 would
  otherwise cap the server at about a thousand connections, whatever the machine allows).
- gRPC accepts at most ``allowed_connections`` at once (the limit less ``DESCRIPTOR_RESERVE`` kept for the
  store, logs, the metrics endpoint and gRPC's own pipes), closes connections that carry no call for the idle
  time, and connections that never finish their HTTP/2 handshake after ``HANDSHAKE_TIMEOUT_S``; keepalive pings
  find peers that vanished or stopped.
- ``ConnectionWatch`` looks every second: past ``max_per_peer`` TCP connections from one peer (remote address),
  the newest ones beyond it are shut down (gRPC has no accept hook, so the watch finds them in
  ``/proc/net/tcp`` and shuts their sockets down; gRPC then closes them); the connection limit reached and
  descriptors nearly exhausted are said in the JSON log, not only in gRPC's own line.

Peers are remote addresses: every client on one machine is one peer (clients on this machine share the limit of
the loopback address). Unix sockets have no peers and are not capped.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import resource
import socket
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("nasbench.server")

DESCRIPTOR_RESERVE = 128  # descriptors kept out of gRPC's connection limit for everything else
HANDSHAKE_TIMEOUT_S = 10.0  # a connection that has not finished its HTTP/2 (and TLS) handshake by then is closed
KEEPALIVE_S = 60.0  # a ping on a connection after this long without traffic ...
KEEPALIVE_TIMEOUT_S = 20.0  # ... unanswered for this long closes it (a peer gone or stopped)
WATCH_S = 1.0
NEARLY_EXHAUSTED = 0.9  # descriptors in use, as a share of the limit, worth an error line
LOG_EVERY_S = 30.0  # the same warning at most this often
_ESTABLISHED = "01"


def raise_descriptor_limit() -> int:
    """Raise the soft limit on open files to the hard one (at most the kernel's ``nr_open``); returns the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard
    with contextlib.suppress(OSError, ValueError):
        nr_open = int(Path("/proc/sys/fs/nr_open").read_text())
        wanted = nr_open if hard == resource.RLIM_INFINITY else min(hard, nr_open)
    if wanted != resource.RLIM_INFINITY and wanted > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (OSError, ValueError) as exc:
            log.warning("could not raise the open-file limit", extra={"soft": soft, "hard": hard, "error": str(exc)})
            return soft
        log.info("open-file limit raised", extra={"from": soft, "to": wanted})
        return wanted
    return soft


@dataclass(frozen=True)
class Limits:
    """What the watch and gRPC enforce for one process."""

    descriptors: int  # the soft limit on open files
    allowed_connections: int  # gRPC's cap on connections at once
    max_per_peer: int  # connections one peer may hold


def limits_for(descriptors: int, max_per_peer: int | None) -> Limits:
    """The connection limits of a process that may open ``descriptors`` files; ``max_per_peer`` None: a quarter
    of the connections it may hold."""
    allowed = max(16, descriptors - DESCRIPTOR_RESERVE)
    per_peer = max_per_peer if max_per_peer is not None else max(8, allowed // 4)
    return Limits(descriptors, allowed, min(per_peer, allowed))


def grpc_options(limits: Limits, idle_s: float) -> list[tuple[str, int]]:
    return [
        ("grpc.max_allowed_incoming_connections", limits.allowed_connections),
        ("grpc.max_connection_idle_ms", int(idle_s * 1000)),
        ("grpc.server_handshake_timeout_ms", int(HANDSHAKE_TIMEOUT_S * 1000)),
        ("grpc.keepalive_time_ms", int(KEEPALIVE_S * 1000)),
        ("grpc.keepalive_timeout_ms", int(KEEPALIVE_TIMEOUT_S * 1000)),
    ]


class ConnectionWatch:
    """Every ``WATCH_S``: the descriptors in use, and the TCP connections per peer on ``port``, capped."""

    def __init__(self, limits: Limits, port: int) -> None:
        self.limits = limits
        self.port = port
        self._logged: dict[str, float] = {}  # what was logged last, when

    async def run(self) -> None:
        while True:
            await asyncio.sleep(WATCH_S)
            try:
                await asyncio.to_thread(self.check)
            except OSError as exc:  # /proc unreadable (not Linux, hardened): the watch has nothing to go on
                log.warning("the connection watch stopped", extra={"error": str(exc)})
                return

    def check(self) -> None:
        sockets = _own_sockets()  # inode -> descriptor
        in_use = len(os.listdir("/proc/self/fd"))
        if in_use >= NEARLY_EXHAUSTED * self.limits.descriptors:
            self._once_in_a_while(
                "descriptors",
                logging.ERROR,
                "file descriptors nearly exhausted: new connections will be refused",
                {"open": in_use, "limit": self.limits.descriptors},
            )
        if len(sockets) <= self.limits.max_per_peer:
            return  # no peer can be past its cap, nor all together at the limit
        by_peer: defaultdict[str, list[int]] = defaultdict(list)
        for inode, peer in _connections(self.port):
            if inode in sockets:
                by_peer[peer].append(inode)
        total = sum(len(inodes) for inodes in by_peer.values())
        if total >= self.limits.allowed_connections:
            busiest = sorted(by_peer, key=lambda peer: len(by_peer[peer]), reverse=True)[:5]
            self._once_in_a_while(
                "connections",
                logging.ERROR,
                "connections at the limit: new ones are refused",
                {
                    "connections": total,
                    "limit": self.limits.allowed_connections,
                    "busiest": {peer: len(by_peer[peer]) for peer in busiest},
                },
            )
        for peer, inodes in by_peer.items():
            excess = len(inodes) - self.limits.max_per_peer
            if excess <= 0:
                continue
            closed = sum(_shut_down(sockets[inode], inode) for inode in sorted(inodes)[-excess:])
            self._once_in_a_while(
                f"peer {peer}",
                logging.WARNING,
                "connections of a peer past its cap shut down",
                {"peer": peer, "connections": len(inodes), "cap": self.limits.max_per_peer, "closed": closed},
            )

    def _once_in_a_while(self, topic: str, level: int, message: str, fields: dict[str, object]) -> None:
        now = time.monotonic()
        if now - self._logged.get(topic, -LOG_EVERY_S) >= LOG_EVERY_S:
            self._logged[topic] = now
            log.log(level, message, extra=fields)


def _own_sockets() -> dict[int, int]:
    """This process's sockets: inode -> descriptor."""
    found = {}
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # closed meanwhile
            target = os.readlink(f"/proc/self/fd/{name}")
            if target.startswith("socket:["):
                found[int(target[8:-1])] = int(name)
    return found


def _connections(port: int) -> list[tuple[int, str]]:
    """(inode, peer address) of the established TCP connections whose local port is ``port``."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as lines:
            next(lines)  # the header
            for line in lines:
                fields = line.split()
                local, remote, state, inode = fields[1], fields[2], fields[3], int(fields[9])
                if state == _ESTABLISHED and int(local.rsplit(":", 1)[1], 16) == port and inode:
                    found.append((inode, _address(remote.rsplit(":", 1)[0])))
    return found


def _address(hex_address: str) -> str:
    """An address of /proc/net/tcp{,6} (32-bit words in host order) as text; IPv4-mapped IPv6 as IPv4."""
    raw = bytes.fromhex(hex_address)
    packed = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))  # each word to network order
    address = ipaddress.ip_address(packed)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _shut_down(descriptor: int, inode: int) -> bool:
    """Shut the socket ``inode`` down through a duplicate of ``descriptor`` (gRPC then sees the connection end and
    closes its descriptor); False if the descriptor is another file by now."""
    try:
        duplicate = os.dup(descriptor)
    except OSError:
        return False
    if os.fstat(duplicate).st_ino != inode:
        os.close(duplicate)
        return False
    with socket.socket(fileno=duplicate) as sock:  # closes the duplicate
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            return False
    return True
