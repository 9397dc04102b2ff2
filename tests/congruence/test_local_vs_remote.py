"""The same calls on the local store and on a server: equal answers, equal errors, equal random streams."""

from __future__ import annotations

import random

import numpy as np
import pytest

from nasbench import api


@pytest.fixture()
def pair(full_store, server_address):
    local, remote = api.NASBench(full_store, seed=123), api.NASBench(server_address, seed=123)
    yield local, remote
    local.close()
    remote.close()


def _same(a, b) -> None:
    if isinstance(a, dict):
        assert list(a) == list(b)
        for key in a:
            _same(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _same(x, y)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    else:
        assert type(a) is type(b) and a == b


def test_a_mixed_session_gives_identical_results(pair) -> None:
    local, remote = pair
    specs = local.sample(40, seed=5)
    assert [s.hash_spec(local.config["available_ops"]) for s in remote.sample(40, seed=5)] == [
        s.hash_spec(local.config["available_ops"]) for s in specs
    ]
    outcomes = []
    for nasbench in (local, remote):
        random.seed(77)
        session = []
        for index, spec in enumerate(specs):
            epochs = (4, 12, 36, 108)[index % 4]
            session.append(nasbench.query(spec, epochs=epochs, stop_halfway=index % 3 == 0))
            session.append(nasbench.get_metrics_from_spec(spec))
        session.append(nasbench.query_batch(specs[:10], epochs=36))
        session.append([n.hash_spec(nasbench.config["available_ops"]) for n in nasbench.neighbors(specs[0])])
        session.append(list(nasbench.hash_iterator())[:2000])
        session.append(nasbench.get_budget_counters())
        session.append(random.random())
        outcomes.append(session)
    _same(outcomes[0], outcomes[1])


@pytest.mark.parametrize(
    ("matrix", "ops"),
    [
        ([[0, 0], [0, 0]], ["input", "output"]),
        (np.eye(8, k=1, dtype=int), ["input"] + ["conv3x3-bn-relu"] * 6 + ["output"]),
        ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "conv5x5", "output"]),
        ([[0, 1.0, 0], [0, 0, 1.0], [0, 0, 0]], ["input", "conv3x3-bn-relu", "output"]),
    ],
)
def test_errors_are_identical(pair, matrix, ops) -> None:
    errors = []
    for nasbench in pair:
        with pytest.raises(Exception) as info:
            nasbench.query(api.ModelSpec(matrix, ops))
        errors.append((type(info.value), info.value.args))
    assert errors[0] == errors[1]
