"""Values checked against records the test writes itself: a small file in the original format, written here
with json, base64 and the original protobuf message (not the project's encoder), built into a store, then read
back through the local API, a server's raw RPCs and the remote API. Expected values are the literals below,
never what the engine or the store reader answers; where real data is public (the run quoted in
google-research/nasbench#23, the parameter counts of the Inception cell of its README and of that
issue's cell) those real values are used.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import grpc
import numpy as np
import pytest

from nasbench import api
from nasbench.lib.model_metrics_pb2 import ModelMetrics
from nasbench.v1 import nasbench_pb2 as pb
from nasbench.v1 import nasbench_pb2_grpc as pb_grpc
from nasbench_builder import source, tfrecord, writer
from tests.client.scenarios import INCEPTION, INCEPTION_HASH, ISSUE_23, SEED_0_REPEATS, spec
from tests.inprocess import served

ISSUE_23_HASH = "02e5a0247bbdcf2860b7e96f74961594"
TWO_VERTEX_HASH = "043721b9c7fe8c5fad811d47d83132ec"

# hash -> (adjacency string, ops string, trainable parameters), as the records store them. The Inception cell is
# stored as the README draws it (an isomorph of its canonical form), so answers must return this very matrix.
CELLS = {
    INCEPTION_HASH: (
        "".join(str(x) for x in np.array(INCEPTION[0]).ravel()),
        ",".join(INCEPTION[1]),
        2_694_282,  # google-research/nasbench README.md, the Inception-like cell
    ),
    ISSUE_23_HASH: (
        "".join(str(x) for x in np.array(ISSUE_23[0]).ravel()),
        ",".join(ISSUE_23[1]),
        32_426_634,  # google-research/nasbench#23
    ),
    TWO_VERTEX_HASH: ("0100", "input,output", 441_610),
}
FIELDS = ("training_time", "train_accuracy", "validation_accuracy", "test_accuracy")

# (hash, epochs) -> three runs in file order, each (halfway values, final values) in FIELDS order.
RUNS = {
    (INCEPTION_HASH, 4): [
        ((59.1, 0.4375, 0.4296875, 0.421875), (118.25, 0.6015625, 0.5859375, 0.5703125)),
        ((60.5, 0.453125, 0.4453125, 0.4375), (120.75, 0.6171875, 0.6015625, 0.58984375)),
        ((58.3, 0.4140625, 0.40625, 0.3984375), (116.5, 0.59375, 0.578125, 0.5625)),
    ],
    (INCEPTION_HASH, 108): [
        ((1580.5, 0.875, 0.8671875, 0.86328125), (3163.25, 1.0, 0.9296875, 0.92578125)),
        ((1590.25, 0.8828125, 0.87109375, 0.8671875), (3181.0, 1.0, 0.93359375, 0.9296875)),
        ((1575.75, 0.87109375, 0.86328125, 0.859375), (3151.5, 1.0, 0.92578125, 0.921875)),
    ],
    (ISSUE_23_HASH, 4): [
        ((95.5, 0.5, 0.48828125, 0.484375), (191.0, 0.625, 0.6171875, 0.609375)),
        ((96.25, 0.51171875, 0.5, 0.49609375), (192.5, 0.640625, 0.62890625, 0.625)),
        ((94.75, 0.4921875, 0.48046875, 0.4765625), (189.5, 0.6171875, 0.609375, 0.6015625)),
    ],
    (ISSUE_23_HASH, 108): [
        ((2161.5, 0.90625, 0.890625, 0.88671875), (4321.9140625, 1.0, 0.9431089758872986, 0.9406049847602844)),
        ((2163.25, 0.91015625, 0.89453125, 0.890625), (4326.7412109375, 1.0, 0.94140625, 0.9375)),
        ((2158.0, 0.90234375, 0.88671875, 0.8828125), (4317.5, 1.0, 0.939453125, 0.93359375)),
    ],
    (TWO_VERTEX_HASH, 4): [
        ((10.5, 0.1015625, 0.09765625, 0.1015625), (21.0, 0.125, 0.12109375, 0.1171875)),
        ((10.75, 0.10546875, 0.1015625, 0.10546875), (21.5, 0.12890625, 0.125, 0.12109375)),
        ((10.25, 0.09765625, 0.09375, 0.09765625), (20.5, 0.12109375, 0.1171875, 0.11328125)),
    ],
    (TWO_VERTEX_HASH, 108): [
        ((283.5, 0.1875, 0.18359375, 0.1796875), (567.0, 0.2109375, 0.20703125, 0.203125)),
        ((284.25, 0.19140625, 0.1875, 0.18359375), (568.5, 0.21484375, 0.2109375, 0.20703125)),
        ((282.75, 0.18359375, 0.1796875, 0.17578125), (566.0, 0.20703125, 0.203125, 0.19921875)),
    ],
}
# first appearance in the file: the two-vertex cell first, then the cell of nasbench#23, then Inception
FILE_ORDER = [TWO_VERTEX_HASH, ISSUE_23_HASH, INCEPTION_HASH]


def _payload(module_hash: str, epochs: int, run: tuple) -> bytes:
    adjacency, ops, parameters = CELLS[module_hash]
    metrics = ModelMetrics(trainable_parameters=parameters, total_time=run[1][0] * 1.05)
    metrics.evaluation_data.add(current_epoch=0.0, training_time=0.0, train_accuracy=0.1, validation_accuracy=0.1)
    for point, values in ((epochs / 2, run[0]), (float(epochs), run[1])):
        metrics.evaluation_data.add(current_epoch=point, **dict(zip(FIELDS, values, strict=True)))
    encoded = base64.b64encode(metrics.SerializeToString()).decode()
    return json.dumps([module_hash, epochs, adjacency, ops, encoded]).encode()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("values")
    payloads = []
    for epochs in (108, 4):  # budgets interleaved in the file: 108 first
        for module_hash in FILE_ORDER:
            payloads += [_payload(module_hash, epochs, run) for run in RUNS[module_hash, epochs]]
    with tfrecord.TFRecordWriter(folder / "values.tfrecord") as out:
        out.write_many(payloads)
    path = folder / "values.lmdb"
    writer.write_store(source.read_dataset(folder / "values.tfrecord", workers=1), path)
    return path


@pytest.fixture(scope="module")
def server(store: Path, tmp_path_factory: pytest.TempPathFactory):
    with served(store, tmp_path_factory.mktemp("values-server")) as running:
        yield running


@pytest.fixture(params=["local", "remote"])
def open_values(request: pytest.FixtureRequest, store: Path):
    """``open_values(seed=0)``: a NASBench over the written store, locally or through the server. Made in the
    test itself, since the constructor seeds Python's global random (as the original's does)."""
    target = str(store) if request.param == "local" else f"grpc://{request.getfixturevalue('server').address}"
    opened = []

    def factory(seed: int | None = 0) -> api.NASBench:
        opened.append(api.NASBench(target, seed=seed))
        return opened[-1]

    yield factory
    for nasbench in opened:
        nasbench.close()


def _final(module_hash: str, epochs: int, repeat: int) -> dict[str, float]:
    return dict(zip(FIELDS, RUNS[module_hash, epochs][repeat][1], strict=True))


def test_seeded_queries_return_the_written_runs(open_values) -> None:
    """seed=0: repeats 1, 1, 0, 1, 2, ... of the records as written (the original's query draws
    random.randint(0, 2): nasbench/api.py)."""
    nasbench = open_values()
    answers = [nasbench.query(spec(*ISSUE_23)) for _ in SEED_0_REPEATS]
    for answer, repeat in zip(answers, SEED_0_REPEATS, strict=True):
        assert {name: answer[name] for name in FIELDS} == _final(ISSUE_23_HASH, 108, repeat)
        assert answer["trainable_parameters"] == 32_426_634
    assert nasbench.get_budget_counters() == (
        sum(RUNS[ISSUE_23_HASH, 108][repeat][1][0] for repeat in SEED_0_REPEATS),
        108 * 12,
    )


def test_the_real_issue_23_run(open_values) -> None:
    """The run quoted in google-research/nasbench#23, as the original returns it (repeat 0 of the file)."""
    nasbench = open_values()
    answer = nasbench.query(spec(*ISSUE_23), repeat=0)
    assert (answer["training_time"], answer["train_accuracy"]) == (4321.9140625, 1.0)
    assert (answer["validation_accuracy"], answer["test_accuracy"]) == (0.9431089758872986, 0.9406049847602844)
    assert nasbench.query(spec(*ISSUE_23), repeat=1)["training_time"] == 4326.7412109375


def test_the_stored_matrix_is_returned_not_the_callers(open_values) -> None:
    """Asked with the canonical isomorph, the answer carries the README's matrix as the file stores it."""
    nasbench = open_values()
    from nasbench import canonical

    canonical_matrix, canonical_ops = canonical.decode(canonical.canonical_key(*INCEPTION))
    assert not np.array_equal(canonical_matrix, INCEPTION[0])
    answer = nasbench.query(spec(canonical_matrix, canonical_ops), epochs=4, stop_halfway=True, repeat=2)
    np.testing.assert_array_equal(answer["module_adjacency"], np.array(INCEPTION[0], dtype=np.int8))
    assert answer["module_adjacency"].dtype == np.int8 and answer["module_operations"] == INCEPTION[1]
    assert answer["trainable_parameters"] == 2_694_282
    assert {name: answer[name] for name in FIELDS} == dict(zip(FIELDS, RUNS[INCEPTION_HASH, 4][2][0], strict=True))


def test_statistics_and_order_are_the_files(open_values) -> None:
    nasbench = open_values()
    assert list(nasbench.hash_iterator()) == FILE_ORDER
    assert nasbench.valid_epochs == {4, 108}
    for module_hash in FILE_ORDER:
        fixed, computed = nasbench.get_metrics_from_hash(module_hash)
        adjacency, ops, parameters = CELLS[module_hash]
        size = int(len(adjacency) ** 0.5)
        np.testing.assert_array_equal(
            fixed["module_adjacency"], np.array(list(adjacency), dtype=int).reshape(size, size)
        )
        assert fixed["module_operations"] == ops.split(",") and fixed["trainable_parameters"] == parameters
        assert list(computed) == [4, 108]
        for epochs in (4, 108):
            assert [list(run.values()) for run in computed[epochs]] == [
                [*half, *final] for half, final in RUNS[module_hash, epochs]
            ]


def test_repeat_policies_on_written_values(open_values) -> None:
    nasbench = open_values()
    runs = [final for _, final in RUNS[TWO_VERTEX_HASH, 108]]
    two = spec([[0, 1], [0, 0]], ["input", "output"])
    assert nasbench.query(two, repeat="mean")["validation_accuracy"] == (runs[0][2] + runs[1][2] + runs[2][2]) / 3
    assert nasbench.query(two, repeat="all")["test_accuracy"] == [run[3] for run in runs]
    before = nasbench.get_budget_counters()[0]
    nasbench.query(two, repeat="all")
    assert nasbench.get_budget_counters()[0] - before == pytest.approx((567.0 + 568.5 + 566.0) / 3, abs=1e-9)


def test_raw_rpcs_answer_the_written_values(server) -> None:
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.NasbenchStub(channel)
        info = stub.GetInfo(pb.GetInfoRequest())
        assert (list(info.epochs), info.cells, info.synthetic) == ([4, 108], 3, False)
        response = stub.Query(pb.QueryRequest(cell=pb.CellRef(hash_hex=ISSUE_23_HASH), epochs=108))
        assert [[getattr(run, name) for name in FIELDS] for run in response.runs] == [
            list(final) for _, final in RUNS[ISSUE_23_HASH, 108]
        ]
        assert response.cell.trainable_parameters == 32_426_634 and response.cell.hash.hex() == ISSUE_23_HASH
        halfway = stub.Query(
            pb.QueryRequest(
                cell=pb.CellRef(hash_hex=INCEPTION_HASH),
                epochs=4,
                stop_halfway=True,
                repeat=pb.REPEAT_INDEX,
                repeat_index=1,
            )
        )
        assert [getattr(halfway.runs[0], name) for name in FIELDS] == list(RUNS[INCEPTION_HASH, 4][1][0])
        cell = stub.GetMetrics(pb.GetMetricsRequest(cell=pb.CellRef(hash_hex=TWO_VERTEX_HASH)))
        metrics = np.frombuffer(cell.metrics, "<f8").reshape(2, 3, 8)
        for budget, epochs in enumerate((4, 108)):
            assert metrics[budget].tolist() == [[*half, *final] for half, final in RUNS[TWO_VERTEX_HASH, epochs]]
        listed = b"".join(chunk.hashes for chunk in stub.ListCells(pb.ListCellsRequest()))
        assert listed.hex() == "".join(FILE_ORDER)
        batch = stub.QueryBatch(
            pb.QueryBatchRequest(
                cells=[pb.CellRef(hash_hex=h) for h in reversed(FILE_ORDER)],
                epochs=108,
                repeat=pb.REPEAT_INDEX,
                repeat_index=2,
            )
        )
        values = np.frombuffer(batch.metrics, "<f8").reshape(3, 4)
        assert values.tolist() == [list(RUNS[h, 108][2][1]) for h in reversed(FILE_ORDER)]
        assert np.frombuffer(batch.trainable_parameters, "<i4").tolist() == [2_694_282, 32_426_634, 441_610]
