"""The checks of .ci/container-checks.sh that talk to the containers, with the project's own client.

    python .ci/container_checks.py query ADDRESS TOKEN METRICS_URL
    python .ci/container_checks.py drain ADDRESS TOKEN CONTAINER
    python .ci/container_checks.py prometheus API_URL REPLICAS

Each prints one line and exits 0 when its check holds, 1 (with the reason) otherwise.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import grpc

from nasbench import api
from nasbench.v1 import nasbench_pb2 as pb
from nasbench.v1 import nasbench_pb2_grpc as pb_grpc

CELLS = 423_624  # the synthetic full-scale store
INCEPTION = api.ModelSpec(
    matrix=[
        [0, 1, 1, 1, 0, 1, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 1, 0, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 0],
    ],
    ops=[api.INPUT, api.CONV1X1, api.CONV3X3, api.CONV3X3, api.CONV3X3, api.MAXPOOL3X3, api.OUTPUT],
)


def query(address: str, token: str, metrics_url: str) -> str:
    """A query with the token answers; a wrong token is refused; the metrics endpoint counted the calls."""
    nasbench = api.NASBench(address, seed=0, token=token)
    data = nasbench.query(INCEPTION)
    fixed, computed = nasbench.get_metrics_from_spec(INCEPTION)
    assert 0.0 < data["validation_accuracy"] <= 1.0 and fixed["trainable_parameters"] > 0, data
    assert sorted(computed) == [4, 12, 36, 108], sorted(computed)
    try:
        api.NASBench(address, seed=0, token="wrong-" + token).query(INCEPTION)
    except Exception as error:  # NotAuthorizedError
        assert "token" in str(error), error
    else:
        raise AssertionError("a wrong token was accepted")
    with urllib.request.urlopen(metrics_url, timeout=10) as response:
        text = response.read().decode()
    counted = [line for line in text.splitlines() if line.startswith("grpc_server_handled_total{")]
    assert any('grpc_code="UNAUTHENTICATED"' in line for line in counted), counted
    assert any('grpc_method="GetMetrics"' in line and 'grpc_code="OK"' in line for line in counted), counted
    return f"query ok (validation accuracy {data['validation_accuracy']:.4f}), wrong token refused, metrics counted"


def drain(address: str, token: str, container: str) -> str:
    """``docker stop`` while two streams are in flight: a ListCells stream, and a QueryStream that keeps sending
    queries after the SIGTERM; both finish completely, every query answered, and the container exits 0."""
    metadata = (("authorization", f"Bearer {token}"),)
    target = address.removeprefix("grpc://")
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.NasbenchStub(channel)
        listing = stub.ListCells(pb.ListCellsRequest(chunk_size=64), metadata=metadata, timeout=60)
        first = next(listing).hashes  # the stream is open; the rest is sent while the server drains
        received = len(first) // 16
        requests: queue.Queue[pb.QueryRequest | None] = queue.Queue()
        answers = stub.QueryStream(iter(requests.get, None), metadata=metadata, timeout=60)

        def ask(start: int, count: int) -> list[pb.QueryResponse]:
            for index in range(start, start + count):
                digest = first[16 * (index % 64) : 16 * (index % 64 + 1)]
                requests.put(pb.QueryRequest(cell=pb.CellRef(hash=digest), epochs=108, request_id=index))
            return [next(answers) for _ in range(count)]

        before = ask(0, 10)
        started = time.monotonic()
        docker = os.environ.get("DOCKER", "docker")
        stop = subprocess.Popen([docker, "stop", "-t", "30", container], stdout=subprocess.DEVNULL)
        try:
            after = ask(10, 200)  # sent on the open stream while the server drains
            requests.put(None)
            assert next(answers, None) is None
            received += sum(len(chunk.hashes) // 16 for chunk in listing)
        except grpc.RpcError as error:
            raise AssertionError(
                f"a stream in flight at SIGTERM ended with {error.code().name} ({received} of {CELLS} hashes) "
                f"{time.monotonic() - started:.1f}s after docker stop"
            ) from None
        streamed = time.monotonic() - started
        assert stop.wait(60) == 0, "docker stop failed"
    assert received == CELLS, f"the stream in flight at SIGTERM ended early: {received} of {CELLS} hashes"
    answered = [a.request_id for a in before + after if not a.HasField("error") and a.runs]
    assert answered == list(range(210)), f"queries answered on the stream: {len(answered)} of 210"
    seconds = time.monotonic() - started
    return (
        f"drained: a {CELLS}-hash ListCells stream and a QueryStream answering 200 queries sent after the SIGTERM "
        f"finished {streamed:.1f}s after docker stop; stopped in {seconds:.1f}s"
    )


def prometheus(api_url: str, replicas: int) -> str:
    """The compose Prometheus scrapes every replica, and sees the calls each of them served."""

    def ask(expression: str) -> float | None:
        url = f"{api_url}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
        with urllib.request.urlopen(url, timeout=10) as response:
            result = json.load(response)["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    up = 'count(up{job="nasbench"} == 1)'
    serving = 'count(sum by (instance) (grpc_server_handled_total{grpc_service="nasbench.v1.Nasbench"}) > 0)'
    deadline = time.monotonic() + 90
    while True:
        scraped, served = ask(up), ask(serving)
        if scraped == replicas and served == replicas:
            break
        assert time.monotonic() < deadline, f"replicas scraped {scraped}, replicas with calls {served}"
        time.sleep(1)
    with urllib.request.urlopen(f"{api_url}/api/v1/rules", timeout=10) as response:
        groups = json.load(response)["data"]["groups"]
    rules = sum(len(group["rules"]) for group in groups)
    assert rules >= 5, f"the alert rules were not loaded: {groups}"
    calls = ask('sum(grpc_server_handled_total{grpc_service="nasbench.v1.Nasbench"})')
    p99 = ask('histogram_quantile(0.99, sum by (le) (grpc_server_handling_seconds_bucket{grpc_type="unary"}))')
    cells = ask("sum(nasbench_cells_served_total)")
    return (
        f"prometheus: {replicas}/{replicas} replicas scraped and served calls ({calls:.0f}, {cells:.0f} cells, "
        f"unary p99 {p99 * 1000:.2f} ms), {rules} alert rules loaded"
    )


def main() -> int:
    command, *args = sys.argv[1:]
    try:
        if command == "query":
            print(query(*args))
        elif command == "drain":
            print(drain(*args))
        elif command == "prometheus":
            print(prometheus(args[0], int(args[1])))
        else:
            print(f"unknown check {command}")
            return 2
    except Exception as error:
        print(f"FAILED {command}: {type(error).__name__}: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
