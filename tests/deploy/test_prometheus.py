"""A real Prometheus (Debian's ``prometheus`` package, run on 127.0.0.1 with a temporary config and data folder)
scrapes a server running ``--workers 2 --metrics-port``; the calls the test made, answered by both workers,
show in the counters and the latency histogram through Prometheus's HTTP query API.

CI (``.ci/run``) installs the package and sets NASBENCH_REQUIRE_PROMETHEUS=1, so a missing binary fails there;
on a developer machine without it the test is skipped (``apt-get install prometheus``)."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import grpc
import pytest

from nasbench._store.reader import Store
from nasbench.v1 import nasbench_pb2 as pb
from nasbench.v1 import nasbench_pb2_grpc as pb_grpc
from nasbench_server.process import ServerProcess, free_ports
from tests.deploy.test_container import ROOT, dashboard_expressions

CALLS = 40


def prometheus_binary() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        if os.environ.get("NASBENCH_REQUIRE_PROMETHEUS") == "1":
            pytest.fail("the prometheus binary is missing (CI installs Debian's prometheus package in .ci/run)")
        pytest.skip("no prometheus binary (apt-get install prometheus)")
    return binary


def test_alert_rules_fire_as_meant() -> None:
    """``promtool test rules`` over the alert rules of deploy/ and the unit tests beside this file."""
    promtool = Path(prometheus_binary()).with_name("promtool")
    rules = subprocess.run([promtool, "check", "rules", ROOT / "deploy" / "prometheus-alerts.yml"], capture_output=True)
    assert rules.returncode == 0, rules.stdout + rules.stderr
    tests = Path(__file__).with_name("prometheus-alerts-test.yml")
    result = subprocess.run([promtool, "test", "rules", tests.name], cwd=tests.parent, capture_output=True, text=True)
    assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr


def query(api_port: int, expression: str) -> list[dict]:
    url = f"http://127.0.0.1:{api_port}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
    with urllib.request.urlopen(url, timeout=10) as response:
        answer = json.load(response)
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def scalar(api_port: int, expression: str) -> float | None:
    result = query(api_port, expression)
    return float(result[0]["value"][1]) if result else None


def wait_for(api_port: int, expression: str, expected: float, timeout: float = 60.0) -> float | None:
    """Poll until the expression equals ``expected`` (Prometheus scrapes every second here); the last value."""
    deadline = time.monotonic() + timeout
    while True:
        current = scalar(api_port, expression)
        if current == expected or time.monotonic() > deadline:
            return current
        time.sleep(0.5)


@pytest.fixture()
def prometheus(tmp_path):
    """Start Prometheus with a scrape job for a metrics port chosen here; yields (metrics_port, api_port)."""
    binary = prometheus_binary()
    metrics_port, api_port = free_ports(2)
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: nasbench\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{metrics_port}']}}]\n"
    )
    log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{api_port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert process.poll() is None, (tmp_path / "prometheus.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "prometheus not ready"
            time.sleep(0.2)
        yield metrics_port, api_port
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_prometheus_sees_the_calls_of_both_workers(prometheus, small_store: Path, tmp_path) -> None:
    metrics_port, api = prometheus
    grpc_port = free_ports()[0]
    server = ServerProcess(
        small_store, tmp_path, port=grpc_port, extra=["--workers", "2", "--metrics-port", str(metrics_port)]
    ).wait_serving()
    try:
        assert wait_for(api, 'up{job="nasbench"}', 1) == 1, "Prometheus scrapes the server"
        keys = Store.open(small_store).keys[:CALLS].tolist()
        pids: dict[int, int] = {}
        for key in keys:  # each call on a new connection: SO_REUSEPORT spreads connections over the workers
            with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
                stub = pb_grpc.NasbenchStub(channel)
                stub.Query(pb.QueryRequest(cell=pb.CellRef(key=key), epochs=108), timeout=10)
                pid = stub.GetInfo(pb.GetInfoRequest(), timeout=10).pid
                pids[pid] = pids.get(pid, 0) + 1
        assert len(pids) == 2, f"both workers answered: {pids}"
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            for missing in (1, 2, 3):  # keys naming no cell: NOT_FOUND
                with pytest.raises(grpc.RpcError):
                    pb_grpc.NasbenchStub(channel).GetMetrics(pb.GetMetricsRequest(cell=pb.CellRef(key=missing)))

        handled = 'sum(grpc_server_handled_total{grpc_method="Query",grpc_code="OK"})'
        assert wait_for(api, handled, CALLS) == CALLS
        assert scalar(api, 'sum(grpc_server_handling_seconds_count{grpc_method="Query"})') == CALLS
        assert wait_for(api, 'sum(grpc_server_handled_total{grpc_method="GetMetrics",grpc_code="NOT_FOUND"})', 3) == 3
        assert scalar(api, 'sum(grpc_server_handling_seconds_bucket{grpc_method="Query",le="+Inf"})') == CALLS
        p99 = scalar(
            api, 'histogram_quantile(0.99, sum by (le) (grpc_server_handling_seconds_bucket{grpc_method="Query"}))'
        )
        assert p99 is not None and 0 < p99 <= 10 and not math.isnan(p99)
        assert scalar(api, 'sum(nasbench_cells_served_total{budget="108"})') == CALLS
        assert wait_for(api, 'sum(grpc_server_handled_total{grpc_method="GetInfo",grpc_code="OK"})', CALLS) == CALLS
        # one scrape holds both workers: their per-process gauges carry their pids
        serving = query(api, "nasbench_serving == 1")
        assert {int(series["metric"]["pid"]) for series in serving} == set(pids)
        assert scalar(api, "count(nasbench_process_resident_memory_bytes)") == 2

        # every query of the Grafana dashboard is valid PromQL over these series; the traffic ones have data
        # (rates need two scrapes of a series: poll a few seconds)
        def without_data() -> list[str]:
            empty = [e for e in dashboard_expressions() if not query(api, e.replace("$__rate_interval", "1m"))]
            return [e for e in empty if "nasbench_request_memory_limit_bytes > 0" not in e and "batch_cells" not in e]

        deadline = time.monotonic() + 30
        while (empty := without_data()) and time.monotonic() < deadline:
            time.sleep(1)
        assert not empty, empty
    finally:
        assert server.stop() == 0
