"""A server's life: SIGTERM drains in-flight calls; a restarted server is reconnected to transparently;
a store still loading answers UNAVAILABLE while health says NOT_SERVING."""

from __future__ import annotations

import signal
import threading
import time

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from nasbench import api
from nasbench.v1 import nasbench_pb2 as pb
from nasbench.v1 import nasbench_pb2_grpc as pb_grpc
from nasbench_server.process import ServerProcess, free_ports
from tests.client.scenarios import INCEPTION, spec

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _info(address: str) -> pb.Info:
    with grpc.insecure_channel(address) as channel:
        return pb_grpc.NasbenchStub(channel).GetInfo(pb.GetInfoRequest(), timeout=10)


def _health(channel: grpc.Channel, service: str = "") -> int:
    return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


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
    """A client keeps working across a server restart on the same port, and its answers before and after the
    restart are the store's (compared with the local backend, repeat by repeat)."""
    port = free_ports()[0]
    first = ServerProcess(full_store, tmp_path, port=port).wait_serving()
    nasbench = api.NASBench(f"grpc://127.0.0.1:{port}", seed=0)
    local = api.NASBench(full_store, seed=0)
    specs = local.sample(20, seed=1)
    expected = [local.query(s, epochs=36, repeat=index % 3) for index, s in enumerate(specs)]
    before = [nasbench.query(s, epochs=36, repeat=index % 3) for index, s in enumerate(specs[:10])]
    first.stop()
    second = ServerProcess(full_store, tmp_path, port=port)
    try:
        time.sleep(0.5)
        after = [nasbench.query(s, epochs=36, repeat=index % 3) for index, s in enumerate(specs[10:], start=10)]
        for answer, wanted in zip(before + after, expected, strict=True):
            assert answer.keys() == wanted.keys()
            np.testing.assert_array_equal(answer.pop("module_adjacency"), wanted.pop("module_adjacency"))
            assert answer == wanted
        second.wait_serving()
        assert _info(second.address).pid == second.process.pid  # the answers after the restart came from it
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


# A server whose store opens only once the test creates a gate file: the state between binding the port and
# SERVING, held open as long as the test needs (``nasbench serve`` itself, with its store opening delayed).
_GATED_SERVE = """
import pathlib, sys, time
from nasbench_server import app
gate, opened = pathlib.Path(sys.argv[1]), app._open_engine
def held(config, *rest):
    while not gate.exists():
        time.sleep(0.01)
    return opened(config, *rest)
app._open_engine = held
from nasbench._cli import main
sys.exit(main(sys.argv[2:]))
"""


def test_loading_answers_unavailable_and_not_serving_then_serves(small_store, tmp_path) -> None:
    """Bound but still opening the store: health NOT_SERVING, every data RPC UNAVAILABLE with the loading message
    (a client retries those: 5 attempts per call, all of which reach the server); then SERVING and answers."""
    import subprocess
    import sys

    from nasbench._backends.transport import channel_options
    from nasbench.errors import ServiceUnavailableError

    gate, port_file = tmp_path / "gate", tmp_path / "port"
    command = [sys.executable, "-c", _GATED_SERVE, str(gate), "serve", "--store", str(small_store), "--port", "0"]
    with open(tmp_path / "server.log", "wb") as log:
        process = subprocess.Popen([*command, "--port-file", str(port_file)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not port_file.exists():
            assert time.monotonic() < deadline and process.poll() is None, (tmp_path / "server.log").read_text()
            time.sleep(0.02)
        address = f"127.0.0.1:{int(port_file.read_text())}"
        with grpc.insecure_channel(address) as channel:
            assert _health(channel) == _health(channel, "nasbench.v1.Nasbench") == NOT_SERVING
            stub = pb_grpc.NasbenchStub(channel)
            calls = [
                lambda: stub.Query(pb.QueryRequest(cell=pb.CellRef(hash_hex="0" * 32), epochs=108), timeout=5),
                lambda: stub.GetInfo(pb.GetInfoRequest(), timeout=5),
                lambda: list(stub.ListCells(pb.ListCellsRequest(), timeout=5)),
                lambda: list(stub.QueryStream(iter([pb.QueryRequest(epochs=108)]), timeout=5)),
                lambda: stub.QueryBatch(pb.QueryBatchRequest(keys=[1]), timeout=5),
            ]
            for call in calls:
                with pytest.raises(grpc.RpcError) as info:
                    call()
                assert info.value.code() == grpc.StatusCode.UNAVAILABLE
                assert info.value.details() == "the store is still loading; retry shortly"
            assert stub.Ping(pb.PingRequest(), timeout=5) == pb.PingResponse()  # the process itself answers
        with pytest.raises(ServiceUnavailableError, match=f"no nasbench server answered at grpc://{address}"):
            api.NASBench(f"grpc://{address}", timeout=5)
        with grpc.insecure_channel(address, options=channel_options()) as retrying:
            with pytest.raises(grpc.RpcError) as info:
                pb_grpc.NasbenchStub(retrying).GetMetrics(pb.GetMetricsRequest(cell=pb.CellRef(key=1)), timeout=20)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        gate.touch()
        with grpc.insecure_channel(address) as channel:
            deadline = time.monotonic() + 60
            while _health(channel) != SERVING:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.02)
            # 4 direct calls (the refused QueryStream read no message) and the Ping + 5 attempts of the client's
            # GetInfo + 5 of GetMetrics + this GetInfo
            assert _info(address).requests_served == 5 + 5 + 5 + 1
        nasbench = api.NASBench(f"grpc://{address}", seed=0)
        local = api.NASBench(small_store, seed=0)
        chain = spec([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "conv1x1-bn-relu", "output"])
        answer, expected = nasbench.query(chain, repeat=1), local.query(chain, repeat=1)
        np.testing.assert_array_equal(answer.pop("module_adjacency"), expected.pop("module_adjacency"))
        assert answer == expected
    finally:
        gate.touch()
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0


def test_sigterm_reports_not_serving_and_refuses_new_calls_while_draining(small_store, tmp_path) -> None:
    """On SIGTERM a health watcher sees NOT_SERVING at once, an in-flight stream keeps being answered during the
    grace period, and new calls are refused."""
    server = ServerProcess(small_store, tmp_path, extra=["--grace", "30"]).wait_serving()
    with grpc.insecure_channel(server.address) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""), timeout=60)
        assert next(watch).status == SERVING
        requests: list[pb.QueryRequest] = []
        wake = threading.Event()

        def stream():
            while True:
                wake.wait(30)
                wake.clear()
                if not requests:
                    return
                yield requests.pop()

        stub = pb_grpc.NasbenchStub(channel)
        answers = stub.QueryStream(stream(), timeout=60)
        requests.append(pb.QueryRequest(cell=pb.CellRef(hash_hex="0" * 32), epochs=108, request_id=1))
        wake.set()
        assert next(answers).request_id == 1
        server.signal(signal.SIGTERM)
        assert next(watch).status == NOT_SERVING
        watch.cancel()
        requests.append(pb.QueryRequest(cell=pb.CellRef(hash_hex="0" * 32), epochs=108, request_id=2))
        wake.set()
        assert next(answers).request_id == 2, "the in-flight stream is still answered while draining"
        with grpc.insecure_channel(server.address) as fresh, pytest.raises(grpc.RpcError) as info:
            pb_grpc.NasbenchStub(fresh).Ping(pb.PingRequest(), timeout=5)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        wake.set()  # the stream's generator returns: the client half-closes, the call ends, the server stops
        assert list(answers) == []
    assert server.process.wait(30) == 0


def test_calls_still_open_after_the_grace_period_are_cut(small_store, tmp_path) -> None:
    """A stream the client never closes is cut once --grace seconds have passed; the server then exits (0)."""
    server = ServerProcess(small_store, tmp_path, extra=["--grace", "2"]).wait_serving()
    release = threading.Event()

    def never_closing():
        yield pb.QueryRequest(cell=pb.CellRef(hash_hex="0" * 32), epochs=108, request_id=7)
        release.wait(60)

    try:
        with grpc.insecure_channel(server.address) as channel:
            answers = pb_grpc.NasbenchStub(channel).QueryStream(never_closing(), timeout=60)
            assert next(answers).request_id == 7
            signalled = time.monotonic()
            server.signal(signal.SIGTERM)
            with pytest.raises(grpc.RpcError) as info:
                next(answers)
            cut_after = time.monotonic() - signalled
            assert info.value.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)
            assert server.process.wait(30) == 0
            exited_after = time.monotonic() - signalled
    finally:
        release.set()
    assert 1.8 <= cut_after <= exited_after < 25, (cut_after, exited_after)
