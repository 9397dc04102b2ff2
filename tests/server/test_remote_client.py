"""The remote backend: repeated cells cost no round trip, the client survives fork, errors are ours."""

from __future__ import annotations

import json
import os
import time

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
