"""Hostile clients: memory they can make the server hold is bounded, big requests do not stall health or small
calls. Bounds asserted here (anonymous memory of the server process):

- 400 requests naming an op of 5 MB each (2 GB sent): under 256 MB more than at start (was 3.9 GB for 600);
- streams: at most ``max_streams`` (64) open, the others refused; 200 never read hold under 300 MB more;
- 20 unauthenticated requests of 60 MB (1.2 GB sent): under 256 MB more (refused before our code reads them;
  gRPC's transport still takes in up to its flow-control window per stream: about 100 MB on the quiet machine,
  130 MB with the machine loaded to 8, never the 1.2 GB a read would hold);
- 4 concurrent samples of 100,000 cells: health answers from another process with p99 under 500 ms and the
  server's memory stays under its answer budget (256 MB) plus what it started with and 200 MB of slack.
"""

from __future__ import annotations

import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from nasbench.v1 import nasbench_pb2 as pb
from nasbench.v1 import nasbench_pb2_grpc as pb_grpc
from nasbench_server.process import HealthProber, ServerProcess
from tests.polling import wait_for
from tests.reliability.conftest import anonymous_mb

BIG = [("grpc.max_send_message_length", 256 << 20), ("grpc.max_receive_message_length", 256 << 20)]


@pytest.fixture
def big_server(full_store, tmp_path):
    server = ServerProcess(full_store, tmp_path).wait_serving()
    yield server
    server.stop()


def test_huge_op_names_are_not_kept(big_server):
    start = anonymous_mb(big_server.process.pid)
    with grpc.insecure_channel(big_server.address, options=BIG) as channel:
        stub = pb_grpc.NasbenchStub(channel)
        for i in range(400):
            matrix = pb.MatrixSpec(num_vertices=3, adjacency=bytes([0, 1, 0, 0, 0, 1, 0, 0, 0]))
            matrix.ops.extend(["input", "x" * (5 << 20) + str(i), "output"])
            with pytest.raises(grpc.RpcError) as info:
                stub.GetMetrics(pb.GetMetricsRequest(cell=pb.CellRef(matrix=matrix)), timeout=30)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert len(info.value.details()) < 1100, "details echo at most 1,000 characters of the input"
    assert anonymous_mb(big_server.process.pid) - start < 256


def test_open_streams_are_capped(big_server):
    """64 streams held open (two clients, 32 each: a client holds at most half) and working: a 65th is refused
    until one of them closes."""
    own = [("grpc.use_local_subchannel_pool", 1)]
    with (
        grpc.insecure_channel(big_server.address, options=own) as first,
        grpc.insecure_channel(big_server.address, options=own) as second,
        grpc.insecure_channel(big_server.address, options=own) as third,
    ):
        stubs = [pb_grpc.NasbenchStub(channel) for channel in (first, second, third)]
        feeds = [_Feed() for _ in range(65)]
        calls = [stubs[min(i // 32, 2)].QueryStream(iter(feed), timeout=120) for i, feed in enumerate(feeds)]
        for feed, call in zip(feeds[:64], calls[:64], strict=True):
            feed.send(pb.QueryRequest(cell=pb.CellRef(key=0), request_id=1))
            assert next(call).request_id == 1  # open and answering
        feeds[64].send(pb.QueryRequest(cell=pb.CellRef(key=0)))
        with pytest.raises(grpc.RpcError) as info:
            next(calls[64])
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "too many open streams (64)" in info.value.details()
        feeds[0].close()
        assert list(calls[0]) == []
        late = _Feed()
        again = stubs[2].QueryStream(iter(late), timeout=60)
        late.send(pb.QueryRequest(cell=pb.CellRef(key=0), request_id=7))
        assert next(again).request_id == 7, "a slot was given back"
        for feed in [*feeds, late]:
            feed.close()


class _Feed:
    """Request messages for a stream, sent when the test says so."""

    def __init__(self) -> None:
        self._items: list[pb.QueryRequest | None] = []
        self._ready = threading.Condition()

    def send(self, message: pb.QueryRequest | None) -> None:
        with self._ready:
            self._items.append(message)
            self._ready.notify()

    def close(self) -> None:
        self.send(None)

    def __iter__(self):
        while True:
            with self._ready:
                self._ready.wait_for(lambda: self._items)
                message = self._items.pop(0)
            if message is None:
                return
            yield message


def test_unread_list_streams_hold_bounded_memory(big_server):
    start = anonymous_mb(big_server.process.pid)
    with grpc.insecure_channel(big_server.address, options=BIG) as channel:
        stub = pb_grpc.NasbenchStub(channel)
        calls = [stub.ListCells(pb.ListCellsRequest(chunk_size=65536), timeout=60) for _ in range(200)]
        time.sleep(3)  # the server writes what flow control lets it; nobody reads
        held = anonymous_mb(big_server.process.pid) - start
        for call in calls:
            try:
                next(call)
            except grpc.RpcError as error:  # past the cap of open streams
                assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            call.cancel()
    assert held < 300


def test_unauthenticated_big_requests_are_refused_unread(full_store, tmp_path):
    server = ServerProcess(full_store, tmp_path, env={"NASBENCH_TOKEN": "secret"}).wait_serving()
    try:
        start = anonymous_mb(server.process.pid)
        request = pb.QueryBatchRequest(keys=list(range(2**62, 2**62 + 6_000_000)))  # 60 MB
        codes: list[grpc.StatusCode] = []
        peak = [start]
        with grpc.insecure_channel(server.address, options=BIG) as channel:
            stub = pb_grpc.NasbenchStub(channel)

            def send() -> None:
                try:
                    stub.QueryBatch(request, timeout=60)
                except grpc.RpcError as error:
                    codes.append(error.code())

            senders = [threading.Thread(target=send) for _ in range(20)]
            for sender in senders:
                sender.start()
            while any(sender.is_alive() for sender in senders):
                peak[0] = max(peak[0], anonymous_mb(server.process.pid))
                senders[0].join(0.05)
            for sender in senders:
                sender.join()
        assert codes == [grpc.StatusCode.UNAUTHENTICATED] * 20
        assert peak[0] - start < 256
    finally:
        server.stop()


def test_big_samples_do_not_stall_health(big_server):
    start = anonymous_mb(big_server.process.pid)
    peak = [start]
    failures: list[str] = []
    with HealthProber(big_server.address) as prober, grpc.insecure_channel(big_server.address, options=BIG) as channel:
        stub = pb_grpc.NasbenchStub(channel)

        def sample(seed: int) -> None:
            try:
                assert len(stub.Sample(pb.SampleRequest(k=100_000, seed=seed), timeout=300).cells) == 100_000
            except Exception as exc:  # every failed sample fails the test
                failures.append(repr(exc))

        samplers = [threading.Thread(target=sample, args=(seed,)) for seed in range(4)]
        for sampler in samplers:
            sampler.start()
        while any(sampler.is_alive() for sampler in samplers):
            peak[0] = max(peak[0], anonymous_mb(big_server.process.pid))
            samplers[0].join(0.1)
    latencies = prober.latencies
    assert failures == []
    assert len(latencies) > 20
    assert latencies[int(len(latencies) * 0.99)] < 0.5, f"health p99 {latencies[int(len(latencies) * 0.99)]:.3f} s"
    assert peak[0] - start < 256 + 200


def test_idle_streams_lock_out_neither_new_streams_nor_hash_iterator(big_server):
    """70 QueryStream calls that send nothing and set no deadline, over 5 connections (none past its half of the
    slots), so that they take all 64 slots: health is answered at once, and a new stream of another client and
    ``hash_iterator`` (a ListCells stream) as soon as an idle stream has waited EVICT_IDLE_S, not when the idle
    ones give up."""
    from nasbench import api
    from nasbench_server import limits

    never = threading.Event()

    def nothing():
        never.wait()
        yield from ()

    def own_connection() -> grpc.Channel:
        return grpc.insecure_channel(big_server.address, options=[("grpc.use_local_subchannel_pool", 1)])

    idle_channels = [own_connection() for _ in range(5)]
    idle = [pb_grpc.NasbenchStub(idle_channels[i % 5]).QueryStream(nothing()) for i in range(70)]
    try:
        assert wait_for(lambda: sum(call.done() for call in idle) == 70 - 64)  # only those past the 64 slots refused
        opened = time.monotonic()
        with own_connection() as other:
            health = health_pb2_grpc.HealthStub(other).Check(health_pb2.HealthCheckRequest(), timeout=1.0)
            assert health.status == health_pb2.HealthCheckResponse.SERVING

            def answered() -> bool:
                try:
                    answer = next(pb_grpc.NasbenchStub(other).QueryStream(iter([pb.QueryRequest()]), timeout=10))
                except grpc.RpcError as error:
                    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error
                    return False
                return answer.error.kind == "InvalidSpecError"  # answered (an empty reference is an error answer)

            assert wait_for(answered, timeout=30)
        assert limits.EVICT_IDLE_S - 0.5 <= time.monotonic() - opened < limits.EVICT_IDLE_S + 10
        nasbench = api.NASBench(f"grpc://{big_server.address}")
        try:
            assert sum(1 for _ in nasbench.hash_iterator()) == 423_624
        finally:
            nasbench.close()
        ended = [call for call in idle[:64] if call.done()]
        assert ended  # the idle streams made room, and say why
        for call in ended:
            with pytest.raises(grpc.RpcError) as info:
                next(call)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        never.set()
        for call in idle:
            call.cancel()
        for channel in idle_channels:
            channel.close()
