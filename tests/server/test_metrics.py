"""Prometheus metrics of a real server process: calls counted by method and status code, latency histograms,
cells per budget, batch sizes, open streams, request memory, store identity, health; ``--workers 2`` summed in
one scrape; the private multiprocess folder removed at exit; a busy metrics port is a one-line error."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from nasbench._store.reader import Store
from nasbench.v1 import nasbench_pb2 as pb
from nasbench.v1 import nasbench_pb2_grpc as pb_grpc
from nasbench_server import limits, metrics
from nasbench_server.process import ServerProcess, free_ports
from tests.polling import wait_for

TOKEN = "token-of-the-metrics-test"
AUTH = (("authorization", f"Bearer {TOKEN}"),)
NASBENCH = "nasbench.v1.Nasbench"


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the endpoint: (name, sorted labels) -> value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels`` (0 if none)."""
    wanted = set(labels.items())
    return sum(v for (n, sample_labels), v in samples.items() if n == name and wanted <= set(sample_labels))


def matching(samples: dict, name: str, **labels: str) -> list[dict[str, str]]:
    wanted = set(labels.items())
    return [dict(sl) for (n, sl), _ in samples.items() if n == name and wanted <= set(sl)]


@pytest.fixture(scope="module")
def metrics_server(tmp_path_factory, small_store):
    folder = tmp_path_factory.mktemp("metrics")
    token_file = folder / "token"
    token_file.write_text(TOKEN)
    port = free_ports()[0]
    server = ServerProcess(
        small_store, folder, extra=["--token-file", str(token_file), "--metrics-port", str(port)]
    ).wait_serving()
    server.metrics_port = port
    yield server
    server.stop()


def test_calls_are_counted_by_method_and_code(metrics_server, small_store) -> None:
    port = metrics_server.metrics_port
    keys = Store.open(small_store).keys[:30].tolist()
    before = scrape(port)
    with grpc.insecure_channel(metrics_server.address) as channel:
        stub = pb_grpc.NasbenchStub(channel)
        for key in keys[:12]:
            stub.Query(pb.QueryRequest(cell=pb.CellRef(key=key), epochs=108), metadata=AUTH, timeout=10)
        for key in keys[12:15]:
            stub.Query(pb.QueryRequest(cell=pb.CellRef(key=key), epochs=12), metadata=AUTH, timeout=10)
        for missing in (1, 2, 3, 4):  # keys that name no cell of a 5-vertex store
            with pytest.raises(grpc.RpcError) as error:
                stub.GetMetrics(pb.GetMetricsRequest(cell=pb.CellRef(key=missing)), metadata=AUTH, timeout=10)
            assert error.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as error:
            stub.Query(pb.QueryRequest(cell=pb.CellRef(key=keys[0])), timeout=10)  # no token
        assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as error:
            channel.unary_unary(f"/{NASBENCH}/Query")(b"\xff\xff", metadata=AUTH, timeout=10)  # malformed
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        batch = stub.QueryBatch(pb.QueryBatchRequest(keys=[*keys[:25], 7]), metadata=AUTH, timeout=10)
        assert batch.count == 26
        listed = sum(1 for _ in stub.ListCells(pb.ListCellsRequest(chunk_size=1000), metadata=AUTH, timeout=10))
        assert listed == 3  # 2,532 hashes in chunks of 1,000
    # the exposition is rendered at most once a second: wait until a scrape shows the last call
    listed_before = value(before, "grpc_server_handled_total", grpc_method="ListCells")
    assert wait_for(lambda: value(scrape(port), "grpc_server_handled_total", grpc_method="ListCells") > listed_before)
    after = scrape(port)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    handled = "grpc_server_handled_total"
    assert delta(handled, grpc_method="Query", grpc_code="OK", grpc_service=NASBENCH, grpc_type="unary") == 15
    assert delta(handled, grpc_method="Query", grpc_code="UNAUTHENTICATED") == 1
    assert delta(handled, grpc_method="Query", grpc_code="INVALID_ARGUMENT") == 1
    assert delta(handled, grpc_method="GetMetrics", grpc_code="NOT_FOUND") == 4
    assert delta(handled, grpc_method="QueryBatch", grpc_code="OK") == 1
    assert delta(handled, grpc_method="ListCells", grpc_code="OK", grpc_type="server_stream") == 1
    # the latency histogram: one observation per call, in its buckets
    count = "grpc_server_handling_seconds_count"
    assert delta(count, grpc_method="Query", grpc_code="OK") == 15
    assert delta("grpc_server_handling_seconds_bucket", grpc_method="Query", grpc_code="OK", le="+Inf") == 15
    assert 0 < delta("grpc_server_handling_seconds_sum", grpc_method="Query", grpc_code="OK") < 15
    edges = {labels["le"] for labels in matching(after, "grpc_server_handling_seconds_bucket", grpc_method="Query")}
    assert {"2.5e-05", "0.001", "1.0", "10.0", "+Inf"} <= edges
    # the servicer's hooks
    assert delta("nasbench_cells_served_total", budget="108") == 12
    assert delta("nasbench_cells_served_total", budget="12") == 3
    assert delta("nasbench_cells_served_total", budget="all") == 25  # the batch: 25 found of 26
    assert delta("nasbench_batch_cells_count", grpc_method="QueryBatch") == 1
    assert delta("nasbench_batch_cells_sum", grpc_method="QueryBatch") == 26
    assert delta("nasbench_batch_cells_bucket", grpc_method="QueryBatch", le="10.0") == 0
    assert delta("nasbench_batch_cells_bucket", grpc_method="QueryBatch", le="100.0") == 1
    # per process
    assert value(after, "nasbench_in_flight_requests") == 0
    assert value(after, "nasbench_serving") == 1
    assert value(after, "nasbench_process_resident_memory_bytes") > 20e6
    (identity,) = matching(after, "nasbench_store_info")
    manifest = Store.open(small_store).manifest
    source = manifest["source"]  # built from a generated .tfrecord file: a source file with a digest
    assert identity["cells"] == "2532" and identity["epochs"] == "4,12,36,108" and identity["synthetic"] == "true"
    assert len(identity["source_sha256"]) == 64 and identity["source_sha256"] == source["sha256"]
    assert identity["schema"] == str(manifest["schema_version"]) and identity["checksum"] == manifest["checksum"]
    assert value(after, "nasbench_store_info") == 1


def test_open_streams_and_request_memory(metrics_server) -> None:
    port = metrics_server.metrics_port
    with grpc.insecure_channel(metrics_server.address) as channel:
        stub = pb_grpc.NasbenchStub(channel)
        hold = threading.Event()

        def requests() -> Iterator[pb.QueryRequest]:
            hold.wait(30)  # the stream stays open, nothing sent, until the test lets go
            yield from ()

        stream = stub.QueryStream(requests(), metadata=AUTH)
        deadline = time.monotonic() + 10
        while value(scrape(port), "nasbench_open_streams", grpc_method="QueryStream") != 1:
            assert time.monotonic() < deadline, "the open stream never showed"
            time.sleep(0.05)
        assert value(scrape(port), "nasbench_in_flight_requests", grpc_method="QueryStream") == 1
        stream.cancel()
        hold.set()
        # a big sample holds its answer's bytes in the answer budget while it is computed and sent
        assert len(stub.Sample(pb.SampleRequest(k=2000, seed=1), metadata=AUTH, timeout=60).cells) == 2000
    deadline = time.monotonic() + 10
    while value(after := scrape(port), "nasbench_open_streams", grpc_method="QueryStream") != 0:
        assert time.monotonic() < deadline, "the closed stream still shows"
        time.sleep(0.05)
    # the client's cancel reaches the handler as the end of its input: the stream counts once, as it ended
    assert value(after, "grpc_server_handled_total", grpc_method="QueryStream") == 1
    # the gauges are re-read every REFRESH_S: wait until the answer budget taken by the sample shows as given back
    assert wait_for(lambda: value(scrape(port), "nasbench_request_memory_bytes", pool="answers") == 0)
    after = scrape(port)
    # request-derived memory, by pool: the answer budget (given back once the sample was sent) and its bound
    assert {labels["pool"] for labels in matching(after, "nasbench_request_memory_bytes")} >= {"answers"}
    assert value(after, "nasbench_request_memory_bytes", pool="answers") == 0
    assert value(after, "nasbench_request_memory_limit_bytes") >= limits.DEFAULT_ANSWER_BUDGET_BYTES


def test_workers_are_summed_in_one_scrape(small_store, tmp_path) -> None:
    grpc_port, metrics_port = free_ports(2)
    server = ServerProcess(
        small_store, tmp_path, port=grpc_port, extra=["--workers", "2", "--metrics-port", str(metrics_port)]
    ).wait_serving()
    try:
        pids = _calls_on_fresh_connections(f"127.0.0.1:{grpc_port}", small_store, 30)
        assert len(pids) == 2, "both workers answered"
        samples = scrape(metrics_port)
        assert value(samples, "grpc_server_handled_total", grpc_method="Query", grpc_code="OK") == 30
        assert value(samples, "grpc_server_handling_seconds_count", grpc_method="Query") == 30
        assert value(samples, "nasbench_cells_served_total", budget="108") == 30
        serving = matching(samples, "nasbench_serving")
        assert {int(labels["pid"]) for labels in serving} == pids and value(samples, "nasbench_serving") == 2
        folders = list(Path(os.environ.get("TMPDIR", "/tmp")).glob("nasbench-metrics-*"))
    finally:
        assert server.stop() == 0
    remaining = [folder for folder in folders if folder.exists()]
    assert folders and not remaining, "the private multiprocess folder is removed at exit"


def _calls_on_fresh_connections(address: str, store: Path, calls: int) -> set[int]:
    """``calls`` Query calls, each on a new connection (SO_REUSEPORT spreads connections over the workers);
    returns the pids that answered."""
    keys = Store.open(store).keys[:calls].tolist()
    pids = set()
    for key in keys:
        with grpc.insecure_channel(address) as channel:
            stub = pb_grpc.NasbenchStub(channel)
            stub.Query(pb.QueryRequest(cell=pb.CellRef(key=key), epochs=108), timeout=10)
            pids.add(stub.GetInfo(pb.GetInfoRequest(), timeout=10).pid)
    return pids


def test_busy_metrics_port_is_one_line_error(small_store, tmp_path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for workers in ("1", "2"):
            grpc_port = "0" if workers == "1" else str(free_ports()[0])
            command = ["serve", "--store", str(small_store), "--port", grpc_port, "--workers", workers]
            result = subprocess.run(
                [sys.executable, "-m", "nasbench._cli", *command, "--metrics-port", str(port)],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert result.returncode == 2, result.stderr
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and f"cannot serve metrics on 127.0.0.1:{port}" in lines[0], result.stderr


@pytest.mark.parametrize("port", ["0", "70000", "-1"])
def test_bad_metrics_port_is_refused(port: str, small_store) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nasbench._cli", "serve", "--store", str(small_store), "--metrics-port", port],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "bad --metrics-port" in result.stderr


def test_memory_source_can_be_replaced() -> None:
    """The reliability work feeds its byte bounds through ``set_memory_source``."""
    from prometheus_client import REGISTRY

    previous = (metrics._memory_source, metrics._memory_limit)
    try:
        metrics.set_memory_source(lambda: {"stream_buffers": 1234, "memos": 5678}, limit_bytes=1 << 20)
        metrics.refresh()
        assert REGISTRY.get_sample_value("nasbench_request_memory_bytes", {"pool": "stream_buffers"}) == 1234
        assert REGISTRY.get_sample_value("nasbench_request_memory_limit_bytes") == 1 << 20
        assert REGISTRY.get_sample_value("nasbench_process_resident_memory_bytes") > 0
    finally:
        metrics.set_memory_source(*previous)


SCRAPE_TIMEOUT_S = 5.0  # what docs/reliability.md promises for a connection that sends no request


def test_idle_scrape_connections_cost_no_threads_and_are_closed(metrics_server) -> None:
    """40 connections to the metrics port that send nothing: no thread each in the serving process, each closed
    by the server after 5 s, and scrapes answered again afterwards."""
    import socket

    pid, port = metrics_server.process.pid, metrics_server.metrics_port
    threads = len(os.listdir(f"/proc/{pid}/task"))
    idle = [socket.create_connection(("127.0.0.1", port), timeout=SCRAPE_TIMEOUT_S + 10) for _ in range(40)]
    try:
        time.sleep(0.5)  # accepted meanwhile
        assert len(os.listdir(f"/proc/{pid}/task")) - threads < 4
        started = time.monotonic()
        for connection in idle:
            head = connection.recv(64)  # 503 for those past the cap, then the end; the end for the others
            assert head in (b"", b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length"[:64])
            while connection.recv(4096):
                pass
        assert time.monotonic() - started < SCRAPE_TIMEOUT_S + 5
    finally:
        for connection in idle:
            connection.close()
    assert value(scrape(port), "nasbench_serving") == 1
    assert metrics.SCRAPE_TIMEOUT_S <= SCRAPE_TIMEOUT_S


def test_the_endpoint_listens_where_grpc_does(small_store, tmp_path) -> None:
    """``--host localhost``: gRPC listens on 127.0.0.1 and ::1, and so does the metrics endpoint."""
    port = free_ports()[0]
    server = ServerProcess(small_store, tmp_path, extra=["--host", "localhost", "--metrics-port", str(port)])
    server.wait_serving()
    try:
        for host in ("127.0.0.1", "[::1]"):
            with grpc.insecure_channel(f"{host}:{server.port}") as channel:
                assert pb_grpc.NasbenchStub(channel).GetInfo(pb.GetInfoRequest(), timeout=10).cells == 2532
            with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as response:
                assert b"nasbench_serving" in response.read()
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("host", "hosts"),
    [
        ("127.0.0.1", ["127.0.0.1"]),
        ("localhost", ["127.0.0.1", "::1"]),
        ("::1", ["::1"]),
        ("0.0.0.0", ["0.0.0.0", "::"]),  # gRPC listens on every IPv4 and IPv6 address for either wildcard
        ("::", ["0.0.0.0", "::"]),
        ("[::]", ["0.0.0.0", "::"]),
        ("unix:/run/nasbench.sock", ["127.0.0.1"]),
    ],
)
def test_bind_hosts_follow_grpc(host: str, hosts: list[str]) -> None:
    assert metrics.bind_hosts(host) == hosts
