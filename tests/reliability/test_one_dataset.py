"""A client is pinned to one dataset: replicas serving different stores behind one address, or a server restarted
onto another store, never mix two datasets' answers. Every call carries the dataset the client read first; a
server holding another refuses it (DatasetMismatchError naming both), and the client forgets what it cached."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from nasbench import aio, api
from nasbench.errors import DatasetMismatchError
from nasbench_builder import synthetic, writer
from nasbench_server.process import ServerProcess, free_ports


@pytest.fixture(scope="module")
def other_store(tmp_path_factory: pytest.TempPathFactory, space_table) -> Path:
    """The cells of the small store (up to 5 vertices) with other values: another dataset of the same shape."""
    path = tmp_path_factory.mktemp("other") / "other.lmdb"
    writer.write_store(synthetic.synthesize(max_vertices=5, seed=4, table=space_table).dataset, path)
    return path


def _specs(store: Path, count: int) -> list[api.ModelSpec]:
    nasbench = api.NASBench(store, seed=0)
    try:
        return nasbench.sample(count, seed=1)
    finally:
        nasbench.close()


def _values(store: Path, specs: list[api.ModelSpec]) -> list[float]:
    nasbench = api.NASBench(store)
    try:
        return [nasbench.query(spec, repeat=0)["validation_accuracy"] for spec in specs]
    finally:
        nasbench.close()


def test_replicas_with_different_stores_never_mix_answers(small_store, other_store, tmp_path) -> None:
    """Round-robin over a replica of each store: every answer is the pinned store's, every other call an error
    naming both datasets; before, about half the answers came from each store, silently."""
    first = ServerProcess(small_store, tmp_path).wait_serving()
    second = ServerProcess(other_store, tmp_path).wait_serving()
    try:
        specs = _specs(small_store, 200)
        expected = {str(small_store): _values(small_store, specs), str(other_store): _values(other_store, specs)}
        client = api.NASBench(f"{first.address},{second.address}")
        pinned = str(small_store) if client.dataset_identity == api.NASBench(small_store).dataset_identity else (
            str(other_store)
        )
        answered, refused = 0, 0
        for spec, right in zip(specs, expected[pinned], strict=True):
            try:
                assert client.query(spec, repeat=0)["validation_accuracy"] == right
                answered += 1
            except DatasetMismatchError as error:
                refused += 1
                assert "but the client is pinned to the dataset with checksum" in str(error)
        assert answered and refused, (answered, refused)
    finally:
        first.stop()
        second.stop()


def test_a_server_restarted_onto_another_store_is_refused_and_the_cache_forgotten(
    small_store, other_store, tmp_path
) -> None:
    port = free_ports()[0]
    specs = _specs(small_store, 20)
    server = ServerProcess(small_store, tmp_path, port=port).wait_serving()
    client = api.NASBench(f"127.0.0.1:{port}")
    try:
        warm = [client.query(spec, repeat=0)["validation_accuracy"] for spec in specs[:10]]
        assert warm == _values(small_store, specs[:10])
    finally:
        server.stop()
    server = ServerProcess(other_store, tmp_path, port=port).wait_serving()
    try:
        with pytest.raises(DatasetMismatchError, match="this server holds the dataset"):
            client.query(specs[15])  # a cell never fetched: the new server refuses the pinned client
        for spec in specs[:10]:  # the cells cached from the old store are gone with it
            with pytest.raises(DatasetMismatchError):
                client.query(spec)
        fresh = api.NASBench(f"127.0.0.1:{port}")  # connecting again pins to the new dataset
        assert [fresh.query(s, repeat=0)["validation_accuracy"] for s in specs[:10]] == _values(other_store, specs[:10])
    finally:
        server.stop()


def test_the_asyncio_client_is_pinned_too(small_store, other_store, tmp_path) -> None:
    first = ServerProcess(small_store, tmp_path).wait_serving()
    second = ServerProcess(other_store, tmp_path).wait_serving()
    specs = _specs(small_store, 60)

    async def run() -> tuple[list[object], str]:
        async with await aio.AsyncNASBench.connect(f"{first.address},{second.address}") as client:
            outcomes = await asyncio.gather(*(client.query(spec, repeat=0) for spec in specs), return_exceptions=True)
            return list(outcomes), client.dataset_identity

    try:
        outcomes, identity = asyncio.run(run())
        pinned = small_store if identity == api.NASBench(small_store).dataset_identity else other_store
        right = _values(pinned, specs)
        refused = [o for o in outcomes if isinstance(o, DatasetMismatchError)]
        answered = [(o, value) for o, value in zip(outcomes, right, strict=True) if isinstance(o, dict)]
        assert refused and answered and len(refused) + len(answered) == len(specs)
        assert all(o["validation_accuracy"] == value for o, value in answered)
    finally:
        first.stop()
        second.stop()
