"""The remote backend: repeated cells cost no round trip, the client survives fork, errors are ours; retries,
deadlines, the cache bound and the address forms, some against a scripted server that counts every attempt."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

from nasbench import api
from nasbench.backends.remote import grpc_target
from nasbench.v1 import nasbench_pb2 as pb
from tests.client.scenarios import INCEPTION, spec


def _served(nasbench: api.NASBench) -> int:
    return nasbench._backend._call("GetInfo", pb.GetInfoRequest()).requests_served


def test_repeated_cells_are_served_from_the_cache(server_address) -> None:
    nasbench = api.NASBench(server_address, seed=0)
    model_spec = spec(*INCEPTION)
    nasbench.query(model_spec)
    before = _served(nasbench)
    started = time.perf_counter()
    for _ in range(2000):
        nasbench.query(model_spec, epochs=12)
        nasbench.get_metrics_from_spec(model_spec)
    elapsed = time.perf_counter() - started
    assert _served(nasbench) == before + 1, "only the GetInfo above reached the server"
    assert elapsed < 2.0  # 4,000 calls without a round trip (a round trip alone costs ~1 ms)


def test_fork_gives_the_child_a_working_client(server_address) -> None:
    nasbench = api.NASBench(server_address, seed=0)
    specs = nasbench.sample(6, seed=2)
    nasbench.query(specs[0])
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: new cells need round trips on a fresh channel
        try:
            values = [nasbench.query(s, repeat=0)["validation_accuracy"] for s in specs[1:]]
            os.write(write, json.dumps(values).encode())
        finally:
            os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    child = json.loads(os.read(read, 1 << 16).decode())
    assert os.waitstatus_to_exitcode(status) == 0
    assert child == [nasbench.query(s, repeat=0)["validation_accuracy"] for s in specs[1:]]


@pytest.mark.parametrize(
    ("address", "target"),
    [
        ("grpc://127.0.0.1:5000", "127.0.0.1:5000"),
        ("127.0.0.1:5000,127.0.0.1:5001", "ipv4:127.0.0.1:5000,127.0.0.1:5001"),
        ("grpc://localhost:5000,localhost:5001", "ipv4:127.0.0.1:5000,127.0.0.1:5001"),
        ("dns:///nasbench:50051", "dns:///nasbench:50051"),
        ("unix:/tmp/x.sock", "unix:/tmp/x.sock"),
    ],
)
def test_targets(address: str, target: str) -> None:
    assert grpc_target(address) == target


# --- a scripted server: each RPC's behaviour chosen by the test, every attempt counted ---------------------


class ScriptedServer:
    """A Nasbench service on 127.0.0.1 whose GetMetrics follows a script (one entry per attempt: a status code
    to abort with, ``"slow"`` to sleep past the client's deadline, or ``"ok"``), for the client's retry,
    deadline and error mapping. GetInfo always answers (one cell, one budget)."""

    def __init__(self, script: list) -> None:
        import threading
        from concurrent import futures

        import grpc

        self.script = list(script)
        self.attempts = 0
        self.keys: list[int] = []
        self._lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        handlers = {
            "GetInfo": grpc.unary_unary_rpc_method_handler(
                lambda request, context: pb.Info(epochs=[108], cells=1, repeats=3),
                request_deserializer=pb.GetInfoRequest.FromString,
                response_serializer=pb.Info.SerializeToString,
            ),
            "GetMetrics": grpc.unary_unary_rpc_method_handler(
                self._get_metrics,
                request_deserializer=pb.GetMetricsRequest.FromString,
                response_serializer=pb.CellData.SerializeToString,
            ),
        }
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("nasbench.v1.Nasbench", handlers),))
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()

    def _get_metrics(self, request: pb.GetMetricsRequest, context):
        with self._lock:
            self.attempts += 1
            step = self.script.pop(0) if self.script else "ok"
            self.keys.append(request.cell.key)
        if step == "slow":
            time.sleep(3)
        elif step != "ok":
            context.abort(step, f"scripted {step.name}")
        metrics = np.arange(24, dtype="<f8") + request.cell.key
        return pb.CellData(
            key=request.cell.key,
            hash=bytes(16),
            representative=request.cell.key,
            epochs=[108],
            repeats=3,
            metrics=metrics.tobytes(),
            trainable_parameters=7,
        )

    def stop(self) -> None:
        self._server.stop(0)


@pytest.fixture()
def scripted():
    servers = []

    def start(script: list) -> ScriptedServer:
        servers.append(ScriptedServer(script))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def test_unavailable_is_retried_with_backoff_up_to_five_attempts(scripted) -> None:
    import grpc

    from nasbench.backends.remote import RemoteBackend
    from nasbench.errors import ServiceUnavailableError

    server = scripted([grpc.StatusCode.UNAVAILABLE] * 3)
    backend = RemoteBackend(f"127.0.0.1:{server.port}")
    started = time.monotonic()
    assert backend.cell_by_key(5).metrics[0, 0].tolist() == list(np.arange(8.0) + 5)
    assert server.attempts == 4, "three UNAVAILABLE answers, then the retry that succeeded"
    server.script = [grpc.StatusCode.UNAVAILABLE] * 10
    server.attempts = 0
    with pytest.raises(ServiceUnavailableError, match=r"UNAVAILABLE: scripted UNAVAILABLE"):
        backend.cell_by_key(6)
    assert server.attempts == 5, "gRPC's retry policy: at most 5 attempts per call"
    assert time.monotonic() - started < 20


@pytest.mark.parametrize("code", ["INVALID_ARGUMENT", "NOT_FOUND", "RESOURCE_EXHAUSTED", "INTERNAL"])
def test_other_errors_are_final(scripted, code: str) -> None:
    """Only UNAVAILABLE is retried: an answer that the request itself is wrong (or the cell absent) is final."""
    import grpc

    from nasbench.backends.remote import RemoteBackend
    from nasbench.errors import NasbenchError

    server = scripted([getattr(grpc.StatusCode, code)] * 3)
    backend = RemoteBackend(f"127.0.0.1:{server.port}")
    if code == "NOT_FOUND":
        assert backend.cell_by_key(5) is None
    else:
        with pytest.raises(NasbenchError):
            backend.cell_by_key(5)
    assert server.attempts == 1


def test_errors_without_a_kind_map_by_status_code(scripted) -> None:
    """Without the server's error-kind metadata (a proxy, another server), the status code decides the class."""
    import grpc

    from nasbench.errors import InvalidSpecError, NotAuthorizedError, RemoteError, RequestRejectedError

    cases = [
        (grpc.StatusCode.RESOURCE_EXHAUSTED, RequestRejectedError, "scripted RESOURCE_EXHAUSTED"),
        (grpc.StatusCode.INVALID_ARGUMENT, InvalidSpecError, "scripted INVALID_ARGUMENT"),
        (grpc.StatusCode.PERMISSION_DENIED, NotAuthorizedError, "refused the call: scripted PERMISSION_DENIED"),
        (grpc.StatusCode.INTERNAL, RemoteError, "INTERNAL: scripted INTERNAL"),
    ]
    for code, error, message in cases:
        server = scripted([code])
        nasbench = api.NASBench(f"grpc://127.0.0.1:{server.port}")
        with pytest.raises(error, match=message) as info:
            nasbench.query(spec([[0, 1], [0, 0]], ["input", "output"]))
        assert type(info.value) is error and not isinstance(info.value, grpc.RpcError)
        assert isinstance(info.value.__cause__, grpc.RpcError)


def test_deadline(scripted) -> None:
    from nasbench.errors import ServiceUnavailableError

    server = scripted(["slow"])
    nasbench = api.NASBench(f"grpc://127.0.0.1:{server.port}", timeout=0.5)
    started = time.monotonic()
    with pytest.raises(ServiceUnavailableError, match="DEADLINE_EXCEEDED"):
        nasbench.query(spec([[0, 1], [0, 0]], ["input", "output"]))
    assert time.monotonic() - started < 2.5 and server.attempts == 1


def test_the_cell_cache_forgets_the_oldest_cells_past_its_bound(scripted) -> None:
    from nasbench.backends.remote import RemoteBackend

    server = scripted([])
    backend = RemoteBackend(f"127.0.0.1:{server.port}", cache_cells=4)
    for key in range(1, 7):
        backend.cell_by_key(key)
    assert server.keys == [1, 2, 3, 4, 5, 6]
    for key in (3, 6, 5, 4):  # the four most recent: no round trip
        assert backend.cell_by_key(key).key == key
    assert server.keys == [1, 2, 3, 4, 5, 6]
    backend.cell_by_key(1)  # forgotten: fetched again
    assert server.keys == [1, 2, 3, 4, 5, 6, 1]
    assert len(backend._cache) == 4


def test_resource_exhausted_through_the_api(server_address) -> None:
    from nasbench.errors import RequestRejectedError

    nasbench = api.NASBench(server_address)
    with pytest.raises(RequestRejectedError, match=r"^k = 100001 exceeds the limit of 100000$"):
        nasbench.sample(100_001, seed=0)


def test_dns_addresses(server) -> None:
    port = server.address.rsplit(":", 1)[1]
    for address in (f"dns:///127.0.0.1:{port}", f"dns:///localhost:{port}"):
        nasbench = api.NASBench(address, seed=0)
        assert nasbench.query(spec(*INCEPTION))["trainable_parameters"] == 2_694_282
        nasbench.close()


def test_grpcs_against_a_plaintext_server_fails_cleanly(server, monkeypatch) -> None:
    from nasbench.backends import remote
    from nasbench.errors import ServiceUnavailableError

    assert remote.channel_credentials("grpcs://h:1", None) is not None
    assert remote.channel_credentials("grpc://h:1", None) is None
    monkeypatch.setattr(remote, "DEFAULT_CONNECT_TIMEOUT_S", 2.0)
    with pytest.raises(ServiceUnavailableError, match=f"grpcs://{server.address}"):
        api.NASBench(f"grpcs://{server.address}")
