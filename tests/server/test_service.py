"""The service through raw stubs: health, reflection, every RPC, the error table, and the limits."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
import xxhash
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from nasbench import canonical
from nasbench._backends.wire import ERROR_KIND_KEY, packed_spec
from nasbench._store.reader import Store
from nasbench.v1 import nasbench_pb2 as pb
from nasbench.v1 import nasbench_pb2_grpc as pb_grpc
from tests.client.scenarios import INCEPTION, neighbour_hashes, spec

INCEPTION_HASH = "28cfc7874f6d200472e1a9dcd8650aa0"
INCEPTION_KEY = 16592743520  # its canonical key (nasbench.canonical's encoding)
# The repeat REPEAT_HASHED picks for the Inception cell, per budget, for seeds 0..9: xxh3_64 of
# b"<key>:<epochs>:<seed>" modulo 3 (pinned: a seeded study must pick the same repeats in every version).
HASHED_INCEPTION = {4: [0, 2, 0, 2, 0, 1, 1, 0, 2, 2], 108: [2, 2, 1, 2, 2, 1, 1, 2, 0, 0]}


@pytest.fixture(scope="module")
def channel(server):
    with grpc.insecure_channel(server.address) as opened:
        yield opened


@pytest.fixture(scope="module")
def stub(channel):
    return pb_grpc.NasbenchStub(channel)


@pytest.fixture(scope="module")
def store(full_store):
    opened = Store.open(full_store)
    yield opened
    opened.close()


def _error(call, *args, **kwargs) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(*args, **kwargs)
    return info.value


def test_health_is_serving(channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ("", "nasbench.v1.Nasbench"):
        assert (
            stub.Check(health_pb2.HealthCheckRequest(service=service)).status == health_pb2.HealthCheckResponse.SERVING
        )


def test_reflection_lists_the_services(channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    names = {service.name for service in next(responses).list_services_response.service}
    assert {"nasbench.v1.Nasbench", "grpc.health.v1.Health"} <= names


def test_info(stub, store) -> None:
    info = stub.GetInfo(pb.GetInfoRequest())
    assert list(info.epochs) == [4, 12, 36, 108] and info.cells == store.cells and info.repeats == 3
    assert info.synthetic and info.checksum == store.manifest["checksum"] and info.max_batch > 0


@pytest.mark.parametrize(
    "ref",
    [
        pytest.param(lambda key: pb.CellRef(key=key), id="key"),
        pytest.param(lambda key: pb.CellRef(hash_hex=INCEPTION_HASH), id="hash_hex"),
        pytest.param(lambda key: pb.CellRef(hash=bytes.fromhex(INCEPTION_HASH)), id="hash"),
        pytest.param(lambda key: pb.CellRef(packed=packed_spec(key)), id="packed"),
        pytest.param(
            lambda key: pb.CellRef(
                matrix=pb.MatrixSpec(
                    num_vertices=7,
                    adjacency=canonical.decode(key)[0].astype(np.uint8).tobytes(),
                    ops=canonical.decode(key)[1],
                )
            ),
            id="matrix",
        ),
    ],
)
def test_query_every_way_of_naming_a_cell(stub, store, ref) -> None:
    row = store.row_of_hash(bytes.fromhex(INCEPTION_HASH))
    key = int(store.keys[row])
    response = stub.Query(pb.QueryRequest(cell=ref(key), epochs=108, stop_halfway=True))
    assert response.cell.key == key and response.cell.hash.hex() == INCEPTION_HASH
    runs = store.metrics[row, 3]
    assert [run.validation_accuracy for run in response.runs] == runs[:, 2].tolist()
    metrics = np.frombuffer(response.cell.metrics, dtype="<f8").reshape(1, 3, 8)
    np.testing.assert_array_equal(metrics[0], runs)


def test_query_repeat_modes(stub, store) -> None:
    row = store.row_of_hash(bytes.fromhex(INCEPTION_HASH))
    ref = pb.CellRef(hash_hex=INCEPTION_HASH)
    runs = store.metrics[row, 0]
    assert (
        stub.Query(pb.QueryRequest(cell=ref, epochs=4, repeat=pb.REPEAT_INDEX, repeat_index=2)).runs[0].test_accuracy
        == runs[2, 7]
    )
    assert stub.Query(pb.QueryRequest(cell=ref, epochs=4, repeat=pb.REPEAT_MEAN)).runs[0].training_time == (
        runs[:, 4].mean()
    )
    hashed = stub.Query(pb.QueryRequest(cell=ref, epochs=4, repeat=pb.REPEAT_HASHED, seed=3)).runs
    assert [run.training_time for run in hashed] == [runs[HASHED_INCEPTION[4][3], 4]]
    every = stub.Query(pb.QueryRequest(cell=ref, epochs=0))
    assert list(every.cell.epochs) == [4, 12, 36, 108] and not every.runs


def test_hashed_repeat_formula() -> None:
    """The pinned picks above are the documented function of (cell key, epochs, seed), computed here."""
    for epochs, picks in HASHED_INCEPTION.items():
        assert [xxhash.xxh3_64_intdigest(b"%d:%d:%d" % (INCEPTION_KEY, epochs, seed)) % 3 for seed in range(10)] == (
            picks
        )


@pytest.mark.parametrize("epochs", [4, 108])
@pytest.mark.parametrize("stop_halfway", [False, True])
def test_hashed_repeat_by_value(stub, store, server, full_store, epochs: int, stop_halfway: bool) -> None:
    """REPEAT_HASHED answers the pinned repeat for every seed, and the drop-in client's 'hashed' policy (which
    draws in the client process) picks the very same run, locally and over the wire."""
    from nasbench import api

    row = store.row_of_hash(bytes.fromhex(INCEPTION_HASH))
    assert int(store.keys[row]) == INCEPTION_KEY
    budget = store.epoch_index(epochs)
    time_field = 0 if stop_halfway else 4
    expected = [store.metrics[row, budget, pick, time_field] for pick in HASHED_INCEPTION[epochs]]
    served = [
        stub.Query(
            pb.QueryRequest(
                cell=pb.CellRef(key=INCEPTION_KEY),
                epochs=epochs,
                stop_halfway=stop_halfway,
                repeat=pb.REPEAT_HASHED,
                seed=seed,
            )
        )
        .runs[0]
        .training_time
        for seed in range(10)
    ]
    assert served == expected
    cell = api.ModelSpec(*canonical.decode(INCEPTION_KEY))
    for target in (str(full_store), f"grpc://{server.address}"):
        picked = []
        for seed in range(10):
            nasbench = api.NASBench(target, seed=seed, repeat="hashed")
            picked.append(nasbench.query(cell, epochs=epochs, stop_halfway=stop_halfway)["training_time"])
            nasbench.close()
        assert picked == expected, target


def test_query_batch_columns(stub, store) -> None:
    rows = [0, 5, 100, store.cells - 1]
    keys = [int(store.keys[r]) for r in rows] + [12345]
    response = stub.QueryBatch(pb.QueryBatchRequest(keys=keys, epochs=108, repeat=pb.REPEAT_INDEX, repeat_index=1))
    assert response.count == 5 and list(np.frombuffer(response.found, np.uint8)) == [1, 1, 1, 1, 0]
    metrics = np.frombuffer(response.metrics, "<f8").reshape(5, 1, 1, 4)
    np.testing.assert_array_equal(metrics[:4, 0, 0], store.metrics[rows, 3, 1, 4:8])
    assert not metrics[4].any()
    full = stub.QueryBatch(pb.QueryBatchRequest(keys=keys[:2]))
    assert (full.repeats, full.values, list(full.epochs)) == (3, 8, [4, 12, 36, 108])


def _batch_metrics(response: pb.QueryBatchResponse) -> np.ndarray:
    shape = (response.count, len(response.epochs), response.repeats, response.values)
    return np.frombuffer(response.metrics, "<f8").reshape(shape)


def test_query_batch_mean_and_hashed(stub, store) -> None:
    rows = [0, 7, 1234, store.cells - 1]
    keys = [int(store.keys[row]) for row in rows]
    mean = stub.QueryBatch(pb.QueryBatchRequest(keys=keys, epochs=36, repeat=pb.REPEAT_MEAN, stop_halfway=True))
    assert (mean.repeats, mean.values, list(mean.epochs)) == (1, 4, [36])
    runs = store.metrics[rows, 2]  # [cells, 3 repeats, 8]
    expected = (runs[:, 0, :4] + runs[:, 1, :4] + runs[:, 2, :4]) / 3
    np.testing.assert_allclose(_batch_metrics(mean)[:, 0, 0], expected, rtol=1e-15)
    for seed in (0, 1, 2**64 - 1):
        hashed = stub.QueryBatch(pb.QueryBatchRequest(keys=keys, epochs=0, repeat=pb.REPEAT_HASHED, seed=seed))
        assert list(hashed.epochs) == [4, 12, 36, 108]
        picks = [
            [xxhash.xxh3_64_intdigest(b"%d:%d:%d" % (key, epochs, seed)) % 3 for epochs in (4, 12, 36, 108)]
            for key in keys
        ]
        for i, row in enumerate(rows):
            for budget in range(4):
                assert _batch_metrics(hashed)[i, budget, 0].tolist() == (
                    store.metrics[row, budget, picks[i][budget], 4:].tolist()
                )
                single = stub.Query(
                    pb.QueryRequest(
                        cell=pb.CellRef(key=keys[i]),
                        epochs=(4, 12, 36, 108)[budget],
                        repeat=pb.REPEAT_HASHED,
                        seed=seed,
                    )
                )
                assert single.runs[0].validation_accuracy == store.metrics[row, budget, picks[i][budget], 6]


def test_query_batch_by_cell_references(stub, store) -> None:
    """Keys first, then cells, in request order; a cell named by hash, packed spec or matrix; an absent
    hash reads as not found; a malformed reference names its position."""
    row = store.row_of_hash(bytes.fromhex(INCEPTION_HASH))
    matrix, ops = canonical.decode(INCEPTION_KEY)
    refs = [
        pb.CellRef(hash_hex=INCEPTION_HASH),
        pb.CellRef(hash=store.hashes[5].tobytes()),
        pb.CellRef(packed=packed_spec(int(store.keys[9]))),
        pb.CellRef(matrix=pb.MatrixSpec(num_vertices=7, adjacency=matrix.astype(np.uint8).tobytes(), ops=ops)),
        pb.CellRef(hash_hex="f" * 32),
    ]
    response = stub.QueryBatch(
        pb.QueryBatchRequest(keys=[int(store.keys[3])], cells=refs, epochs=108, repeat=pb.REPEAT_INDEX, repeat_index=2)
    )
    assert response.count == 6
    assert np.frombuffer(response.found, np.uint8).tolist() == [1, 1, 1, 1, 1, 0]
    expected_rows = [3, row, 5, 9, row]
    assert np.frombuffer(response.keys, "<u8").tolist() == [int(store.keys[r]) for r in expected_rows] + [0]
    assert response.hashes == b"".join(store.hashes[r].tobytes() for r in expected_rows) + bytes(16)
    metrics = _batch_metrics(response)
    for i, r in enumerate(expected_rows):
        assert metrics[i, 0, 0].tolist() == store.metrics[r, 3, 2, 4:].tolist()
    assert not metrics[5].any()
    bad = [refs[0], pb.CellRef(hash_hex="XYZ")]
    error = _error(stub.QueryBatch, pb.QueryBatchRequest(cells=bad, epochs=108))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("cells[1]: cells[1].hash_hex must be 32 lowercase hex characters")
    outside = [pb.CellRef(packed=pb.PackedSpec(num_vertices=3, edges=1, ops=[1]))]
    error = _error(stub.QueryBatch, pb.QueryBatchRequest(cells=outside, epochs=108))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "cells[0]: invalid spec, provided graph is disconnected.",
    )


def test_a_batch_of_exactly_the_documented_maximum_is_answered(stub, store, server) -> None:
    """The README documents batches of up to 100,000 cells: exactly that many are answered, one more refused."""
    info = stub.GetInfo(pb.GetInfoRequest())
    assert info.max_batch == 100_000
    keys = store.keys[:100_000].tolist()
    big = grpc.insecure_channel(server.address, options=[("grpc.max_receive_message_length", 64 << 20)])
    stub = pb_grpc.NasbenchStub(big)
    response = stub.QueryBatch(
        pb.QueryBatchRequest(keys=keys, epochs=108, repeat=pb.REPEAT_INDEX, repeat_index=1), timeout=60
    )
    assert response.count == 100_000 and np.frombuffer(response.found, np.uint8).all()
    np.testing.assert_array_equal(_batch_metrics(response)[:, 0, 0, 2], store.metrics[:100_000, 3, 1, 6])
    error = _error(stub.QueryBatch, pb.QueryBatchRequest(keys=[*keys, keys[0]], epochs=108), timeout=60)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.details() == "a batch of 100001 cells exceeds the limit of 100000"
    big.close()


def test_stream_ending_on_a_malformed_message(channel, store) -> None:
    """Well-formed messages are answered; the first malformed one ends the stream with INVALID_ARGUMENT."""
    raw = channel.stream_stream(
        "/nasbench.v1.Nasbench/QueryStream", request_serializer=None, response_deserializer=pb.QueryResponse.FromString
    )
    good = [
        pb.QueryRequest(cell=pb.CellRef(key=int(store.keys[i])), epochs=12, request_id=i).SerializeToString()
        for i in range(3)
    ]
    responses = raw(iter([*good, b"\x0a\xff\xff\xff\xff\x0f"]), timeout=30)
    answered = []
    with pytest.raises(grpc.RpcError) as info:
        for response in responses:
            answered.append((response.request_id, response.cell.key))
    assert answered == [(i, int(store.keys[i])) for i in range(3)]
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details().startswith("malformed QueryRequest: ")


def test_stream_keeps_going_after_errors(stub, store) -> None:
    requests = [
        pb.QueryRequest(cell=pb.CellRef(key=int(store.keys[0])), epochs=108, request_id=1),
        pb.QueryRequest(cell=pb.CellRef(hash_hex="0" * 32), epochs=108, request_id=2),
        pb.QueryRequest(cell=pb.CellRef(key=int(store.keys[1])), epochs=7, request_id=3),
        pb.QueryRequest(request_id=4),
        pb.QueryRequest(cell=pb.CellRef(key=int(store.keys[1])), epochs=36, request_id=5),
    ]
    responses = list(stub.QueryStream(iter(requests)))
    assert [r.request_id for r in responses] == [1, 2, 3, 4, 5]
    assert [r.error.kind for r in responses] == ["", "UnknownCellError", "OutOfDomainError", "InvalidSpecError", ""]
    assert responses[1].error.message == "0" * 32 and responses[1].error.code == grpc.StatusCode.NOT_FOUND.value[0]
    assert responses[4].cell.key == int(store.keys[1])


def test_list_cells_in_order(stub, store) -> None:
    chunks = list(stub.ListCells(pb.ListCellsRequest(chunk_size=100_000 // 7)))
    hashes = b"".join(chunk.hashes for chunk in chunks)
    assert hashes == store.hashes.tobytes()
    tail = list(stub.ListCells(pb.ListCellsRequest(start=store.cells - 3)))
    assert tail[0].start == store.cells - 3 and len(tail[0].hashes) == 48


def test_sample_and_neighbors(stub) -> None:
    sampled = stub.Sample(pb.SampleRequest(k=20, seed=4, num_vertices=[6], ops=[pb.CONV3X3_BN_RELU]))
    assert len(sampled.cells) == 20 and len({c.key for c in sampled.cells}) == 20
    for cell in sampled.cells:
        _, _, labels = canonical.unpack(cell.key)
        assert len(labels) == 4 and set(labels) == {0}
    again = stub.Sample(pb.SampleRequest(k=20, seed=4, num_vertices=[6], ops=[pb.CONV3X3_BN_RELU]))
    assert [c.key for c in again.cells] == [c.key for c in sampled.cells]
    neighbors = stub.Neighbors(pb.NeighborsRequest(cell=pb.CellRef(hash_hex=INCEPTION_HASH)))
    assert {cell.hash.hex() for cell in neighbors.cells} == neighbour_hashes(spec(*INCEPTION))
    assert len(neighbors.cells) == len({cell.key for cell in neighbors.cells}) == 14


@pytest.mark.parametrize(
    ("request_", "code", "details", "kind"),
    [
        pytest.param(
            pb.QueryRequest(epochs=108),
            "INVALID_ARGUMENT",
            "cell is required: set one of key, hash, hash_hex, packed, matrix",
            "InvalidSpecError",
            id="no-cell",
        ),
        pytest.param(
            pb.QueryRequest(cell=pb.CellRef(hash_hex="0" * 32), epochs=108),
            "NOT_FOUND",
            "0" * 32,
            "UnknownCellError",
            id="unknown-hash",
        ),
        pytest.param(
            pb.QueryRequest(cell=pb.CellRef(hash=b"short"), epochs=108),
            "INVALID_ARGUMENT",
            "cell.hash must be 16 bytes (an MD5 digest), got 5",
            "InvalidSpecError",
            id="short-hash",
        ),
        pytest.param(
            pb.QueryRequest(cell=pb.CellRef(hash_hex="XYZ"), epochs=108),
            "INVALID_ARGUMENT",
            "cell.hash_hex must be 32 lowercase hex characters, got 'XYZ'",
            "InvalidSpecError",
            id="bad-hex",
        ),
        pytest.param(
            pb.QueryRequest(cell=pb.CellRef(hash_hex=INCEPTION_HASH), epochs=7),
            "INVALID_ARGUMENT",
            "invalid number of epochs, must be one of {108, 4, 12, 36}",
            "OutOfDomainError",
            id="epochs",
        ),
        pytest.param(
            pb.QueryRequest(cell=pb.CellRef(packed=pb.PackedSpec(num_vertices=9)), epochs=108),
            "INVALID_ARGUMENT",
            "cell.packed.num_vertices must be 2 to 7, got 9",
            "InvalidSpecError",
            id="packed-9",
        ),
        pytest.param(
            pb.QueryRequest(cell=pb.CellRef(packed=pb.PackedSpec(num_vertices=3, edges=1 << 5, ops=[1])), epochs=108),
            "INVALID_ARGUMENT",
            "cell.packed.edges has bits beyond a 3-vertex upper triangle",
            "InvalidSpecError",
            id="bits",
        ),
        pytest.param(
            pb.QueryRequest(cell=pb.CellRef(packed=pb.PackedSpec(num_vertices=3, edges=5, ops=[9])), epochs=108),
            "INVALID_ARGUMENT",
            "cell.packed.ops has an unknown op value 9",
            "InvalidSpecError",
            id="op-enum",
        ),
        pytest.param(
            pb.QueryRequest(cell=pb.CellRef(packed=pb.PackedSpec(num_vertices=3, edges=1, ops=[1])), epochs=108),
            "INVALID_ARGUMENT",
            "invalid spec, provided graph is disconnected.",
            "OutOfDomainError",
            id="disconnected",
        ),
        pytest.param(
            pb.QueryRequest(
                cell=pb.CellRef(
                    matrix=pb.MatrixSpec(
                        num_vertices=8,
                        adjacency=bytes(np.eye(8, k=1, dtype=np.uint8)),
                        ops=["input"] + ["maxpool3x3"] * 6 + ["output"],
                    )
                ),
                epochs=108,
            ),
            "INVALID_ARGUMENT",
            "too many vertices, got 8 (max vertices = 7)",
            "TooManyVerticesError",
            id="8-vertices",
        ),
        pytest.param(
            pb.QueryRequest(
                cell=pb.CellRef(
                    matrix=pb.MatrixSpec(
                        num_vertices=3, adjacency=bytes([0, 1, 0, 0, 0, 1, 0, 0, 0]), ops=["input", "conv5x5", "output"]
                    )
                ),
                epochs=108,
            ),
            "INVALID_ARGUMENT",
            "unsupported op conv5x5 (available ops = ['conv3x3-bn-relu', 'conv1x1-bn-relu', 'maxpool3x3'])",
            "OutOfDomainError",
            id="unknown-op-name",
        ),
        pytest.param(
            pb.QueryRequest(
                cell=pb.CellRef(
                    matrix=pb.MatrixSpec(
                        num_vertices=3,
                        adjacency=bytes([0, 2, 0, 0, 0, 1, 0, 0, 0]),
                        ops=["input", "conv3x3-bn-relu", "output"],
                    )
                ),
                epochs=108,
            ),
            "NOT_FOUND",
            "89057bb6261f456b0e64fbc4bee18d68",
            "UnknownCellError",
            id="entry-2",
        ),
        pytest.param(
            pb.QueryRequest(
                cell=pb.CellRef(matrix=pb.MatrixSpec(num_vertices=3, adjacency=bytes(4), ops=["a", "b", "c"])),
                epochs=108,
            ),
            "INVALID_ARGUMENT",
            "cell.matrix.adjacency must hold 9 bytes for 3 vertices, got 4",
            "InvalidSpecError",
            id="short-adjacency",
        ),
        pytest.param(
            pb.QueryRequest(
                cell=pb.CellRef(
                    matrix=pb.MatrixSpec(
                        num_vertices=3,
                        adjacency=bytes([0, 0, 0, 1, 0, 0, 0, 0, 0]),
                        ops=["input", "conv3x3-bn-relu", "output"],
                    )
                ),
                epochs=108,
            ),
            "INVALID_ARGUMENT",
            "matrix must be upper triangular",
            "InvalidSpecError",
            id="lower",
        ),
        pytest.param(
            pb.QueryRequest(cell=pb.CellRef(matrix=pb.MatrixSpec(num_vertices=5000)), epochs=108),
            "INVALID_ARGUMENT",
            "cell.matrix.num_vertices must be 1 to 64, got 5000",
            "InvalidSpecError",
            id="huge-matrix",
        ),
        pytest.param(
            pb.QueryRequest(cell=pb.CellRef(hash_hex=INCEPTION_HASH), epochs=108, repeat=7),
            "INVALID_ARGUMENT",
            "repeat has an unknown value 7",
            "InvalidSpecError",
            id="repeat-enum",
        ),
        pytest.param(
            pb.QueryRequest(
                cell=pb.CellRef(hash_hex=INCEPTION_HASH), epochs=108, repeat=pb.REPEAT_INDEX, repeat_index=3
            ),
            "INVALID_ARGUMENT",
            "repeat_index must be 0 to 2, got 3",
            "InvalidSpecError",
            id="repeat-index",
        ),
        pytest.param(
            pb.QueryRequest(cell=pb.CellRef(packed=pb.PackedSpec(num_vertices=4, edges=5, ops=[1])), epochs=108),
            "INVALID_ARGUMENT",
            "cell.packed.ops must list 2 interior ops, got 1",
            "InvalidSpecError",
            id="packed-ops-count",
        ),
        pytest.param(
            pb.QueryRequest(cell=pb.CellRef(packed=pb.PackedSpec(num_vertices=1)), epochs=108),
            "INVALID_ARGUMENT",
            "cell.packed.num_vertices must be 2 to 7, got 1",
            "InvalidSpecError",
            id="packed-1",
        ),
        pytest.param(
            pb.QueryRequest(cell=pb.CellRef(packed=pb.PackedSpec(num_vertices=8, ops=[1] * 6)), epochs=108),
            "INVALID_ARGUMENT",
            "cell.packed.num_vertices must be 2 to 7, got 8",
            "InvalidSpecError",
            id="packed-8",
        ),
        pytest.param(
            pb.QueryRequest(
                cell=pb.CellRef(packed=pb.PackedSpec(num_vertices=7, edges=1 << 21, ops=[1] * 5)), epochs=108
            ),
            "INVALID_ARGUMENT",
            "cell.packed.edges has bits beyond a 7-vertex upper triangle",
            "InvalidSpecError",
            id="packed-bit-21",
        ),
        pytest.param(
            pb.QueryRequest(cell=pb.CellRef(matrix=pb.MatrixSpec(num_vertices=0)), epochs=108),
            "INVALID_ARGUMENT",
            "cell.matrix.num_vertices must be 1 to 64, got 0",
            "InvalidSpecError",
            id="matrix-0",
        ),
        pytest.param(
            pb.QueryRequest(
                cell=pb.CellRef(matrix=pb.MatrixSpec(num_vertices=65, adjacency=bytes(65 * 65))), epochs=108
            ),
            "INVALID_ARGUMENT",
            "cell.matrix.num_vertices must be 1 to 64, got 65",
            "InvalidSpecError",
            id="matrix-65",
        ),
        pytest.param(
            pb.QueryRequest(
                cell=pb.CellRef(
                    matrix=pb.MatrixSpec(
                        num_vertices=64,
                        adjacency=bytes(np.eye(64, k=1, dtype=np.uint8)),
                        ops=["input"] + ["conv1x1-bn-relu"] * 62 + ["output"],
                    )
                ),
                epochs=108,
            ),
            "INVALID_ARGUMENT",
            "too many vertices, got 64 (max vertices = 7)",
            "TooManyVerticesError",
            id="matrix-64",
        ),
        pytest.param(
            pb.QueryRequest(
                cell=pb.CellRef(matrix=pb.MatrixSpec(num_vertices=1, adjacency=bytes(1), ops=["input"])), epochs=108
            ),
            "INVALID_ARGUMENT",
            "invalid spec, provided graph is disconnected.",
            "OutOfDomainError",
            id="matrix-1",
        ),
        pytest.param(
            pb.QueryRequest(
                cell=pb.CellRef(matrix=pb.MatrixSpec(num_vertices=2, adjacency=bytes([0, 1, 0, 0]), ops=["input"])),
                epochs=108,
            ),
            "INVALID_ARGUMENT",
            "length of ops must match matrix dimensions",
            "InvalidSpecError",
            id="matrix-ops-length",
        ),
        pytest.param(
            pb.QueryRequest(cell=pb.CellRef(key=2**64 - 1), epochs=108),
            "NOT_FOUND",
            str(2**64 - 1),
            "UnknownCellError",
            id="unknown-key",
        ),
    ],
)
def test_error_table(stub, request_, code: str, details: str, kind: str) -> None:
    error = _error(stub.Query, request_)
    assert error.code() == getattr(grpc.StatusCode, code)
    assert error.details() == details
    assert dict(error.trailing_metadata())[ERROR_KIND_KEY] == kind


def test_limits(stub) -> None:
    info = stub.GetInfo(pb.GetInfoRequest())
    error = _error(stub.QueryBatch, pb.QueryBatchRequest(keys=list(range(info.max_batch + 1))))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "exceeds the limit" in error.details()
    error = _error(stub.Sample, pb.SampleRequest(k=info.max_sample + 1))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    error = _error(stub.Sample, pb.SampleRequest(k=5, num_vertices=[2]))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "only 1 pass the filters" in error.details()
    error = _error(lambda: list(stub.ListCells(pb.ListCellsRequest(chunk_size=10**6))))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_deadlines_are_honoured(stub) -> None:
    error = _error(lambda: list(stub.ListCells(pb.ListCellsRequest(chunk_size=1), timeout=0.2)))
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert stub.Ping(pb.PingRequest(), timeout=5) == pb.PingResponse()


def test_info_fields(stub, store, server) -> None:
    import json
    import os

    from nasbench import __version__

    first = stub.GetInfo(pb.GetInfoRequest())
    second = stub.GetInfo(pb.GetInfoRequest())
    assert second.requests_served == first.requests_served + 1
    assert (first.cells, first.repeats, first.schema_version, list(first.epochs)) == (
        store.cells,
        3,
        1,
        [4, 12, 36, 108],
    )
    assert first.checksum == store.manifest["checksum"] and first.server_version == __version__
    assert json.loads(first.manifest_json) == store.manifest
    assert first.manifest_json == json.dumps(store.manifest, sort_keys=True)
    assert (first.max_batch, first.max_sample, first.synthetic) == (100_000, 100_000, True)
    process = getattr(server, "process", None)
    assert first.pid == (process.pid if process is not None else os.getpid())
    assert stub.Ping(pb.PingRequest()) == pb.PingResponse()
    assert stub.GetInfo(pb.GetInfoRequest()).requests_served == second.requests_served + 2, "Ping counts too"


def test_list_cells_chunks_and_starts(stub, store) -> None:
    default = next(stub.ListCells(pb.ListCellsRequest()))
    assert (default.start, default.hashes) == (0, store.hashes[:4096].tobytes())
    largest = next(stub.ListCells(pb.ListCellsRequest(chunk_size=65536, start=10)))
    assert (largest.start, largest.hashes) == (10, store.hashes[10:65546].tobytes())
    error = _error(lambda: list(stub.ListCells(pb.ListCellsRequest(chunk_size=65537))))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "chunk_size must be 1 to 65536, got 65537",
    )
    last = list(stub.ListCells(pb.ListCellsRequest(start=store.cells - 1)))
    assert [(chunk.start, chunk.hashes) for chunk in last] == [(store.cells - 1, store.hashes[-1].tobytes())]
    assert list(stub.ListCells(pb.ListCellsRequest(start=store.cells))) == []
    assert list(stub.ListCells(pb.ListCellsRequest(start=10**9))) == []
    starts = [chunk.start for chunk in stub.ListCells(pb.ListCellsRequest(chunk_size=50_000))]
    assert starts == list(range(0, store.cells, 50_000))


def test_sample_answers_and_refusals(stub, store) -> None:
    response = stub.Sample(
        pb.SampleRequest(k=3, seed=8, num_vertices=[5], min_parameters=10**6, max_parameters=2 * 10**6)
    )
    assert len(response.cells) == 3
    for cell in response.cells:
        row = store.row_of_key(cell.key)
        assert store.num_vertices[row] == 5 and 10**6 <= cell.trainable_parameters <= 2 * 10**6
        assert cell.hash == store.hashes[row].tobytes() and list(cell.epochs) == [4, 12, 36, 108]
        np.testing.assert_array_equal(np.frombuffer(cell.metrics, "<f8").reshape(4, 3, 8), store.metrics[row])
    assert stub.Sample(pb.SampleRequest(k=0)).cells == []
    for request, code, details in [
        (pb.SampleRequest(k=100_001), "RESOURCE_EXHAUSTED", "k = 100001 exceeds the limit of 100000"),
        (pb.SampleRequest(k=1, ops=[pb.MAXPOOL3X3, 9]), "INVALID_ARGUMENT", "ops has an unknown op value 9"),
        (pb.SampleRequest(k=1, ops=[0]), "INVALID_ARGUMENT", "ops has an unknown op value 0"),
        (pb.SampleRequest(k=2, num_vertices=[2]), "INVALID_ARGUMENT", "asked for 2 cells but only 1 pass the filters"),
    ]:
        error = _error(stub.Sample, request)
        assert (error.code(), error.details()) == (getattr(grpc.StatusCode, code), details)


def test_get_metrics_and_neighbors_of_absent_cells(stub, store) -> None:
    cell = stub.GetMetrics(pb.GetMetricsRequest(cell=pb.CellRef(key=int(store.keys[42]))))
    assert (cell.key, cell.hash, cell.representative) == (
        int(store.keys[42]),
        store.hashes[42].tobytes(),
        int(store.representatives[42]),
    )
    for call in (
        lambda: stub.GetMetrics(pb.GetMetricsRequest(cell=pb.CellRef(hash_hex="0" * 32))),
        lambda: stub.Neighbors(pb.NeighborsRequest(cell=pb.CellRef(hash_hex="0" * 32))),
    ):
        error = _error(call)
        assert (error.code(), error.details()) == (grpc.StatusCode.NOT_FOUND, "0" * 32)
        assert dict(error.trailing_metadata())[ERROR_KIND_KEY] == "UnknownCellError"
