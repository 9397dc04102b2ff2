"""The asyncio client: seeded runs repeat exactly whatever order concurrent answers arrive in (the draws follow
the order calls start, the synchronous client's sequence), and a client used where it cannot work says why."""

from __future__ import annotations

import asyncio
import os
import warnings

import pytest

from nasbench import aio, api
from nasbench.errors import UsageError


def _specs(store, count: int) -> list[api.ModelSpec]:
    nasbench = api.NASBench(store, seed=0)
    try:
        return nasbench.sample(count, seed=5)
    finally:
        nasbench.close()


@pytest.mark.parametrize("where", ["server", "store"])
def test_concurrent_seeded_queries_repeat_the_synchronous_sequence(where: str, server_address, full_store) -> None:
    """300 queries gathered at once, a fifth of them repeats (answered from the cache at once, ahead of the
    fetches before them): two runs and the synchronous client draw the same repeats and charge the same budget."""
    location = server_address if where == "server" else str(full_store)
    specs = _specs(full_store, 240)
    calls = [(specs[i % 240], (4, 12, 36, 108)[i % 4], i % 3 == 0) for i in range(300)]

    async def gathered() -> tuple[list[float], tuple[float, int]]:
        async with await aio.AsyncNASBench.connect(location, seed=0) as nasbench:
            answers = await asyncio.gather(*(nasbench.query(spec, epochs, halfway) for spec, epochs, halfway in calls))
            return [answer["validation_accuracy"] for answer in answers], nasbench.get_budget_counters()

    first, second = asyncio.run(gathered()), asyncio.run(gathered())
    synchronous = api.NASBench(location, seed=0)
    expected = [synchronous.query(spec, epochs, halfway)["validation_accuracy"] for spec, epochs, halfway in calls]
    assert first == second == (expected, synchronous.get_budget_counters())


def test_failed_and_cancelled_queries_draw_nothing(server_address, full_store) -> None:
    """As the original: a query that fails (or never finishes) leaves the random stream where it was."""
    specs = _specs(full_store, 3)
    bad = api.ModelSpec([[0, 0], [0, 0]], ["input", "output"])  # disconnected

    async def run() -> list[float]:
        async with await aio.AsyncNASBench.connect(server_address, seed=0) as nasbench:
            outcomes = await asyncio.gather(
                nasbench.query(specs[0]), nasbench.query(bad), nasbench.query(specs[1]), return_exceptions=True
            )
            slow = asyncio.ensure_future(nasbench.query(specs[2]))
            slow.cancel()
            await asyncio.gather(slow, return_exceptions=True)
            last = await nasbench.query(specs[2])
            return [outcomes[0]["training_time"], outcomes[2]["training_time"], last["training_time"]]

    synchronous = api.NASBench(server_address, seed=0)
    expected = [synchronous.query(spec)["training_time"] for spec in specs]
    assert asyncio.run(run()) == expected


def test_a_closed_client_says_so(server_address) -> None:
    async def run() -> None:
        nasbench = await aio.AsyncNASBench.connect(server_address)
        await nasbench.close()
        await nasbench.get_metrics_from_hash("0" * 32)

    with pytest.raises(UsageError) as info:
        asyncio.run(run())
    assert str(info.value) == f"this client of {server_address} was closed; connect again"


def test_a_client_used_from_another_event_loop_says_so(server_address) -> None:
    nasbench = asyncio.run(aio.AsyncNASBench.connect(server_address))
    with pytest.raises(UsageError) as info:
        asyncio.run(nasbench.get_metrics_from_hash("0" * 32))
    assert str(info.value) == (
        f"this client of {server_address} belongs to the event loop it was connected in; connect again inside the "
        "loop that uses it"
    )


def test_a_client_used_after_fork_says_so(server_address) -> None:
    """In the child of a fork, the parent's channel is not used: an error saying to connect again there."""

    async def connect() -> aio.AsyncNASBench:
        return await aio.AsyncNASBench.connect(server_address)

    loop = asyncio.new_event_loop()
    nasbench = loop.run_until_complete(connect())
    read, write = os.pipe()
    with warnings.catch_warnings():  # Python 3.12+ warns that forking a threaded process may deadlock its child
        warnings.simplefilter("ignore", DeprecationWarning)
        child = os.fork()
    if child == 0:  # the child: report what using the client raises, then leave at once
        os.close(read)
        try:
            loop.run_until_complete(nasbench.get_metrics_from_hash("0" * 32))
            message = b"no error"
        except BaseException as error:
            message = f"{type(error).__name__}: {error}".encode()
        os.write(write, message)
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        reported = pipe.read().decode()
    os.waitpid(child, 0)
    loop.run_until_complete(nasbench.close())
    loop.close()
    assert reported.startswith("UsageError:") and "cannot cross a fork" in reported
