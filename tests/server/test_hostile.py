"""Hostile clients: raw garbage, oversized messages, unknown methods, abandoned streams. The server keeps
serving, and a well-formed request afterwards still answers correctly."""

from __future__ import annotations

import random
import threading

import grpc
import pytest

from nasbench.v1 import nasbench_pb2 as pb
from nasbench.v1 import nasbench_pb2_grpc as pb_grpc

INCEPTION_HASH = "28cfc7874f6d200472e1a9dcd8650aa0"


@pytest.fixture()
def channel(server):
    with grpc.insecure_channel(server.address, options=[("grpc.max_send_message_length", 256 << 20)]) as opened:
        yield opened


def _still_serving(channel) -> None:
    stub = pb_grpc.NasbenchStub(channel)
    response = stub.Query(pb.QueryRequest(cell=pb.CellRef(hash_hex=INCEPTION_HASH), epochs=108), timeout=10)
    assert response.cell.trainable_parameters == 2_694_282 and len(response.runs) == 3


def _raw(channel, method: str):
    return channel.unary_unary(f"/nasbench.v1.Nasbench/{method}", request_serializer=None, response_deserializer=None)


METHODS = ["Query", "QueryBatch", "Sample", "GetMetrics"]
MALFORMED = dict.fromkeys(METHODS, "malformed")


@pytest.mark.parametrize(
    ("payload", "outcomes"),
    [
        pytest.param(b"\xff" * 64, MALFORMED, id="garbage"),
        *(pytest.param(random.Random(seed).randbytes(4096), MALFORMED, id=f"random-seed-{seed}") for seed in range(4)),
        pytest.param(b"\x0a\xff\xff\xff\xff\x0f", MALFORMED, id="length-past-end"),
        # field 1 holding 5 bytes: a CellRef with a wrongly typed field for Query and GetMetrics (malformed); five
        # packed keys (42, 3, 97, 98, 99: none a cell) for QueryBatch; an unknown field for Sample (k = 0)
        pytest.param(
            b"\x0a\x05\x2a\x03abc",
            {"Query": "malformed", "QueryBatch": "5 absent", "Sample": "0 cells", "GetMetrics": "malformed"},
            id="wrong-wire-type-inside",
        ),
    ],
)
@pytest.mark.parametrize("method", METHODS)
def test_garbage_payloads(channel, method: str, payload: bytes, outcomes: dict[str, str]) -> None:
    """Seeded hostile bytes, each with the one outcome it must get: INVALID_ARGUMENT naming the message for
    bytes that do not parse, a well-formed answer for bytes that happen to parse; and the server keeps serving."""
    request_type = getattr(pb, pb.DESCRIPTOR.services_by_name["Nasbench"].methods_by_name[method].input_type.name)
    expected = outcomes[method]
    if expected == "malformed":
        with pytest.raises(grpc.RpcError) as info:
            _raw(channel, method)(payload, timeout=10)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert info.value.details().startswith(f"malformed {request_type.DESCRIPTOR.name}: ")
    elif expected == "5 absent":
        response = pb.QueryBatchResponse.FromString(_raw(channel, method)(payload, timeout=10))
        assert response.count == 5 and response.found == bytes(5)
    else:
        assert pb.CellsResponse.FromString(_raw(channel, method)(payload, timeout=10)).cells == []
    _still_serving(channel)


def test_oversized_message_is_refused(channel) -> None:
    with pytest.raises(grpc.RpcError) as info:
        _raw(channel, "QueryBatch")(b"\x0a" + b"\x80\x80\x80\x40" + b"\x00" * (70 << 20), timeout=30)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    _still_serving(channel)


def test_huge_repeated_field_is_refused(channel) -> None:
    stub = pb_grpc.NasbenchStub(channel)
    with pytest.raises(grpc.RpcError) as info:
        stub.QueryBatch(pb.QueryBatchRequest(keys=range(2_000_000)), timeout=30)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    _still_serving(channel)


def test_unknown_method(channel) -> None:
    with pytest.raises(grpc.RpcError) as info:
        channel.unary_unary("/nasbench.v1.Nasbench/DropTables")(b"", timeout=5)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    _still_serving(channel)


def test_clients_that_disconnect_mid_stream(server) -> None:
    for _ in range(5):
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.NasbenchStub(channel)
            cells = stub.ListCells(pb.ListCellsRequest(chunk_size=1))
            next(cells)
            cells.cancel()
            gate = threading.Event()

            def requests(gate: threading.Event = gate):
                yield pb.QueryRequest(cell=pb.CellRef(hash_hex=INCEPTION_HASH), epochs=108)
                gate.wait(5)  # never sends the rest: the channel closes under it

            stream = stub.QueryStream(requests())
            next(stream)
            stream.cancel()
            gate.set()
    with grpc.insecure_channel(server.address) as channel:
        _still_serving(channel)


def test_negative_and_extreme_numbers(channel) -> None:
    stub = pb_grpc.NasbenchStub(channel)
    sampled = stub.Sample(pb.SampleRequest(k=3, seed=2**64 - 1, min_parameters=-(2**63), max_parameters=2**63 - 1))
    assert len(sampled.cells) == 3
    with pytest.raises(grpc.RpcError) as info:
        stub.Query(pb.QueryRequest(cell=pb.CellRef(key=2**64 - 1), epochs=2**32 - 1))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as info:
        stub.Query(pb.QueryRequest(cell=pb.CellRef(key=2**64 - 1)))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    _still_serving(channel)
