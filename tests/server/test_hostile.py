"""Hostile clients: raw garbage, oversized messages, unknown methods, abandoned streams. The server keeps
serving, and a well-formed request afterwards still answers correctly."""

from __future__ import annotations

import os
import threading

import grpc
import pytest
from google.protobuf.message import DecodeError

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


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"\xff" * 64, id="garbage"),
        pytest.param(os.urandom(4096), id="random"),
        pytest.param(b"\x0a\xff\xff\xff\xff\x0f", id="length-past-end"),
        pytest.param(b"\x0a\x05\x2a\x03abc", id="wrong-wire-type-inside"),
    ],
)
@pytest.mark.parametrize("method", ["Query", "QueryBatch", "Sample", "GetMetrics"])
def test_garbage_payloads(channel, method: str, payload: bytes) -> None:
    """Bytes that do not parse get INVALID_ARGUMENT naming the message; bytes that happen to parse get an
    answer or a clean domain error; never UNKNOWN or INTERNAL."""
    request_type = getattr(pb, pb.DESCRIPTOR.services_by_name["Nasbench"].methods_by_name[method].input_type.name)
    try:
        request_type.FromString(payload)
        parses = True
    except DecodeError:
        parses = False
    try:
        _raw(channel, method)(payload, timeout=10)
        assert parses
    except grpc.RpcError as error:
        if parses:
            assert error.code() in (
                grpc.StatusCode.INVALID_ARGUMENT,
                grpc.StatusCode.NOT_FOUND,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
            ), error
        else:
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert error.details().startswith(f"malformed {request_type.DESCRIPTOR.name}: ")
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
