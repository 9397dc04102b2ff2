"""Fixtures of the experiments tests: a 108-epoch-only store, and one NASBench per store for the session; the
optimizers' optional libraries (CI installs them all; without them their tests skip, saying which is missing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nasbench import api, space
from nasbench_builder import synthetic, writer
from nasbench_experiments.search.registry import OPTIMIZERS


def needs_libraries(*optimizers: str) -> None:
    """Skip the calling test, naming the package, when an optimizer's library (extra 'experiments') is absent."""
    for name in optimizers:
        if OPTIMIZERS[name].library:
            pytest.importorskip(OPTIMIZERS[name].library, reason=f"optimizer {name} needs the experiments extra")


@pytest.fixture(scope="session")
def only108_store(tmp_path_factory: pytest.TempPathFactory, space_table: space.SpaceTable) -> Path:
    """Cells of up to 5 vertices, the 108-epoch budget only (as nasbench_only108)."""
    data = synthetic.synthesize(epochs=(108,), max_vertices=5, seed=3, table=space_table)
    path = tmp_path_factory.mktemp("only108") / "only108.lmdb"
    writer.write_store(data.dataset, path)
    return path


@pytest.fixture(scope="session")
def full_nasbench(full_store: Path) -> api.NASBench:
    return api.NASBench(full_store)


@pytest.fixture(scope="session")
def small_nasbench(small_store: Path) -> api.NASBench:
    return api.NASBench(small_store)
