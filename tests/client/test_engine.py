"""The engine's own promises, by value: the 'hashed' repeat pinned (the contract client and server share), the
runs each repeat policy picks, batches as columns (the server's QueryBatch answers from them), the whole dataset
as columns, neighbours that include the first row, and ``verify`` passed through to the store."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from nasbench._engine.answers import Repeat, hashed_repeat
from nasbench._engine.engine import Engine
from nasbench._store.reader import Store
from nasbench.errors import InvalidSpecError, StoreCorruptError
from nasbench_builder import synthetic, writer
from tests import oracles

INCEPTION_KEY = 16592743520  # the canonical key of the paper's Inception-like cell (see tests/server/test_service)
# picks for seeds 0..9, pinned when the policy was defined: any change breaks every stored 'hashed' result
HASHED_INCEPTION = {4: [0, 2, 0, 2, 0, 1, 1, 0, 2, 2], 108: [2, 2, 1, 2, 2, 1, 1, 2, 0, 0]}


def test_hashed_repeat_is_pinned() -> None:
    for epochs, picks in HASHED_INCEPTION.items():
        assert [hashed_repeat(INCEPTION_KEY, epochs, seed) for seed in range(10)] == picks
    assert {hashed_repeat(key, 108, 0) for key in range(1000)} == {0, 1, 2}


def test_neighbours_include_the_first_row(small_store: Path) -> None:
    engine = Engine.open(small_store)
    try:
        keys = engine.store.keys
        candidates = [*engine.neighbors(keys.item(0)).tolist(), *range(1, engine.cells)]
        neighbour = next(keys.item(row) for row in candidates if 0 in engine.neighbors(keys.item(row)).tolist())
        rows = engine.neighbors(neighbour).tolist()
        expected = [r for r in engine.rows_of_keys(oracles.neighbor_keys(neighbour)).tolist() if r >= 0]
        assert 0 in rows and rows == expected
    finally:
        engine.close()


def test_open_passes_verify_to_the_store(small_store: Path, tmp_path: Path, monkeypatch) -> None:
    """A byte flipped in an array after the file verified once: ``verify=False`` opens it unchecked (for a file
    the caller just checked), ``verify=True`` and the default (the file changed) refuse it."""
    monkeypatch.setenv("NASBENCH_CACHE_DIR", str(tmp_path / "cache"))
    copy = tmp_path / "copy.lmdb"
    shutil.copyfile(small_store, copy)
    Engine.open(copy).close()
    store = Store.open(copy, verify=False)
    offset = store.manifest["arrays"]["metrics"]["offset"] + 3
    store.close()
    with open(copy, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0x10]))
    Engine.open(copy, verify=False).close()
    for verify in (True, None):
        with pytest.raises(StoreCorruptError, match="checksum mismatch in array 'metrics'"):
            Engine.open(copy, verify=verify)


@pytest.fixture(scope="module")
def engine(small_store: Path) -> Iterator[Engine]:
    opened = Engine.open(small_store)
    yield opened
    opened.close()


POLICIES = [Repeat.all(), Repeat.mean(), Repeat.at(0), Repeat.at(1), Repeat.at(2), Repeat.hashed(0), Repeat.hashed(7)]
POLICY_IDS = ["all", "mean", "index-0", "index-1", "index-2", "hashed-0", "hashed-7"]
ROWS = [5, -1, 0, 2531, 1234, -1, 17]  # the small store holds 2,532 cells; -1 is an absent cell


def _expected_runs(engine: Engine, row: int, budget: int, policy: Repeat, stop_halfway: bool) -> np.ndarray:
    """The runs a policy picks, from the stored metrics and the policy's definition (nasbench._engine.answers)."""
    stored = engine.store.metrics[row, engine.epochs.index(budget)]  # float64[3 repeats, 8 METRIC_FIELDS]
    point = slice(0, 4) if stop_halfway else slice(4, 8)
    if policy.mode == "all":
        return stored[:, point]
    if policy.mode == "mean":
        return stored[:, point].mean(axis=0, keepdims=True)
    index = policy.index if policy.mode == "index" else hashed_repeat(engine.key(row), budget, policy.seed)
    return stored[index : index + 1, point]


@pytest.mark.parametrize("stop_halfway", [False, True], ids=["final", "halfway"])
@pytest.mark.parametrize("policy", POLICIES, ids=POLICY_IDS)
def test_runs_are_the_repeats_the_policy_picks(engine: Engine, policy: Repeat, stop_halfway: bool) -> None:
    for row in (0, 17, 1234):
        for budget in engine.epochs:
            expected = _expected_runs(engine, row, budget, policy, stop_halfway)
            np.testing.assert_array_equal(engine.runs(row, budget, policy, stop_halfway), expected)


@pytest.mark.parametrize("stop_halfway", [False, True], ids=["final", "halfway"])
@pytest.mark.parametrize("policy", POLICIES, ids=POLICY_IDS)
def test_a_batch_holds_what_each_cell_answers_alone(engine: Engine, policy: Repeat, stop_halfway: bool) -> None:
    """Batch columns, row by row, equal the cell and the runs of that row for every policy, over every budget and
    over one; an absent row (-1) is not found and reads as zeros in every column. ``Repeat.all()`` keeps both
    points of the three runs, any other policy the chosen run at the chosen point."""
    rows = np.array(ROWS, dtype=np.int64)
    for span in (slice(None), slice(2, 3)):
        batch = engine.batch(rows, span, policy, stop_halfway)
        budgets = engine.epochs[span]
        assert batch.epochs == budgets
        assert batch.found.tolist() == [row >= 0 for row in ROWS]
        shape = (3, 8) if policy.mode == "all" else (1, 4)
        assert batch.metrics.shape == (len(ROWS), len(budgets), *shape)
        assert batch.metrics.flags.c_contiguous
        for position, row in enumerate(ROWS):
            if row < 0:
                assert batch.keys[position] == batch.representatives[position] == batch.parameters[position] == 0
                assert not batch.hashes[position].any() and not batch.metrics[position].any()
                continue
            cell = engine.cell(row)
            fields = (batch.keys[position], batch.representatives[position], batch.parameters[position])
            assert fields == (cell.key, cell.representative, cell.parameters)
            assert batch.hashes[position].tobytes() == engine.digest(row)
            for index, budget in enumerate(budgets):
                if policy.mode == "all":
                    expected = engine.store.metrics[row, engine.epochs.index(budget)]
                else:
                    expected = _expected_runs(engine, row, budget, policy, stop_halfway)
                np.testing.assert_array_equal(batch.metrics[position, index], expected)
        columns = (batch.keys, batch.representatives, batch.parameters, batch.hashes)
        stored = (engine.store.keys, engine.store.representatives, engine.store.parameters, engine.store.hashes)
        assert [column.dtype for column in columns] == [column.dtype for column in stored]


def test_a_batch_from_a_store_of_one_cell_reads_absent_cells_as_zeros(tmp_path: Path) -> None:
    """The smallest store (the one cell of 2 vertices) answers a batch with absent cells without reading past
    its only row."""
    path = tmp_path / "one.lmdb"
    writer.write_store(synthetic.synthesize(max_vertices=2, seed=5).dataset, path)
    one = Engine.open(path)
    try:
        assert one.cells == 1
        batch = one.batch(np.array([-1, 0, -1], dtype=np.int64), slice(None), Repeat.mean(), False)
        assert batch.found.tolist() == [False, True, False]
        assert batch.keys.tolist() == [0, one.key(0), 0]
        assert not batch.metrics[[0, 2]].any() and batch.metrics[1].all()
    finally:
        one.close()


def test_repeat_index_is_checked_with_the_range_in_the_message() -> None:
    assert [Repeat.at(index).index for index in range(3)] == [0, 1, 2]
    for index in (-1, 3):
        with pytest.raises(InvalidSpecError, match=rf"^repeat_index must be 0 to 2, got {index}$"):
            Repeat.at(index)


def test_columns_are_the_cells_in_ascending_key_order(engine: Engine) -> None:
    columns = engine.columns()
    assert columns.cells == engine.cells
    assert (np.diff(columns.keys.astype(np.float64)) > 0).all()
    assert columns.parameters.dtype == np.int64 and columns.epochs == engine.epochs
    assert columns.source == engine.manifest["source"] and columns.source["name"]
    for position in (0, 1, 700, columns.cells - 1):
        row = engine.row_of_key(columns.keys.item(position))
        cell = engine.cell(row)
        assert (columns.representatives[position], columns.parameters[position]) == (
            cell.representative,
            cell.parameters,
        )
        assert columns.hashes[position].tobytes() == engine.digest(row)
        np.testing.assert_array_equal(columns.metrics[position], cell.metrics)


def test_the_optima_of_the_columns_are_the_engines(engine: Engine) -> None:
    columns = engine.columns()
    from_columns = columns.optima()
    assert set(from_columns) == set(engine.epochs)
    for budget, best in engine.optima().items():
        found = from_columns[budget]
        assert (found.validation_accuracy, found.test_accuracy) == (best.validation_accuracy, best.test_accuracy)
        assert columns.keys[found.validation_row] == engine.key(best.validation_row)
        assert columns.keys[found.test_row] == engine.key(best.test_row)


def test_budgets_and_keys_are_found_by_position(engine: Engine) -> None:
    assert [engine.epoch_index(budget) for budget in engine.epochs] == list(range(len(engine.epochs)))
    assert engine.epoch_index(5) == -1
    assert [engine.row_of_key(engine.key(row)) for row in (0, 9, 2531)] == [0, 9, 2531]
    assert engine.row_of_key(INCEPTION_KEY) == -1  # a cell of 7 vertices: not in the small store


def test_the_identity_is_the_store_checksum(small_store: Path, full_store: Path) -> None:
    """What clients pin to: the store's checksum, one per store (opened here: the module's engine is opened once,
    before this test runs)."""
    small, full = Engine.open(small_store), Engine.open(full_store)
    assert small.identity == small.manifest["checksum"] and len(small.identity) == 32
    assert full.identity == full.manifest["checksum"] != small.identity
    small.close()
    full.close()
