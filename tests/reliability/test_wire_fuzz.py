"""A seeded fuzz of every method on the wire: random bytes, mutated valid messages and random field values get
a precise status, never UNKNOWN or INTERNAL, and the server stays healthy."""

from __future__ import annotations

import random

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from nasbench._backends.wire import packed_spec
from nasbench._store.reader import Store
from nasbench.v1 import nasbench_pb2 as pb
from nasbench_server.process import ServerProcess

SERVICE = pb.DESCRIPTOR.services_by_name["Nasbench"]
FORBIDDEN = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
PER_METHOD = 300


def _valid(method: str, rng: random.Random, key: int, cell: int) -> bytes:
    """A plausible request of each method (then mutated): ``key`` is any number, ``cell`` a key of the store."""
    ref = rng.choice(
        [
            pb.CellRef(key=key),
            pb.CellRef(key=cell),
            pb.CellRef(hash=rng.randbytes(16)),
            pb.CellRef(hash_hex=rng.randbytes(16).hex()),
            pb.CellRef(packed=packed_spec(cell)),
            pb.CellRef(matrix=pb.MatrixSpec(num_vertices=3, adjacency=bytes(9), ops=["input", "x", "output"])),
        ]
    )
    requests = {
        "Query": lambda: pb.QueryRequest(cell=ref, epochs=rng.choice([0, 4, 108, 7]), repeat=rng.randrange(5)),
        "QueryBatch": lambda: pb.QueryBatchRequest(keys=[key, rng.getrandbits(64)], cells=[ref], epochs=108),
        "QueryStream": lambda: pb.QueryRequest(cell=ref, epochs=108),
        "Sample": lambda: pb.SampleRequest(k=rng.randrange(50), seed=rng.getrandbits(64), ops=[rng.randrange(6)]),
        "Neighbors": lambda: pb.NeighborsRequest(cell=ref),
        "GetMetrics": lambda: pb.GetMetricsRequest(cell=ref),
        "ListCells": lambda: pb.ListCellsRequest(chunk_size=rng.randrange(70000), start=rng.getrandbits(20)),
        "GetInfo": pb.GetInfoRequest,
        "GetOptima": pb.GetOptimaRequest,
        "Ping": pb.PingRequest,
    }
    return requests[method]().SerializeToString()


def _mutate(raw: bytes, rng: random.Random) -> bytes:
    choice = rng.randrange(4)
    if choice == 0 or not raw:
        return rng.randbytes(rng.randrange(64))
    data = bytearray(raw)
    if choice == 1:
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif choice == 2:
        del data[rng.randrange(len(data)) :]
    else:
        data += rng.randbytes(rng.randrange(1, 16))
    return bytes(data)


@pytest.fixture(scope="module")
def fuzz_server(small_store, tmp_path_factory):
    server = ServerProcess(small_store, tmp_path_factory.mktemp("fuzz")).wait_serving()
    yield server
    server.stop()


@pytest.mark.parametrize("method", [m.name for m in SERVICE.methods])
def test_fuzzed_requests_get_precise_statuses(fuzz_server, small_store, method):
    rng = random.Random(f"fuzz-{method}")
    descriptor = SERVICE.methods_by_name[method]
    path = f"/{SERVICE.full_name}/{method}"
    seen: dict[str, int] = {}
    store = Store.open(small_store)
    cells = store.keys.tolist()
    store.close()
    with grpc.insecure_channel(fuzz_server.address) as channel:
        if descriptor.client_streaming:
            call = channel.stream_stream(path)
        elif descriptor.server_streaming:
            call = channel.unary_stream(path)
        else:
            call = channel.unary_unary(path)
        for _ in range(PER_METHOD):
            raw = _valid(method, rng, key=rng.getrandbits(rng.choice([8, 31, 40, 64])), cell=rng.choice(cells))
            if rng.random() < 0.7:
                raw = _mutate(raw, rng)
            try:
                if descriptor.client_streaming:
                    list(call(iter([raw] * rng.randrange(1, 3)), timeout=10))
                elif descriptor.server_streaming:
                    list(call(raw, timeout=10))
                else:
                    call(raw, timeout=10)
                code = grpc.StatusCode.OK
            except grpc.RpcError as error:
                code = error.code()
                assert code not in FORBIDDEN, f"{method}: {code.name}: {error.details()} for {raw.hex()}"
            seen[code.name] = seen.get(code.name, 0) + 1
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert sum(seen.values()) == PER_METHOD
