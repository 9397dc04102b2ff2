"""``nasbench.aio.AsyncNASBench``: the drop-in API as coroutines over a server, answering exactly as the
synchronous API does on the local store (answers, errors, budget, and the draws from Python's global random)."""

from __future__ import annotations

import asyncio
import random

import numpy as np
import pytest

from nasbench import aio, api
from nasbench.errors import ServiceUnavailableError, TooManyVerticesError, UnknownCellError
from nasbench.v1 import nasbench_pb2 as pb
from tests.client.scenarios import INCEPTION, INCEPTION_HASH, ISSUE_32, SEED_0_REPEATS, I, O, spec


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


def test_a_session_equals_the_synchronous_api(server_address, full_store) -> None:
    local = api.NASBench(full_store, seed=11)
    specs = local.sample(12, seed=4)
    random.seed(5)
    expected = []
    for index, model_spec in enumerate(specs):
        expected.append(local.query(model_spec, epochs=(4, 12, 36, 108)[index % 4], stop_halfway=index % 2 == 1))
    expected += [
        local.get_metrics_from_spec(specs[0]),
        local.get_metrics_from_hash(INCEPTION_HASH),
        local.query_batch(specs[:5], epochs=12),
        local.query(specs[1], repeat="hashed"),
        local.query(specs[2], repeat="all"),
        [s.hash_spec(local.config["available_ops"]) for s in local.sample(7, seed=3)],
        [s.hash_spec(local.config["available_ops"]) for s in local.neighbors(specs[3])],
        list(local.hash_iterator())[:3000],
        local.get_budget_counters(),
        random.random(),
    ]

    async def session() -> list:
        async with await aio.AsyncNASBench.connect(server_address, seed=11) as nasbench:
            assert nasbench.valid_epochs == {4, 12, 36, 108} and len(nasbench) == 423_624
            random.seed(5)
            found = []
            for index, model_spec in enumerate(specs):
                found.append(
                    await nasbench.query(model_spec, epochs=(4, 12, 36, 108)[index % 4], stop_halfway=index % 2 == 1)
                )
            found += [
                await nasbench.get_metrics_from_spec(specs[0]),
                await nasbench.get_metrics_from_hash(INCEPTION_HASH),
                await nasbench.query_batch(specs[:5], epochs=12),
                await nasbench.query(specs[1], repeat="hashed"),
                await nasbench.query(specs[2], repeat="all"),
                [s.hash_spec(nasbench.config["available_ops"]) for s in await nasbench.sample(7, seed=3)],
                [s.hash_spec(nasbench.config["available_ops"]) for s in await nasbench.neighbors(specs[3])],
                [h async for h in nasbench.hash_iterator()][:3000],
                nasbench.get_budget_counters(),
                random.random(),
            ]
            return found

    _same(asyncio.run(session()), expected)


def test_seeded_repeats_and_the_cache(server_address) -> None:
    """seed=0 draws the original's repeat sequence; a cell asked again costs no round trip."""

    async def run() -> tuple[list[float], list[float], int, int]:
        async with await aio.AsyncNASBench.connect(server_address, seed=0) as nasbench:
            model_spec = spec(*INCEPTION)
            times = [(await nasbench.query(model_spec))["training_time"] for _ in SEED_0_REPEATS]
            _, computed = await nasbench.get_metrics_from_spec(model_spec)
            before = (await nasbench._call("GetInfo", pb.GetInfoRequest())).requests_served
            for _ in range(50):
                await nasbench.query(model_spec, epochs=4)
            after = (await nasbench._call("GetInfo", pb.GetInfoRequest())).requests_served
            return times, [run["final_training_time"] for run in computed[108]], before, after

    times, runs, before, after = asyncio.run(run())
    assert times == [runs[index] for index in SEED_0_REPEATS]
    assert after == before + 1, "only the second GetInfo reached the server"


@pytest.mark.parametrize(
    ("matrix", "ops", "error", "message"),
    [
        pytest.param(
            [[0, 0], [0, 0]],
            [I, O],
            api.OutOfDomainError,
            "invalid spec, provided graph is disconnected.",
            id="disconnected",
        ),
        pytest.param(
            np.eye(8, k=1, dtype=int),
            [I] + [api.CONV3X3] * 6 + [O],
            TooManyVerticesError,
            "too many vertices, got 8",
            id="8",
        ),
        pytest.param(
            np.array(ISSUE_32[0], dtype=float),
            ISSUE_32[1],
            UnknownCellError,
            "926a133285cb34c1a38eefe60e7586d4",
            id="float",
        ),
    ],
)
def test_errors_are_the_synchronous_apis(server_address, matrix, ops, error: type, message: str) -> None:
    async def run() -> BaseException:
        async with await aio.AsyncNASBench.connect(server_address, seed=0) as nasbench:
            state = random.getstate()
            with pytest.raises(error) as info:
                await nasbench.query(spec(matrix, ops))
            assert random.getstate() == state and nasbench.get_budget_counters() == (0.0, 0)
            assert nasbench.is_valid(spec(matrix, ops)) is (error is UnknownCellError)
            return info.value

    raised = asyncio.run(run())
    assert message in str(raised)
    with pytest.raises(error) as synchronous:
        api.NASBench(server_address).query(spec(matrix, ops))
    assert type(synchronous.value) is type(raised) and synchronous.value.args == raised.args


def test_unknown_hash_and_bad_epochs(server_address) -> None:
    async def run() -> None:
        async with await aio.AsyncNASBench.connect(server_address) as nasbench:
            for bad in ("0" * 32, INCEPTION_HASH.upper(), 12345):
                with pytest.raises(KeyError) as info:
                    await nasbench.get_metrics_from_hash(bad)
                assert info.value.args == (bad,)
            with pytest.raises(
                api.OutOfDomainError, match=r"^invalid number of epochs, must be one of \{108, 4, 12, 36\}$"
            ):
                await nasbench.query(spec(*INCEPTION), epochs=5)

    asyncio.run(run())


def test_no_server_is_named(monkeypatch) -> None:
    from nasbench_server.process import free_ports

    monkeypatch.setattr(aio, "DEFAULT_CONNECT_TIMEOUT_S", 1.0)
    address = f"grpc://127.0.0.1:{free_ports()[0]}"
    with pytest.raises(ServiceUnavailableError, match=f"no nasbench server answered at {address}"):
        asyncio.run(aio.AsyncNASBench.connect(address))
