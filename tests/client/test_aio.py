"""``nasbench.aio.AsyncNASBench``: the drop-in API as coroutines over a server or a store, answering exactly as
the synchronous API does on the local store (answers, errors, budget, and the draws from Python's global random)."""

from __future__ import annotations

import asyncio
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from nasbench import aio, api
from nasbench._backends import remote
from nasbench.errors import ServiceUnavailableError, TooManyVerticesError, UnknownCellError
from nasbench.v1 import nasbench_pb2 as pb
from nasbench_builder import prepare
from tests.client.scenarios import (
    AVAILABLE,
    C3,
    INCEPTION,
    INCEPTION_HASH,
    ISSUE_32,
    MP,
    SEED_0_REPEATS,
    I,
    O,
    spec,
)


@pytest.fixture(params=["store", "server"])
def location(request: pytest.FixtureRequest, full_store: Path) -> str:
    """Where an AsyncNASBench connects: the full synthetic store, or the server holding it."""
    return str(full_store) if request.param == "store" else request.getfixturevalue("server_address")


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
            before = (await nasbench._backend.transport.call("GetInfo", pb.GetInfoRequest())).requests_served
            for _ in range(50):
                await nasbench.query(model_spec, epochs=4)
            after = (await nasbench._backend.transport.call("GetInfo", pb.GetInfoRequest())).requests_served
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

    monkeypatch.setattr(remote, "DEFAULT_CONNECT_TIMEOUT_S", 1.0)
    address = f"grpc://127.0.0.1:{free_ports()[0]}"
    with pytest.raises(ServiceUnavailableError, match=f"no nasbench server answered at {address}"):
        asyncio.run(aio.AsyncNASBench.connect(address))


def _plain(results: list[dict]) -> list[dict]:
    return [{**result, "module_adjacency": result["module_adjacency"].tolist()} for result in results]


def test_query_batch_defaults_and_policies_follow_query(location: str) -> None:
    """As the synchronous API's: the defaults (108 epochs, the constructor's repeat policy), each explicit policy
    at the halfway point, all or nothing for a cell only a hash names (absent: KeyError, nothing charged), and a
    reordered op order naming every cell by the hash of its relabelled self."""
    specs = [spec(*INCEPTION), spec([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [I, MP, O])]
    float_matrix = spec(np.array(INCEPTION[0], dtype=float), INCEPTION[1])  # hashes differently: absent

    async def run() -> None:
        async with await aio.AsyncNASBench.connect(location, seed=4, repeat=2) as nasbench:
            batch = await nasbench.query_batch(specs)
            assert _plain(batch) == _plain([await nasbench.query(s) for s in specs])
            _, computed = await nasbench.get_metrics_from_spec(specs[0])
            assert batch[0]["training_time"] == computed[108][2]["final_training_time"]  # repeat=2
            for policy in ("mean", "all", 1, "hashed"):
                batch = await nasbench.query_batch(specs, epochs=12, stop_halfway=True, repeat=policy)
                single = [await nasbench.query(s, epochs=12, stop_halfway=True, repeat=policy) for s in specs]
                assert _plain(batch) == _plain(single)
            spent = nasbench.get_budget_counters()
            for absent_first in ([float_matrix, specs[0]], [specs[0], float_matrix]):
                with pytest.raises(KeyError) as info:
                    await nasbench.query_batch(absent_first)
                assert info.value.args[0] == float_matrix.hash_spec(AVAILABLE)
            assert nasbench.get_budget_counters() == spent
            nasbench.config["available_ops"] = list(reversed(AVAILABLE))
            [relabelled] = await nasbench.query_batch([specs[0]], repeat=1)
            swapped = spec(INCEPTION[0], [{C3: MP, MP: C3}.get(op, op) for op in INCEPTION[1]])
            fixed, computed = await nasbench.get_metrics_from_hash(swapped.hash_spec(AVAILABLE))
            assert relabelled["module_operations"] == fixed["module_operations"] != INCEPTION[1]
            assert relabelled["training_time"] == computed[108][1]["final_training_time"]
            assert (await nasbench.query(specs[0], repeat=1))["training_time"] == relabelled["training_time"]

    asyncio.run(run())


def test_sample_and_optima_are_the_synchronous_apis(location: str, full_store: Path) -> None:
    """Every filter keyword reaches the draw; one cell by default; unseeded draws continue the constructor's
    generator."""
    filters = {
        "num_vertices": [5, 6],
        "num_edges": [5],
        "min_parameters": 1_000_000,
        "max_parameters": 3_000_000,
        "ops": [C3, MP],
    }
    hashes = lambda specs: [s.hash_spec(AVAILABLE) for s in specs]  # noqa: E731
    local = api.NASBench(full_store, seed=8)
    expected = [
        hashes(local.sample()),
        hashes(local.sample(5, seed=2, **filters)),
        hashes(local.sample(3, **filters)),
        local.optima(),
    ]

    async def run() -> list:
        async with await aio.AsyncNASBench.connect(location, seed=8) as nasbench:
            return [
                hashes(await nasbench.sample()),
                hashes(await nasbench.sample(5, seed=2, **filters)),
                hashes(await nasbench.sample(3, **filters)),
                await nasbench.optima(),
            ]

    assert asyncio.run(run()) == expected


def test_connect_prepares_a_tfrecord_in_the_cache_folder(tiny_tfrecord: Path, tmp_path: Path, monkeypatch) -> None:
    """Beside a read-only source, as ``api.NASBench`` does: the store is built in ``cache_dir``."""
    folder = tmp_path / "ro"
    folder.mkdir()
    source = folder / "data.tfrecord"
    shutil.copy2(tiny_tfrecord, source)
    monkeypatch.setattr(prepare.os, "access", lambda path, mode: False)  # as for a user without write access

    async def run() -> int:
        async with await aio.AsyncNASBench.connect(source, cache_dir=tmp_path / "cache") as nasbench:
            return len(nasbench)

    assert asyncio.run(run()) == 91
    assert [p.name for p in (tmp_path / "cache" / "stores").glob("data-*.lmdb")] == [
        f"data-{source.stat().st_size}.lmdb"
    ]
    assert not (folder / "data.lmdb").exists()
