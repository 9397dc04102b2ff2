"""``serve --workers``: ready when every worker serves, dead workers replaced, no orphans, crash loops end the
server with status 1."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import grpc
import pytest

from nasbench.v1 import nasbench_pb2 as pb
from nasbench.v1 import nasbench_pb2_grpc as pb_grpc
from nasbench_server.process import ServerProcess, free_ports
from tests.polling import wait_for
from tests.reliability.conftest import log_events


def _pids(port: int, connections: int = 24) -> set[int]:
    pids = set()
    for _ in range(connections):  # a new connection each time: SO_REUSEPORT spreads connections
        with grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
            try:
                pids.add(pb_grpc.NasbenchStub(channel).GetInfo(pb.GetInfoRequest(), timeout=10).pid)
            except grpc.RpcError as error:  # a connection queued on a worker as it was killed is reset
                assert error.code() == grpc.StatusCode.UNAVAILABLE, error
    return pids


def _workers(pid: int) -> list[int]:
    """The worker processes of a supervisor (its other child is multiprocessing's resource tracker)."""
    children = [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return [child for child in children if b"resource_tracker" not in Path(f"/proc/{child}/cmdline").read_bytes()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("run", range(3))
def test_ready_means_every_worker_serves(small_store, tmp_path, run):
    """Right after the port file appears, both workers answer (the former flaky test, three times over)."""
    port = free_ports()[0]
    server = ServerProcess(small_store, tmp_path, port=port, extra=["--workers", "2"]).wait_serving()
    try:
        assert len(_pids(port)) == 2
    finally:
        assert server.stop() == 0


def test_a_dead_worker_is_logged_and_replaced(small_store, tmp_path):
    port = free_ports()[0]
    server = ServerProcess(small_store, tmp_path, port=port, extra=["--workers", "2"]).wait_serving()
    try:
        victim = _workers(server.process.pid)[0]
        os.kill(victim, signal.SIGKILL)
        assert wait_for(lambda: len(_pids(port, 16) - {victim}) == 2), "a new worker took its place"
        assert server.process.poll() is None
    finally:
        assert server.stop() == 0
    died = [event for event in log_events(server.log) if event.get("msg") == "worker died"]
    assert died and died[0]["pid"] == victim and died[0]["exit"] == "killed by SIGKILL"


def test_killing_the_supervisor_leaves_no_worker_behind(small_store, tmp_path):
    port = free_ports()[0]
    server = ServerProcess(small_store, tmp_path, port=port, extra=["--workers", "2"]).wait_serving()
    workers = _workers(server.process.pid)
    assert len(workers) == 2
    server.process.kill()
    server.process.wait()
    assert wait_for(lambda: not any(_alive(pid) for pid in workers), timeout=30), "orphaned workers still run"


def test_workers_that_keep_dying_end_the_server_with_status_1(small_store, tmp_path, monkeypatch):
    """Workers whose store vanishes after the supervisor checked it die at once, again and again."""
    port = free_ports()[0]
    doomed = tmp_path / "doomed.lmdb"
    doomed.write_bytes(small_store.read_bytes())
    server = ServerProcess(doomed, tmp_path, port=port, extra=["--workers", "2"])
    assert wait_for(lambda: any(event.get("msg") == "worker started" for event in log_events(server.log)))
    doomed.unlink()  # after the supervisor looked at it (and took and released a lease)
    assert server.process.wait(120) == 1
    events = log_events(server.log)
    assert any(event.get("msg") == "worker keeps dying: stopping the server" for event in events)
