"""What the servicer does that a client alone cannot see, checked on a server in this process: the cells and
batch sizes it reports to Prometheus, the answer budget each big call asks for, a big call whose deadline passed
while it queued, a store suspended in the middle of a QueryStream, and internal errors logged with their
traceback. (Answers and statuses of every method: test_service.py; limits: test_servicer_limits.py.)"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from prometheus_client import REGISTRY

from nasbench.errors import NasbenchError
from nasbench.v1 import nasbench_pb2 as pb
from nasbench.v1 import nasbench_pb2_grpc as pb_grpc
from nasbench_server import limits, metrics
from tests.inprocess import InProcessServer
from tests.polling import wait_for


@pytest.fixture
def server(small_store: Path):
    with InProcessServer(small_store, max_sample=2532) as server:
        yield server


def _on_loop(server: InProcessServer, coroutine):
    return asyncio.run_coroutine_threadsafe(coroutine, server._loop).result(30)


def _cells(budget: str) -> float:
    return REGISTRY.get_sample_value("nasbench_cells_served_total", {"budget": budget}) or 0.0


def _batches(method: str) -> tuple[float, float]:
    labels = {"grpc_method": method}
    count = REGISTRY.get_sample_value("nasbench_batch_cells_count", labels) or 0.0
    total = REGISTRY.get_sample_value("nasbench_batch_cells_sum", labels) or 0.0
    return count, total


def test_cells_and_batch_sizes_are_counted_by_budget_and_method(server, keys, monkeypatch) -> None:
    """Each method reports the cells it answered, under the budget asked (``all`` for answers carrying every
    budget), and QueryBatch / Sample their size; absent cells are not counted as answered."""
    monkeypatch.setattr(metrics, "_enabled", True)  # what --metrics-port switches on in a worker
    before = {budget: _cells(budget) for budget in ("4", "108", "all")}
    batches = {method: _batches(method) for method in ("QueryBatch", "Sample")}
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.NasbenchStub(channel)
        stub.Query(pb.QueryRequest(cell=pb.CellRef(key=keys[0]), epochs=108))
        stub.Query(pb.QueryRequest(cell=pb.CellRef(key=keys[1]), epochs=0))
        stub.QueryBatch(pb.QueryBatchRequest(keys=[*keys[:5], 1], epochs=4))  # 1: no cell has that key
        stub.Sample(pb.SampleRequest(k=7, seed=1))
        neighbours = stub.Neighbors(pb.NeighborsRequest(cell=pb.CellRef(key=keys[2])))
        stub.GetMetrics(pb.GetMetricsRequest(cell=pb.CellRef(key=keys[3])))
    assert _cells("108") - before["108"] == 1
    assert _cells("4") - before["4"] == 5
    assert _cells("all") - before["all"] == 1 + 7 + len(neighbours.cells) + 1
    assert _batches("QueryBatch") == (batches["QueryBatch"][0] + 1, batches["QueryBatch"][1] + 6)
    assert _batches("Sample") == (batches["Sample"][0] + 1, batches["Sample"][1] + 7)


def _occupy(server: InProcessServer, lane: limits.Lane) -> threading.Event:
    """Keep ``lane``'s thread busy until the returned event is set."""
    release = threading.Event()

    async def hold() -> None:
        ticket = lane.ticket("the test", 0)
        try:
            await lane.run(ticket, release.wait, 30)
        finally:
            lane.release(ticket)

    asyncio.run_coroutine_threadsafe(hold(), server._loop)
    assert wait_for(lambda: lane.running)
    return release


def _queued(lane: limits.Lane) -> list[int]:
    """The answer bytes of the calls waiting in ``lane``, oldest first per client, clients in turn."""
    return [ticket.nbytes for queue in list(lane._queues.values()) for ticket in queue]


def test_big_calls_ask_the_budget_for_their_size_small_ones_do_not(server, keys) -> None:
    """With the medium lane's thread taken, big batches (by keys or by cell references) and samples wait there,
    each for its own size in bytes, while a batch of exactly INLINE_CELLS cells is answered at once; once the
    thread is free, all complete and every byte is given back."""
    lane = server.servicer.answers.medium
    cell_bytes = limits.cell_answer_bytes(4)
    big = limits.INLINE_CELLS + 1
    release = _occupy(server, lane)
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.NasbenchStub(channel)
        batch = stub.QueryBatch.future(pb.QueryBatchRequest(keys=keys[:big], epochs=108), timeout=60)
        assert wait_for(lambda: len(_queued(lane)) == 1)
        sample = stub.Sample.future(pb.SampleRequest(k=big + 10, seed=2), timeout=60)
        assert wait_for(lambda: len(_queued(lane)) == 2)
        refs = [pb.CellRef(key=key) for key in keys[: big + 20]]
        by_refs = stub.QueryBatch.future(pb.QueryBatchRequest(cells=refs, epochs=108), timeout=60)
        assert wait_for(lambda: len(_queued(lane)) == 3)
        assert _queued(lane) == [big * cell_bytes, (big + 10) * cell_bytes, (big + 20) * cell_bytes]
        inline = stub.QueryBatch(pb.QueryBatchRequest(keys=keys[: limits.INLINE_CELLS], epochs=4), timeout=30)
        assert inline.count == limits.INLINE_CELLS
        assert not batch.done() and not sample.done() and not by_refs.done()
        release.set()
        assert batch.result().count == big
        assert len(sample.result().cells) == big + 10
        assert by_refs.result().count == big + 20
    assert wait_for(lambda: server.servicer.answers.used == 0)


def test_a_big_call_whose_deadline_passed_while_it_queued_is_not_computed(server, keys, monkeypatch) -> None:
    """Nobody waits for its answer: gRPC cancels the handler at the deadline, and the queued call leaves the
    lane with it (the lane also drops a call whose deadline passed when its turn comes, for the moment before
    the cancellation arrives)."""
    servicer = server.servicer
    computed: list[int] = []
    original = servicer._query_batch

    def counting(request: pb.QueryBatchRequest):
        computed.append(len(request.keys))
        return original(request)

    monkeypatch.setattr(servicer, "_query_batch", counting)
    lane = servicer.answers.medium
    release = _occupy(server, lane)
    big = keys[: limits.INLINE_CELLS + 1]
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.NasbenchStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.QueryBatch(pb.QueryBatchRequest(keys=big, epochs=108), timeout=0.3)
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        time.sleep(0.2)  # the server's deadline (taken from the call's header, a little later) has passed too
        release.set()
        assert wait_for(lambda: not lane.running and not _queued(lane))  # the queued call has had its turn
        assert computed == []
        assert stub.QueryBatch(pb.QueryBatchRequest(keys=big, epochs=108), timeout=30).count == len(big)
        assert computed == [len(big)]


def test_a_store_suspended_during_a_query_stream_ends_it_unavailable(server, keys) -> None:
    """Answers before the suspension are the cells; the next request ends the stream with the reason, not with
    an answer (an earlier one repeated, say)."""
    requests: queue.Queue[pb.QueryRequest | None] = queue.Queue()

    def feed() -> Iterator[pb.QueryRequest]:
        while (request := requests.get()) is not None:
            yield request

    with grpc.insecure_channel(server.address) as channel:
        answers = pb_grpc.NasbenchStub(channel).QueryStream(feed(), timeout=30)
        requests.put(pb.QueryRequest(cell=pb.CellRef(key=keys[0]), epochs=108, request_id=1))
        first = next(answers)
        assert (first.request_id, first.cell.key) == (1, keys[0])
        server.servicer.suspend("the store file changed under the server")
        requests.put(pb.QueryRequest(cell=pb.CellRef(key=keys[1]), epochs=108, request_id=2))
        with pytest.raises(grpc.RpcError) as info:
            next(answers)
        requests.put(None)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert info.value.details() == "the store file changed under the server"
    assert wait_for(lambda: server.servicer.streams.open == 0)


def test_an_internal_error_is_internal_and_logged_with_its_traceback(server, keys, monkeypatch, caplog) -> None:
    def broken(*args: object) -> None:
        raise NasbenchError("the metrics array is unreadable")

    monkeypatch.setattr(server.servicer.engine, "cell", broken)
    with (
        caplog.at_level(logging.ERROR, logger="nasbench.server"),
        grpc.insecure_channel(server.address) as channel,
        pytest.raises(grpc.RpcError) as info,
    ):
        pb_grpc.NasbenchStub(channel).Query(pb.QueryRequest(cell=pb.CellRef(key=keys[0]), epochs=108))
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert info.value.details() == "the metrics array is unreadable"
    [record] = [r for r in caplog.records if r.name == "nasbench.server"]
    assert record.getMessage() == "internal error"
    assert record.exc_info is not None and record.exc_info[0] is NasbenchError
    assert "in broken" in caplog.text  # the traceback, down to the frame that raised


def test_an_invalid_budget_names_the_budgets_of_the_store(server, keys) -> None:
    with grpc.insecure_channel(server.address) as channel, pytest.raises(grpc.RpcError) as info:
        pb_grpc.NasbenchStub(channel).Query(pb.QueryRequest(cell=pb.CellRef(key=keys[0]), epochs=5))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (
        info.value.details() == "invalid number of epochs, must be one of {108, 4, 12, 36}"
    )  # the original prints a set
