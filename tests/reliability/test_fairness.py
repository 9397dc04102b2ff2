"""Medium calls are fair against heavy ones: a 2,000-cell QueryBatch is not queued behind another client's
100,000-cell samples, and a heavy client stopped in the middle of its answers holds up only itself
(``limits.Lanes``: a medium and a heavy lane, clients taking turns, none holding more than half a lane's bytes).
Latencies are figures of ``nasbench bench reliability``; these tests check the order of events and deadlines."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import urllib.request

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from nasbench._store.reader import Store
from nasbench.v1 import nasbench_pb2 as pb
from nasbench.v1 import nasbench_pb2_grpc as pb_grpc
from nasbench_server.process import ServerProcess, free_ports
from tests.polling import wait_for

BIG = [("grpc.max_receive_message_length", 256 << 20), ("grpc.use_local_subchannel_pool", 1)]
# a client process asking for four samples of 100,000 cells at a time, in a loop, until killed
SAMPLER = """
import sys, threading, grpc
from nasbench.v1 import nasbench_pb2 as pb, nasbench_pb2_grpc as pb_grpc
channel = grpc.insecure_channel(sys.argv[1], options=[("grpc.max_receive_message_length", 256 << 20)])
stub = pb_grpc.NasbenchStub(channel)
def loop(seed):
    while True:
        stub.Sample(pb.SampleRequest(k=100_000, seed=seed), timeout=600)
        print("answered", flush=True)
for seed in range(4):
    threading.Thread(target=loop, args=(seed,), daemon=True).start()
threading.Event().wait()
"""


@pytest.fixture(scope="module")
def keys(full_store) -> list[int]:
    store = Store.open(full_store)
    try:
        return store.keys[::200].tolist()[:2000]
    finally:
        store.close()


@pytest.fixture
def fair_server(full_store, tmp_path):
    port = free_ports()[0]
    server = ServerProcess(full_store, tmp_path, extra=["--metrics-port", str(port)]).wait_serving()
    server.metrics_port = port
    yield server
    server.stop()


def _in_flight(server, method: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "nasbench_in_flight_requests" and sample.labels.get("grpc_method") == method
    )


def test_a_medium_batch_is_not_queued_behind_big_samples(fair_server, keys):
    """Four samples of 100,000 cells from one client, in flight; then another client's 2,000-cell batch. It is
    answered before the second of the samples still in flight: first come, first served made it wait for all."""
    finished: list[str] = []
    with (
        grpc.insecure_channel(fair_server.address, options=BIG) as heavy,
        grpc.insecure_channel(fair_server.address, options=BIG) as medium,
    ):

        def sample(seed: int) -> None:
            pb_grpc.NasbenchStub(heavy).Sample(pb.SampleRequest(k=100_000, seed=seed), timeout=300)
            finished.append("sample")

        samplers = [threading.Thread(target=sample, args=(seed,)) for seed in range(4)]
        for sampler in samplers:
            sampler.start()
        # all four reached the server: in flight, or on a loaded machine the first already answered (counted
        # before the server is asked, so that a sample ending in between is counted in neither, not in both)
        assert wait_for(lambda: finished.count("sample") + _in_flight(fair_server, "Sample") >= 4)
        ahead = finished.count("sample")
        assert ahead <= 2, f"{ahead} samples ended before the batch was sent: too few left to queue behind"
        answer = pb_grpc.NasbenchStub(medium).QueryBatch(pb.QueryBatchRequest(keys=keys, epochs=108), timeout=60)
        finished.append("batch")
        for sampler in samplers:
            sampler.join(300)
    assert answer.count == 2000 and answer.found == b"\x01" * 2000
    # first come, first served would answer it after every sample still in flight (4 - ahead of them)
    assert finished.index("batch") <= ahead + 1, finished


def test_a_stopped_heavy_client_holds_up_only_itself(fair_server, keys):
    """A client looping four 100,000-cell samples is stopped (SIGSTOP) in the middle of its answers, reading
    nothing more: other clients' 2,000-cell batches and a 100,000-cell sample still meet a 10 s deadline."""
    with subprocess.Popen(
        [sys.executable, "-c", SAMPLER, fair_server.address], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    ) as sampler:
        try:
            assert sampler.stdout is not None and sampler.stdout.readline() == b"answered\n"
            assert wait_for(lambda: _in_flight(fair_server, "Sample") >= 2)
            sampler.send_signal(signal.SIGSTOP)
            time.sleep(1.0)  # the server's sends to it stall: its receive buffers are full
            with grpc.insecure_channel(fair_server.address, options=BIG) as channel:
                stub = pb_grpc.NasbenchStub(channel)
                for _ in range(5):
                    assert stub.QueryBatch(pb.QueryBatchRequest(keys=keys, epochs=108), timeout=10).count == 2000
                assert len(stub.Sample(pb.SampleRequest(k=100_000, seed=9), timeout=10).cells) == 100_000
        finally:
            sampler.send_signal(signal.SIGCONT)
            sampler.kill()
