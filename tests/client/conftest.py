"""The backends every API scenario runs against: the local store and a real server process on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nasbench import api

BACKENDS = ["local", "remote"]


@pytest.fixture(params=BACKENDS)
def open_nasbench(request: pytest.FixtureRequest, full_store: Path) -> Iterator[Callable[..., api.NASBench]]:
    """A factory ``open_nasbench(seed=None, **kwargs)`` of NASBench objects over the full synthetic store."""
    opened: list[api.NASBench] = []
    target = str(full_store) if request.param == "local" else request.getfixturevalue("server_address")

    def factory(seed: int | None = None, **kwargs) -> api.NASBench:
        nasbench = api.NASBench(target, seed=seed, **kwargs)
        opened.append(nasbench)
        return nasbench

    yield factory
    for nasbench in opened:
        nasbench.close()
