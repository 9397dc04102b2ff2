"""Columns from a store, from a server and from memory: one row order, bit-identical values, identical results."""

from __future__ import annotations

import numpy as np
import pytest

from nasbench._engine.engine import Engine
from nasbench.errors import ConfigurationError, ServiceUnavailableError
from nasbench_experiments.analysis import analyses, columns


def _assert_same_columns(a: columns.Columns, b: columns.Columns, same_source: bool = True) -> None:
    assert a.epochs == b.epochs
    for name in ("keys", "hashes", "parameters", "metrics"):
        left, right = getattr(a, name), getattr(b, name)
        assert left.dtype == right.dtype and left.shape == right.shape
        assert left.tobytes() == right.tobytes(), name
    assert not same_source or {k: v for k, v in a.source.items() if k != "location"} == {
        k: v for k, v in b.source.items() if k != "location"
    }


def test_store_columns_are_the_store_in_key_order(small_store, small_columns) -> None:
    assert (np.diff(small_columns.keys.astype(np.int64)) > 0).all()
    engine = Engine.open(small_store)
    for row in (0, 17, small_columns.cells - 1):
        cell = engine.cell_by_key(int(small_columns.keys[row]))
        assert cell.parameters == small_columns.parameters[row]
        assert cell.metrics.tobytes() == small_columns.metrics[row].tobytes()
        assert engine.store.hash_of_row(engine.rows_of_keys(np.array([cell.key]))[0]) == small_columns.hash_of(row)
    engine.close()
    assert small_columns.cells == 2532 and small_columns.source["location"] == str(small_store)


def test_dataset_columns_equal_store_columns(small_synthetic, small_columns) -> None:
    """The small store was built from a TFRecord file of this dataset: same values, a file as its source."""
    from_memory = columns.from_dataset(small_synthetic.dataset)
    _assert_same_columns(from_memory, small_columns, same_source=False)
    assert from_memory.synthetic and small_columns.synthetic  # the store was built from `nasbench synth` output


def test_server_columns_and_results_equal_the_store_ones(server_address, full_columns) -> None:
    remote = columns.load(server_address)
    _assert_same_columns(remote, full_columns)
    assert remote.source["location"] == server_address
    options = analyses.Options(walks=200, steps=20, max_distance=2)
    names = [name for name in analyses.NAMES if name != "summary"]
    for name in names:
        local_result = analyses.run(full_columns, name, options).as_dict()
        assert analyses.run(remote, name, options).as_dict() == local_result, name
    local_summary = analyses.run(full_columns, "summary", options).as_dict()
    remote_summary = analyses.run(remote, "summary", options).as_dict()
    assert {k: v for k, v in local_summary.items() if k != "description"} == {
        k: v for k, v in remote_summary.items() if k != "description"
    }


def test_server_holding_a_subset_of_the_space(tmp_path, small_store, small_columns) -> None:
    """A server over cells up to 5 vertices: the found flags keep exactly its cells, in the same order."""
    from nasbench_server.process import ServerProcess

    process = ServerProcess(small_store, tmp_path).wait_serving()
    try:
        remote = columns.load(f"grpc://{process.address}")
    finally:
        process.stop()
    _assert_same_columns(remote, small_columns)


def test_no_server_is_a_clear_error() -> None:
    with pytest.raises(ServiceUnavailableError, match=r"127\.0\.0\.1:9"):
        columns.load("grpc://127.0.0.1:9", timeout=2)


def test_budget_and_metric_errors_name_the_choices(small_columns) -> None:
    with pytest.raises(
        ConfigurationError, match=r"budget 50 epochs is not in this dataset \(it holds: 4, 12, 36, 108\)"
    ):
        small_columns.accuracy(50)
    with pytest.raises(ConfigurationError, match=r"unknown metric .loss. \(choose from validation, test, train\)"):
        small_columns.accuracy(108, "loss")
