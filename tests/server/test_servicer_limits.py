"""The servicer's own limits and states, on a server in this process with small limits (the process-level
behaviour, memory under hostile clients, is tests/reliability/test_hostile.py): stream slots taken and given
back, a stream whose client stops reading ended, big answers through the answer budget (given back after each
call), UNAVAILABLE while suspended, the requests counter, and ListCells' chunks."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest

from nasbench._store.reader import Store
from nasbench.v1 import nasbench_pb2 as pb
from nasbench.v1 import nasbench_pb2_grpc as pb_grpc
from nasbench_server import limits
from tests.inprocess import InProcessServer
from tests.polling import wait_for


@pytest.fixture(scope="module")
def limited(small_store: Path):
    """Two stream slots, a stall time of 1 s, an answer budget of one cell's answer."""
    with InProcessServer(
        small_store, max_streams=2, stream_stall_s=1.0, answer_budget_bytes=limits.cell_answer_bytes(4)
    ) as server:
        yield server


def _stub(channel: grpc.Channel) -> pb_grpc.NasbenchStub:
    return pb_grpc.NasbenchStub(channel)


class _Silent:
    """Request iterators for streams whose client sends nothing until told to stop."""

    def __init__(self) -> None:
        self._stop = threading.Event()

    def __iter__(self):
        self._stop.wait()
        yield from ()

    def stop(self) -> None:
        self._stop.set()


def _own_connection(address: str) -> grpc.Channel:
    """A channel with a connection of its own (channels with equal arguments share one): another client."""
    return grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])


def test_streams_past_the_limit_are_refused_and_slots_come_back(limited) -> None:
    """Two slots, taken by two clients' streams that are working (not idle): a third stream is refused, of
    either kind; once they end, every slot is back."""
    channels = [_own_connection(limited.address) for _ in range(3)]
    try:
        first = _stub(channels[0]).ListCells(pb.ListCellsRequest(chunk_size=1))
        second = _stub(channels[1]).ListCells(pb.ListCellsRequest(chunk_size=1))
        assert next(first).start == 0 and next(second).start == 0  # both open, each holding a slot
        assert limited.servicer.streams.open == 2
        stub = _stub(channels[2])
        for third in (
            lambda: next(stub.ListCells(pb.ListCellsRequest(chunk_size=1))),
            lambda: next(stub.QueryStream(iter([pb.QueryRequest()]))),
        ):
            with pytest.raises(grpc.RpcError) as info:
                third()
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert info.value.details() == "too many open streams (2): close finished streams or retry later"
        first.cancel()
        second.cancel()
        assert wait_for(lambda: limited.servicer.streams.open == 0)  # every slot given back, refused ones too
        assert len(list(stub.ListCells(pb.ListCellsRequest(chunk_size=1000)))) == 3
    finally:
        for channel in channels:
            channel.close()


def test_a_stream_whose_client_stops_reading_is_ended(limited, keys: list[int]) -> None:
    """Answers the client does not read fill the flow-control window; the server's next write then waits, and
    after the stall time the stream is ended RESOURCE_EXHAUSTED: the client, reading at last, gets the answers
    that were sent, then the status; the slot is given back."""
    requests = [pb.QueryRequest(cell=pb.CellRef(key=keys[i % len(keys)]), epochs=0) for i in range(20_000)]
    with grpc.insecure_channel(limited.address) as channel:
        answers = _stub(channel).QueryStream(iter(requests), timeout=120)
        assert wait_for(lambda: limited.servicer.streams.open == 1)
        written = -1
        while written != limited.servicer.requests:  # the server stopped: its write waits for the client
            written = limited.servicer.requests
            time.sleep(1.5)
        assert written < 20_000
        read = 0
        with pytest.raises(grpc.RpcError) as info:
            for answer in answers:
                assert answer.cell.key == keys[read % len(keys)]
                read += 1
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert info.value.details() == "the stream was ended: its client read nothing for 1 s"
        assert 0 < read < 20_000
    assert wait_for(lambda: limited.servicer.streams.open == 0)


def test_big_answers_pass_the_budget_one_after_another(limited, keys: list[int]) -> None:
    """Batches and samples of more than INLINE_CELLS cells each take the whole (tiny) budget and give it back
    when they end: one after another, and several at once, all complete."""
    big = keys[: limits.INLINE_CELLS + 100]
    with grpc.insecure_channel(limited.address) as channel:
        stub = _stub(channel)
        for _ in range(3):
            answer = stub.QueryBatch(pb.QueryBatchRequest(keys=big, epochs=108), timeout=30)
            assert answer.count == len(big) and answer.found == b"\x01" * len(big)
            assert np.frombuffer(answer.keys, dtype="<u8").tolist() == big
            sample = stub.Sample(pb.SampleRequest(k=limits.INLINE_CELLS + 1, seed=3), timeout=30)
            assert len(sample.cells) == limits.INLINE_CELLS + 1
        assert wait_for(lambda: limited.servicer.answers.used == 0)  # given back when each call ended
        results: list[int] = []

        def ask() -> None:
            results.append(stub.QueryBatch(pb.QueryBatchRequest(keys=big, epochs=4), timeout=30).count)

        threads = [threading.Thread(target=ask) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert results == [len(big)] * 4
        assert wait_for(lambda: limited.servicer.answers.used == 0)  # given back when each call ended


def test_a_suspended_service_answers_unavailable_with_the_reason(small_store: Path) -> None:
    with InProcessServer(small_store) as server, grpc.insecure_channel(server.address) as channel:
        stub = _stub(channel)
        assert stub.GetInfo(pb.GetInfoRequest()).cells == 2532
        server.servicer.suspend("the store file changed under the server")
        calls = [
            lambda: stub.GetInfo(pb.GetInfoRequest()),
            lambda: stub.Query(pb.QueryRequest(cell=pb.CellRef(key=1))),
            lambda: stub.QueryBatch(pb.QueryBatchRequest(keys=[1])),
            lambda: stub.GetOptima(pb.GetOptimaRequest()),
            lambda: next(stub.ListCells(pb.ListCellsRequest())),
            lambda: next(stub.QueryStream(iter([pb.QueryRequest()]))),
        ]
        for call in calls:
            with pytest.raises(grpc.RpcError) as info:
                call()
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
            assert info.value.details() == "the store file changed under the server"
        assert server.servicer.streams.open == 0
        server.servicer.suspend(None)
        assert stub.GetInfo(pb.GetInfoRequest()).cells == 2532
        server.servicer.engine = None  # not attached (yet): the loading message
        with pytest.raises(grpc.RpcError) as info:
            stub.GetInfo(pb.GetInfoRequest())
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert info.value.details() == "the store is still loading; retry shortly"


def test_every_call_counts_as_one_request(small_store: Path) -> None:
    with InProcessServer(small_store) as server, grpc.insecure_channel(server.address) as channel:
        stub = _stub(channel)
        before = stub.GetInfo(pb.GetInfoRequest()).requests_served
        stub.Ping(pb.PingRequest())
        stub.GetOptima(pb.GetOptimaRequest())
        list(stub.ListCells(pb.ListCellsRequest()))
        stub.QueryBatch(pb.QueryBatchRequest(keys=[1]))
        assert len(list(stub.QueryStream(iter([pb.QueryRequest(), pb.QueryRequest()])))) == 2
        assert stub.GetInfo(pb.GetInfoRequest()).requests_served == before + 7  # the stream's two messages


@pytest.mark.parametrize(("chunk", "start"), [(0, 0), (1000, 0), (1000, 1999), (7, 2530), (5, 2532), (5, 10**9)])
def test_list_cells_chunks(limited, small_store: Path, chunk: int, start: int) -> None:
    store = Store.open(small_store)
    try:
        expected = store.hashes[start:].tobytes()
    finally:
        store.close()
    with grpc.insecure_channel(limited.address) as channel:
        chunks = list(_stub(channel).ListCells(pb.ListCellsRequest(chunk_size=chunk, start=start)))
    size = chunk or 4096
    assert [c.start for c in chunks] == list(range(min(start, 2532), 2532, size))
    assert all(len(c.hashes) == 16 * size for c in chunks[:-1])
    assert b"".join(c.hashes for c in chunks) == expected


def test_list_cells_refuses_chunks_beyond_the_maximum(limited) -> None:
    with grpc.insecure_channel(limited.address) as channel:
        with pytest.raises(grpc.RpcError) as info:
            next(_stub(channel).ListCells(pb.ListCellsRequest(chunk_size=65537)))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert info.value.details() == "chunk_size must be 1 to 65536, got 65537"
        assert len(next(_stub(channel).ListCells(pb.ListCellsRequest(chunk_size=65536))).hashes) == 16 * 2532
    assert wait_for(lambda: limited.servicer.streams.open == 0)


def test_a_fresh_service_from_its_first_call(small_store: Path, keys: list[int]) -> None:
    """A service of its own (what its constructor sets is used by these very calls): the request counter starts
    at the first call, spec references are checked with the configuration, the limits hold at and past their
    value, big answers pass the answer budget, the optima and the single-repeat modes are the stored values."""
    from nasbench import canonical
    from nasbench._backends import wire as _wire
    from nasbench._engine.answers import hashed_repeat
    from nasbench._engine.engine import Engine

    engine = Engine.open(small_store)
    with (
        InProcessServer(
            small_store, max_sample=2532, max_batch=600, answer_budget_bytes=limits.cell_answer_bytes(4)
        ) as server,
        grpc.insecure_channel(server.address) as channel,
    ):
        stub = _stub(channel)
        assert stub.GetInfo(pb.GetInfoRequest()).requests_served == 1
        key = keys[5]
        decoded, ops = canonical.decode(key)
        matrix = decoded.astype(np.uint8).tobytes()
        by_packed = pb.CellRef(packed=_wire.packed_spec(key))
        by_matrix = pb.CellRef(matrix=pb.MatrixSpec(num_vertices=len(ops), adjacency=matrix, ops=ops))
        assert stub.Query(pb.QueryRequest(cell=by_packed, epochs=108)).cell.key == key
        assert stub.GetMetrics(pb.GetMetricsRequest(cell=by_matrix)).key == key
        neighbours = stub.Neighbors(pb.NeighborsRequest(cell=by_packed))
        assert [c.key for c in neighbours.cells] == engine.store.keys[engine.neighbors(key)].tolist()
        eight = pb.MatrixSpec(num_vertices=8, adjacency=np.eye(8, k=1, dtype=np.uint8).tobytes(), ops=["input"] * 8)
        with pytest.raises(grpc.RpcError) as info:
            stub.GetMetrics(pb.GetMetricsRequest(cell=pb.CellRef(matrix=eight)))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert info.value.details() == "too many vertices, got 8 (max vertices = 7)"

        assert len(stub.Sample(pb.SampleRequest(k=2532, seed=1), timeout=60).cells) == 2532
        assert stub.QueryBatch(pb.QueryBatchRequest(keys=keys[:600], epochs=4), timeout=60).count == 600
        for call, message in (
            (lambda: stub.Sample(pb.SampleRequest(k=2533)), "k = 2533 exceeds the limit of 2532"),
            (
                lambda: stub.QueryBatch(pb.QueryBatchRequest(keys=keys[:601])),
                "a batch of 601 cells exceeds the limit of 600",
            ),
        ):
            with pytest.raises(grpc.RpcError) as info:
                call()
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and info.value.details() == message
        assert wait_for(lambda: server.servicer.answers.used == 0)

        optima = {o.epochs: o for o in stub.GetOptima(pb.GetOptimaRequest()).optima}
        expected = engine.optima()
        assert sorted(optima) == sorted(expected) == [4, 12, 36, 108]
        for epochs, best in expected.items():
            found = optima[epochs]
            assert (found.validation_accuracy, found.test_accuracy) == (best.validation_accuracy, best.test_accuracy)
            assert found.validation_hash == engine.store.hashes[best.validation_row].tobytes()
            assert found.test_hash == engine.store.hashes[best.test_row].tobytes()

        row = engine.store.row_of_key(key)
        runs = engine.store.metrics[row, 3]
        for index in (0, 1, 2):
            answer = stub.Query(
                pb.QueryRequest(cell=pb.CellRef(key=key), epochs=108, repeat=pb.REPEAT_INDEX, repeat_index=index)
            )
            assert [r.test_accuracy for r in answer.runs] == [runs[index, 7]]
        assert {hashed_repeat(key, 108, seed) for seed in range(6)} == {0, 1, 2}
        for seed in range(6):
            answer = stub.Query(
                pb.QueryRequest(cell=pb.CellRef(key=key), epochs=108, repeat=pb.REPEAT_HASHED, seed=seed)
            )
            assert [r.test_accuracy for r in answer.runs] == [runs[hashed_repeat(key, 108, seed), 7]]
    engine.close()


def test_a_stream_whose_client_sends_nothing_is_ended(limited) -> None:
    """The stall time bounds reads too: a QueryStream that sends nothing is ended RESOURCE_EXHAUSTED after it
    (1 s here), and its slot is given back."""
    silent = _Silent()
    try:
        with grpc.insecure_channel(limited.address) as channel:
            started = time.monotonic()
            with pytest.raises(grpc.RpcError) as info:
                next(_stub(channel).QueryStream(iter(silent), timeout=20))
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert info.value.details() == "the stream was ended: its client sent nothing for 1 s"
            assert time.monotonic() - started < 10
    finally:
        silent.stop()
    assert wait_for(lambda: limited.servicer.streams.open == 0)


@pytest.fixture()
def four_slots(small_store: Path):
    """Four stream slots and a stall time (60 s) longer than the tests below wait."""
    with InProcessServer(small_store, max_streams=4, stream_stall_s=60.0) as server:
        yield server


def test_idle_streams_give_their_slots_to_new_ones(four_slots, keys: list[int]) -> None:
    """Every slot held by streams that send nothing: a new stream opens once one of them has been idle for
    EVICT_IDLE_S (it is ended to make room, and learns why), not before."""
    silents = [_Silent() for _ in range(4)]
    channels = [_own_connection(four_slots.address) for _ in range(3)]
    newcomer = _stub(channels[2])

    def opens() -> bool:
        try:
            fresh = newcomer.QueryStream(iter([pb.QueryRequest(cell=pb.CellRef(key=keys[0]))]), timeout=10)
            return next(fresh).cell.key == keys[0]
        except grpc.RpcError as error:
            assert error.details() == "too many open streams (4): close finished streams or retry later"
            return False

    try:
        holders = [_stub(channels[i % 2]).QueryStream(iter(silent), timeout=60) for i, silent in enumerate(silents)]
        assert wait_for(lambda: four_slots.servicer.streams.open == 4)
        held = time.monotonic()
        assert not opens()
        assert wait_for(opens, timeout=30)
        assert time.monotonic() - held >= limits.EVICT_IDLE_S - 0.5
        assert len(list(newcomer.ListCells(pb.ListCellsRequest(chunk_size=4096), timeout=10))) == 1
        ended = []
        for holder in holders:
            if holder.done():
                with pytest.raises(grpc.RpcError) as info:
                    next(holder)
                assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                ended.append(info.value.details())
        assert ended and all(
            details.startswith("the stream was ended to make room for another: its client had sent nothing for ")
            for details in ended
        )
    finally:
        for silent in silents:
            silent.stop()
        for channel in channels:
            channel.close()


def test_one_client_cannot_take_every_slot(four_slots, keys: list[int]) -> None:
    """A client (one connection) holds at most half the slots; another client's stream opens at once."""
    silents = [_Silent() for _ in range(4)]
    greedy, other = _own_connection(four_slots.address), _own_connection(four_slots.address)
    try:
        calls = [_stub(greedy).QueryStream(iter(silent), timeout=60) for silent in silents]
        assert wait_for(lambda: sum(call.done() for call in calls) == 2)  # the two past its share, refused at once
        for call in [call for call in calls if call.done()]:
            with pytest.raises(grpc.RpcError) as info:
                next(call)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert info.value.details() == (
                "too many open streams from this client (2 of 4): close finished streams or retry later"
            )
        assert four_slots.servicer.streams.open == 2
        answer = next(_stub(other).QueryStream(iter([pb.QueryRequest(cell=pb.CellRef(key=keys[1]))]), timeout=10))
        assert answer.cell.key == keys[1]
    finally:
        for silent in silents:
            silent.stop()
        greedy.close()
        other.close()
