"""Wrong answers that must never happen, on both backends: big batches, duplicate filters, malformed keys,
threads sharing one NASBench."""

from __future__ import annotations

import random
import sys
import threading

import numpy as np
import pytest

from nasbench import _memo, api, canonical
from nasbench._engine.engine import Engine
from nasbench._store.reader import Store
from nasbench.lib import config


@pytest.fixture(scope="module")
def store(full_store):
    opened = Store.open(full_store)
    yield opened
    opened.close()


def _relabelled(key: int, rng: random.Random) -> api.ModelSpec:
    """The cell of ``key`` under a random relabelling of its interior vertices (a never-seen matrix)."""
    matrix, ops = canonical.decode(key)
    size = len(ops)
    interior = list(range(1, size - 1))
    while True:
        rng.shuffle(interior)
        order = [0, *interior, size - 1]
        permuted = matrix[np.ix_(order, order)]
        if not np.tril(permuted).any():
            return api.ModelSpec(permuted, [ops[i] for i in order])


def _expected(store: Store, spec: api.ModelSpec) -> list[float]:
    """Repeat 0 of the final 108-epoch point, read straight from the store's columns."""
    row = store.row_of_key(canonical.canonical_key(spec.matrix, spec.ops))
    return store.metrics[row, store.epochs.index(108), 0, 4:8].tolist()


def test_query_batch_larger_than_the_client_cache_answers_every_cell(open_nasbench, store):
    nasbench = open_nasbench(seed=0)
    rows = np.random.default_rng(1).choice(store.cells, size=40_000, replace=False)
    specs = [api.ModelSpec(*canonical.decode(int(store.keys[row]))) for row in rows.tolist()]
    answers = nasbench.query_batch(specs, repeat=0)
    assert len(answers) == len(specs)
    for spec, answer in zip(specs[::997], answers[::997], strict=True):
        values = [answer[name] for name in ("training_time", "train_accuracy", "validation_accuracy", "test_accuracy")]
        assert values == _expected(store, spec)
    # the cache is now full of the first batch: a batch of other cells must still come back whole
    others = np.setdiff1d(np.arange(store.cells), rows)[:500]
    more = [api.ModelSpec(*canonical.decode(int(store.keys[row]))) for row in others.tolist()]
    assert [a["test_accuracy"] for a in nasbench.query_batch(more, repeat=0)] == [_expected(store, s)[3] for s in more]


@pytest.mark.parametrize("copies", [2, 300], ids=["twice", "300-times"])
def test_sample_with_an_op_named_several_times_allows_exactly_that_op(open_nasbench, copies):
    nasbench = open_nasbench(seed=0)
    specs = nasbench.sample(50, seed=3, ops=[api.CONV3X3] * copies)
    assert len(specs) == 50
    for spec in specs:
        assert set(spec.ops[1:-1]) <= {api.CONV3X3}
    mixed = nasbench.sample(50, seed=3, ops=[api.MAXPOOL3X3, api.CONV1X1, api.MAXPOOL3X3])
    assert all(set(spec.ops[1:-1]) <= {api.MAXPOOL3X3, api.CONV1X1} for spec in mixed)
    assert any(api.MAXPOOL3X3 in spec.ops for spec in mixed) and any(api.CONV1X1 in spec.ops for spec in mixed)


def test_keys_with_op_digits_out_of_range_name_no_cell(full_store, store):
    engine = Engine.open(full_store)
    try:
        checked = 0
        for key in store.keys[:: max(1, store.cells // 2000)].tolist():
            num_vertices, bits, labels = canonical.unpack(key)
            for position in range(num_vertices - 2):  # one interior op label set to 3 (no such op)
                bad = list(labels)
                bad[position] = 3
                assert engine.cell_by_key(canonical.pack(num_vertices, bits, bad)) is None
                checked += 1
            if num_vertices < config.MODULE_VERTICES:  # a label beyond the cell's interior vertices
                assert engine.cell_by_key(key | 1 << (2 * (num_vertices - 2))) is None
            assert engine.cell_by_key(key).key == key
        assert checked > 1000
        assert engine.rows_of_keys(np.array([int(store.keys[0]) | 3], dtype=np.uint64)).tolist() in ([-1], [0])
    finally:
        engine.close()


@pytest.fixture
def tiny_switch_interval():
    """Switch threads every microsecond, so races between threads happen within a short test."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def test_threads_sharing_one_nasbench_get_right_answers(open_nasbench, store, tiny_switch_interval, monkeypatch):
    """8 threads, each querying hundreds of never-seen matrices, switching every microsecond, with every memo of
    the process (the remote client's cell cache among them) shrunk to 64 entries so that they evict all the time."""
    nasbench = open_nasbench(seed=0, repeat=0)
    for memo in list(_memo._MEMOS):
        monkeypatch.setattr(memo, "maxsize", 64)
    failures: list[BaseException] = []
    wrong: list[str] = []

    def work(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for row in rng.sample(range(store.cells), 400):
                spec = _relabelled(int(store.keys[row]), rng)
                answer = nasbench.query(spec)
                if answer["test_accuracy"] != store.metrics[row, store.epochs.index(108), 0, 7]:
                    wrong.append(f"row {row}")
        except BaseException as exc:
            failures.append(exc)

    workers = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert failures == [] and wrong == []


_INHERITED: list[api.NASBench] = []  # the parent's NASBench, reached by forked children through the module


def _answers_in_child(keys: list[int], seed: int) -> list[float]:
    rng = random.Random(seed)
    return [_INHERITED[0].query(_relabelled(key, rng))["test_accuracy"] for key in keys]


def test_a_fork_pool_shares_one_nasbench(open_nasbench, store):
    """The optimizer pattern: one NASBench made (and used) in the parent, then a pool of forked workers that
    inherit it, each querying cells it never saw; every answer equals the store (the remote client makes a fresh
    channel per child process; the local one shares the memory map)."""
    import multiprocessing

    nasbench = open_nasbench(seed=0, repeat=0)
    nasbench.query(_relabelled(int(store.keys[0]), random.Random(0)))
    rows = random.Random(1).sample(range(store.cells), 800)
    chunks = [[int(store.keys[row]) for row in rows[start : start + 100]] for start in range(0, len(rows), 100)]
    _INHERITED[:] = [nasbench]
    try:
        with multiprocessing.get_context("fork").Pool(4) as pool:
            answers = pool.starmap(_answers_in_child, [(chunk, seed) for seed, chunk in enumerate(chunks)])
    finally:
        _INHERITED.clear()
    expected = [store.metrics[row, store.epochs.index(108), 0, 7] for row in rows]
    assert [value for chunk in answers for value in chunk] == expected
