"""Scale-out on 127.0.0.1: three servers, one client with the three addresses; calls spread across all three;
one server killed mid-run; no query fails and every answer equals the local store's."""

from __future__ import annotations

import signal
import threading

import grpc

from nasbench import api
from nasbench.v1 import nasbench_pb2 as pb
from nasbench.v1 import nasbench_pb2_grpc as pb_grpc
from nasbench_server.process import ServerProcess, free_ports


def _served(address: str) -> int:
    with grpc.insecure_channel(address) as channel:
        return pb_grpc.NasbenchStub(channel).GetInfo(pb.GetInfoRequest(), timeout=10).requests_served


def test_three_replicas_round_robin_and_a_failure(full_store, tmp_path) -> None:
    ports = free_ports(3)
    servers = [ServerProcess(full_store, tmp_path, port=port) for port in ports]
    try:
        for server in servers:
            server.wait_serving()
        addresses = ",".join(f"127.0.0.1:{port}" for port in ports)
        remote = api.NASBench(addresses, seed=0, repeat=0)
        local = api.NASBench(full_store, seed=0, repeat=0)
        specs = local.sample(600, seed=11)
        before = [_served(server.address) for server in servers]
        first = [remote.query(s)["validation_accuracy"] for s in specs[:200]]
        spread = [_served(server.address) - b for server, b in zip(servers, before, strict=True)]
        assert all(count >= 30 for count in spread), f"calls per server: {spread}"

        killer = threading.Timer(0.3, lambda: servers[1].signal(signal.SIGKILL))
        killer.start()
        rest = [remote.query(s)["validation_accuracy"] for s in specs[200:]]  # no exception may escape
        killer.join()
        assert servers[1].process.wait(10) == -signal.SIGKILL
        assert first + rest == [local.query(s)["validation_accuracy"] for s in specs]
        assert servers[0].process.poll() is None and servers[2].process.poll() is None
    finally:
        for server in servers:
            server.stop()
