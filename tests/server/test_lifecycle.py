"""A server's life: SIGTERM drains in-flight calls; a restarted server is reconnected to transparently;
a store still loading answers UNAVAILABLE while health says NOT_SERVING."""

from __future__ import annotations

import signal
import threading
import time

import grpc
import pytest

from nasbench import api
from nasbench.v1 import nasbench_pb2 as pb
from nasbench.v1 import nasbench_pb2_grpc as pb_grpc
from nasbench_server.process import ServerProcess, free_ports
from tests.client.scenarios import INCEPTION, spec


def test_sigterm_drains_in_flight_calls(small_store, tmp_path) -> None:
    server = ServerProcess(small_store, tmp_path, extra=["--grace", "20"]).wait_serving()
    results: dict[str, object] = {}
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.NasbenchStub(channel)
        stream = stub.ListCells(pb.ListCellsRequest(chunk_size=1))  # 2,532 messages: in flight at SIGTERM
        first = next(stream)

        def drain() -> None:
            results["rest"] = sum(1 for _ in stream)

        reader = threading.Thread(target=drain)
        server.signal(signal.SIGTERM)
        reader.start()
        reader.join(30)
        assert first.start == 0 and results["rest"] == 2531, "the in-flight stream finished"
        assert server.process.wait(30) == 0
    log = server.log.read_text()
    assert '"msg": "draining"' in log and '"msg": "stopped"' in log


def test_restarted_server_is_reconnected_transparently(full_store, tmp_path) -> None:
    port = free_ports()[0]
    first = ServerProcess(full_store, tmp_path, port=port).wait_serving()
    nasbench = api.NASBench(f"grpc://127.0.0.1:{port}", seed=0)
    specs = nasbench.sample(20, seed=1)
    before = [nasbench.query(s)["validation_accuracy"] for s in specs[:10]]
    first.stop()
    second = ServerProcess(full_store, tmp_path, port=port)
    try:
        time.sleep(0.5)
        after = [nasbench.query(s)["validation_accuracy"] for s in specs[10:]]  # uncached: round trips
        assert len(after) == 10 and before
        second.wait_serving()
    finally:
        second.stop()


def test_unreachable_server_is_named(tmp_path) -> None:
    port = free_ports()[0]
    started = time.monotonic()
    with pytest.raises(ConnectionError, match=f"127.0.0.1:{port}") as info:
        api.NASBench(f"grpc://127.0.0.1:{port}")
    assert type(info.value).__name__ == "ServiceUnavailableError"
    assert time.monotonic() - started < 30


def test_unix_socket_address(full_store, tmp_path) -> None:
    path = tmp_path / "nasbench.sock"
    server = ServerProcess(full_store, tmp_path, extra=["--host", f"unix:{path}"])
    try:
        deadline = time.monotonic() + 60
        while not path.exists():
            assert time.monotonic() < deadline and server.process.poll() is None, server.log.read_text()
            time.sleep(0.05)
        nasbench = api.NASBench(f"unix:{path}", seed=0)
        assert nasbench.query(spec(*INCEPTION))["trainable_parameters"] == 2_694_282
    finally:
        server.stop()


def test_a_store_that_cannot_open_stops_the_server_with_one_line(tmp_path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "nasbench._cli", "serve", "--store", str(tmp_path / "absent.lmdb"), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"nasbench serve: error: no store at {tmp_path / 'absent.lmdb'}" in result.stderr
    assert "Traceback" not in result.stderr
