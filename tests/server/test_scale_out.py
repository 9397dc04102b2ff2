"""Scale-out on 127.0.0.1: three servers, one client with the three addresses; calls spread across all three;
one server killed after exactly 200 answered calls, mid-run; no query fails, the survivors answer every later
call, and every answer equals the local store's."""

from __future__ import annotations

import signal

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

        # Kill one replica outright after exactly 200 answered calls, with the client's connections to it open;
        # the next calls that round-robin would send there must go to the others, and none may fail.
        servers[1].signal(signal.SIGKILL)
        assert servers[1].process.wait(10) == -signal.SIGKILL
        survivors = [servers[0], servers[2]]
        before_rest = [_served(server.address) for server in survivors]
        rest = [remote.query(s)["validation_accuracy"] for s in specs[200:]]  # no exception may escape
        after_rest = [_served(server.address) for server in survivors]
        # every one of the 400 later calls was answered by a survivor (plus each survivor's own GetInfo above)
        assert sum(after - before for after, before in zip(after_rest, before_rest, strict=True)) == 400 + 2
        assert first + rest == [local.query(s)["validation_accuracy"] for s in specs]
        assert servers[0].process.poll() is None and servers[2].process.poll() is None
    finally:
        for server in servers:
            server.stop()
