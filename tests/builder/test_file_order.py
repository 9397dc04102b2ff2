"""File order, not hash order: a file whose records are shuffled (cells in a seeded random order, the 108-epoch
records of every cell first, the three repeats of each budget permuted) gives store rows and ``hash_iterator``
in order of first appearance, and repeats in file order, checked against the file's own records read here.

The other fixtures write cells in sorted-hash order, where file order and hash order coincide."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path

import numpy as np
import pytest

from nasbench import api
from nasbench._store.reader import Store
from nasbench.lib.model_metrics_pb2 import ModelMetrics
from nasbench_builder import source, synthetic, tfrecord, writer
from tests.client.scenarios import SEED_0_REPEATS

SEED = 2024


@pytest.fixture(scope="module")
def shuffled_tfrecord(tmp_path_factory: pytest.TempPathFactory, tiny_synthetic) -> Path:
    """The tiny dataset's 1,092 records, reordered (see the module docstring)."""
    rng = random.Random(SEED)
    data = tiny_synthetic.dataset
    by_cell = {row: synthetic.record_payloads(tiny_synthetic, row) for row in range(data.cells)}  # 4 budgets x 3
    first, second = list(by_cell), list(by_cell)
    rng.shuffle(first)
    rng.shuffle(second)
    ordered = []
    for row in first:  # every cell's 108-epoch records first
        repeats = by_cell[row][9:12]
        rng.shuffle(repeats)
        ordered += repeats
    for row in second:  # then budgets 36, 4, 12
        for budget in (2, 0, 1):
            repeats = by_cell[row][3 * budget : 3 * budget + 3]
            rng.shuffle(repeats)
            ordered += repeats
    path = tmp_path_factory.mktemp("shuffled") / "shuffled.tfrecord"
    with tfrecord.TFRecordWriter(path) as out:
        out.write_many(ordered)
    return path


def _file_facts(path: Path) -> tuple[list[str], dict[tuple[str, int], list[list[float]]]]:
    """Hashes in order of first appearance and, per (hash, epochs), the eight values of each record in file
    order, decoded here with json, base64 and the original protobuf message."""
    order: list[str] = []
    runs: dict[tuple[str, int], list[list[float]]] = {}
    for _, _, payload in tfrecord.read_records(path):
        module_hash, epochs, _, _, encoded = json.loads(payload)
        if module_hash not in order:
            order.append(module_hash)
        points = ModelMetrics.FromString(base64.b64decode(encoded)).evaluation_data
        runs.setdefault((module_hash, epochs), []).append(
            [
                getattr(points[point], name)
                for point in (1, 2)
                for name in ("training_time", "train_accuracy", "validation_accuracy", "test_accuracy")
            ]
        )
    return order, runs


@pytest.fixture(scope="module")
def facts(shuffled_tfrecord: Path):
    return _file_facts(shuffled_tfrecord)


@pytest.fixture(scope="module")
def shuffled_store(tmp_path_factory: pytest.TempPathFactory, shuffled_tfrecord: Path) -> Path:
    path = tmp_path_factory.mktemp("shuffled-store") / "shuffled.lmdb"
    writer.write_store(source.read_dataset(shuffled_tfrecord, workers=1), path)
    return path


def test_the_fixture_really_differs_from_hash_order(facts) -> None:
    order, _ = facts
    assert len(order) == 91 and order != sorted(order)


@pytest.mark.parametrize("workers", [1, 2])
def test_dataset_rows_follow_the_file(shuffled_tfrecord: Path, facts, workers: int) -> None:
    order, runs = facts
    dataset = source.read_dataset(shuffled_tfrecord, workers=workers, piece_size=8 << 10)
    assert [digest.tobytes().hex() for digest in dataset.hashes] == order
    assert dataset.epochs == (4, 12, 36, 108)
    for row, module_hash in enumerate(order):
        for budget, epochs in enumerate(dataset.epochs):
            assert dataset.metrics[row, budget].tolist() == runs[module_hash, epochs]


def test_store_rows_and_lookups_follow_the_file(shuffled_store: Path, facts) -> None:
    order, runs = facts
    store = Store.open(shuffled_store, verify=True)
    try:
        assert [store.hash_of_row(row) for row in range(store.cells)] == order
        assert [store.row_of_hash(bytes.fromhex(module_hash)) for module_hash in order] == list(range(91))
        for row, module_hash in enumerate(order):
            assert store.metrics[row, 3].tolist() == runs[module_hash, 108]
    finally:
        store.close()


def test_hash_iterator_and_statistics_follow_the_file(shuffled_store: Path, facts) -> None:
    order, runs = facts
    nasbench = api.NASBench(shuffled_store, seed=0)
    assert list(nasbench.hash_iterator()) == order
    assert list(nasbench.fixed_statistics) == list(nasbench.computed_statistics) == order
    for module_hash in order[:10]:
        computed = nasbench.computed_statistics[module_hash]
        assert [list(run.values()) for run in computed[12]] == runs[module_hash, 12]


def test_seeded_repeats_pick_records_in_file_order(shuffled_store: Path, facts) -> None:
    """With seed 0 the original picks repeats 1, 1, 0, 1, 2, ... of the file's records
    (random.randint(0, 2) in the original's nasbench/api.py)."""
    order, runs = facts
    nasbench = api.NASBench(shuffled_store, seed=0)
    spec_hash = order[17]
    fixed = nasbench.fixed_statistics[spec_hash]
    model_spec = api.ModelSpec(fixed["module_adjacency"], fixed["module_operations"])
    times = [nasbench.query(model_spec)["training_time"] for _ in SEED_0_REPEATS]
    assert times == [runs[spec_hash, 108][index][4] for index in SEED_0_REPEATS]


def test_remote_hash_iterator_follows_the_file(shuffled_store: Path, facts, tmp_path: Path) -> None:
    from nasbench_server.process import ServerProcess

    order, _ = facts
    server = ServerProcess(shuffled_store, tmp_path).wait_serving()
    try:
        remote = api.NASBench(f"grpc://{server.address}", seed=0)
        assert list(remote.hash_iterator()) == order
        assert np.array_equal(
            remote.get_metrics_from_hash(order[5])[0]["module_adjacency"],
            api.NASBench(shuffled_store).get_metrics_from_hash(order[5])[0]["module_adjacency"],
        )
        remote.close()
    finally:
        server.stop()
