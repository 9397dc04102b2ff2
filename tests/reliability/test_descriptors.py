"""File descriptors and connections (``nasbench_server.connections``): the soft open-file limit raised to the
hard one at start, one peer's connections capped (the newest past the cap shut down), connections that carry no
call closed after the idle time, and the connection limit reached said in the JSON log. Peers are told apart
by their address: floods come from other loopback addresses (127.0.0.2, ...)."""

from __future__ import annotations

import contextlib
import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from nasbench.v1 import nasbench_pb2 as pb
from nasbench.v1 import nasbench_pb2_grpc as pb_grpc
from nasbench_server.process import ServerProcess
from tests.polling import wait_for
from tests.reliability.conftest import log_events

# what a gRPC client sends first on a connection: the HTTP/2 preface and an empty SETTINGS frame
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def _soft_limit(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no open-file limit")


@pytest.fixture(scope="module", autouse=True)
def enough_descriptors_here() -> Iterator[None]:
    """This process opens hundreds of connections itself."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _server(store: Path, folder: Path, soft: int, hard: int, extra: list[str] | None = None) -> ServerProcess:
    """A server started with the open-file limits ``soft``/``hard`` (prlimit)."""
    return ServerProcess(store, folder, extra=extra, wrapper=["prlimit", f"--nofile={soft}:{hard}"]).wait_serving()


def _established(port: int, local: bool) -> int:
    """Established TCP connections whose local (server side) or remote (client side) port is ``port``."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "01" and int(fields[1 if local else 2].rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


@contextlib.contextmanager
def _flood(port: int, sources: list[str], per_source: int) -> Iterator[list[socket.socket]]:
    """Connections from each address of ``sources`` that finish the HTTP/2 handshake and then send nothing."""
    opened = []
    try:
        for source in sources:
            for _ in range(per_source):
                connection = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
                connection.sendall(PREFACE)
                opened.append(connection)
        yield opened
    finally:
        for connection in opened:
            connection.close()


def test_the_soft_open_file_limit_is_raised_to_the_hard_one(small_store, tmp_path):
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    server = _server(small_store, tmp_path, 256, hard)
    try:
        assert _soft_limit(server.process.pid) == min(hard, int(Path("/proc/sys/fs/nr_open").read_text()))
    finally:
        server.stop()
    (raised,) = [event for event in log_events(server.log) if event.get("msg") == "open-file limit raised"]
    assert raised["from"] == 256


def test_one_peer_flooding_connections_locks_no_one_out(small_store, tmp_path):
    """At an open-file limit of 256 that cannot be raised, one peer opens 400 connections (each finishing its
    handshake, then silent): past its cap (32) they are shut down, and another client's calls are answered."""
    server = _server(small_store, tmp_path, 256, 256)
    try:
        with _flood(server.port, ["127.0.0.2"], 400):
            with grpc.insecure_channel(server.address) as channel:
                stub = pb_grpc.NasbenchStub(channel)
                assert stub.GetInfo(pb.GetInfoRequest(), timeout=20, wait_for_ready=True).cells == 2532
            assert wait_for(lambda: _established(server.port, local=True) <= 32 + 8, timeout=30)
    finally:
        server.stop()
    capped = [
        event for event in log_events(server.log) if event.get("msg") == "connections of a peer past its cap shut down"
    ]
    assert capped and capped[0]["peer"] == "127.0.0.2" and capped[0]["cap"] == 32


def test_the_connection_limit_reached_is_in_the_json_log(small_store, tmp_path):
    """Many peers, each under its cap, together reach the connection limit (128 at an open-file limit of 256):
    one JSON line says so, with the busiest peers, while gRPC refuses further connections."""
    server = _server(small_store, tmp_path, 256, 256)
    try:
        with _flood(server.port, [f"127.0.0.{i}" for i in range(2, 8)], 30):  # 180 connections
            assert wait_for(
                lambda: any(
                    e.get("msg") == "connections at the limit: new ones are refused" for e in log_events(server.log)
                )
            )
    finally:
        server.stop()
    (event,) = [e for e in log_events(server.log) if e.get("msg") == "connections at the limit: new ones are refused"]
    assert event["limit"] == 128 and event["connections"] >= 120
    assert event["level"] == "error" and set(event["busiest"]) <= {f"127.0.0.{i}" for i in range(2, 8)}


def test_connections_that_carry_no_call_are_closed(small_store, tmp_path):
    """``--idle-timeout 1``: a client's connection is closed a second after its last call; its next call
    reconnects."""
    server = ServerProcess(small_store, tmp_path, extra=["--idle-timeout", "1"]).wait_serving()
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.NasbenchStub(channel)
            assert stub.GetInfo(pb.GetInfoRequest(), timeout=10).cells == 2532
            assert _established(server.port, local=True) == 1
            started = time.monotonic()
            assert wait_for(lambda: _established(server.port, local=True) == 0, timeout=20)
            assert time.monotonic() - started >= 0.5
            assert stub.GetInfo(pb.GetInfoRequest(), timeout=10).cells == 2532
    finally:
        server.stop()
