"""Every remote call ends within its deadline, streams included, and abandoned streams leave no error in the
server's log."""

from __future__ import annotations

import signal
import time

import grpc
import pytest

from nasbench import api
from nasbench.errors import ServiceUnavailableError
from nasbench.v1 import nasbench_pb2 as pb
from nasbench.v1 import nasbench_pb2_grpc as pb_grpc
from nasbench_server.process import ServerProcess
from tests.reliability.conftest import log_events


def test_hash_iterator_against_a_frozen_server_ends_at_the_deadline(small_store, tmp_path):
    server = ServerProcess(small_store, tmp_path).wait_serving()
    try:
        nasbench = api.NASBench(f"grpc://{server.address}", timeout=2)
        server.signal(signal.SIGSTOP)
        started = time.monotonic()
        with pytest.raises(ServiceUnavailableError, match="DEADLINE_EXCEEDED"):
            list(nasbench.hash_iterator())
        assert time.monotonic() - started < 10
        server.signal(signal.SIGCONT)
        assert len(list(nasbench.hash_iterator())) == 2532
    finally:
        server.signal(signal.SIGCONT)
        server.stop()


def test_abandoned_streams_log_no_error(small_store, tmp_path):
    server = ServerProcess(small_store, tmp_path).wait_serving()
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.NasbenchStub(channel)
            for _ in range(20):
                stream = stub.ListCells(pb.ListCellsRequest(chunk_size=1))
                next(stream)
                stream.cancel()
            assert stub.GetInfo(pb.GetInfoRequest(), timeout=10).cells == 2532
    finally:
        server.stop()
    errors = [event for event in log_events(server.log) if event.get("level") not in ("info", "warning")]
    assert errors == []
