"""Session fixtures: the search space table, small synthetic datasets in the original format, built stores.

Two switches exist for mutation testing only (``tools/mutation.py`` sets them; a normal run uses neither):

- ``NASBENCH_TEST_FIXTURE_CACHE=<folder>``: the expensive session fixtures (synthetic datasets, stores, files)
  are built once into that folder and reused by later pytest sessions, since mutmut runs one session per mutant.
- ``NASBENCH_TEST_INPROCESS_SERVER=1``: the shared ``server`` fixture runs the service in this process (on a
  thread), so mutmut sees which tests reach the servicer and its mutants run inside the server. Tests of the
  process itself (signals, restarts, workers) start real server processes either way.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from nasbench import space
from nasbench_builder import source, synthetic, writer

_CACHE = os.environ.get("NASBENCH_TEST_FIXTURE_CACHE")


def _cached_object(name: str, build: Callable[[], Any]) -> Any:
    """``build()``, or its pickled result from the fixture cache (see the module docstring)."""
    if not _CACHE:
        return build()
    path = Path(_CACHE) / f"{name}.pickle"
    if path.exists():
        return pickle.loads(path.read_bytes())
    value = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    temp.write_bytes(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    os.replace(temp, path)
    return value


def _cached_file(name: str, folder: Path, build: Callable[[Path], None]) -> Path:
    """A file ``build(path)`` writes into ``folder``, or the cached one (see the module docstring). Tests only
    read these files (those that damage a store damage a copy)."""
    path = folder / name
    if not _CACHE:
        build(path)
        return path
    cached = Path(_CACHE) / name
    if not cached.exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        temp = cached.with_name(f".{cached.name}.{os.getpid()}")
        build(temp)
        os.replace(temp, cached)
    return cached


@pytest.fixture(scope="session")
def space_table() -> space.SpaceTable:
    return _cached_object("space_table", space.load_space)


@pytest.fixture(scope="session")
def tiny_synthetic(space_table: space.SpaceTable) -> synthetic.SyntheticDataset:
    """Cells of up to 4 vertices (91), all four budgets: 1,092 records."""
    return _cached_object("tiny_synthetic", lambda: synthetic.synthesize(max_vertices=4, seed=7, table=space_table))


@pytest.fixture(scope="session")
def tiny_tfrecord(tmp_path_factory: pytest.TempPathFactory, tiny_synthetic: synthetic.SyntheticDataset) -> Path:
    return _cached_file(
        "tiny_full.tfrecord",
        tmp_path_factory.mktemp("tiny"),
        lambda path: synthetic.write_tfrecord(tiny_synthetic, path),
    )


@pytest.fixture(scope="session")
def small_synthetic(space_table: space.SpaceTable) -> synthetic.SyntheticDataset:
    """Cells of up to 5 vertices (2,532), all four budgets: 30,384 records."""
    return _cached_object("small_synthetic", lambda: synthetic.synthesize(max_vertices=5, seed=3, table=space_table))


@pytest.fixture(scope="session")
def small_store(tmp_path_factory: pytest.TempPathFactory, small_synthetic: synthetic.SyntheticDataset) -> Path:
    """A store built from a real generated TFRecord file of cells up to 5 vertices."""
    folder = tmp_path_factory.mktemp("small")

    def build(path: Path) -> None:
        record_file = folder / "small_full.tfrecord"
        synthetic.write_tfrecord(small_synthetic, record_file)
        writer.write_store(source.read_dataset(record_file, workers=1), path)

    return _cached_file("small.lmdb", folder, build)


@pytest.fixture(scope="session")
def full_synthetic(space_table: space.SpaceTable) -> synthetic.SyntheticDataset:
    """The whole space, all four budgets (a synthetic nasbench_full, seed 11)."""
    return synthetic.synthesize(seed=11, table=space_table)


@pytest.fixture(scope="session")
def full_store(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """``full_synthetic`` as a store (the dataset is synthesized only when the store is not cached)."""

    def build(path: Path) -> None:
        writer.write_store(request.getfixturevalue("full_synthetic").dataset, path)

    return _cached_file("full.lmdb", tmp_path_factory.mktemp("full"), build)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, full_store: Path) -> Iterator[Any]:
    """A real server process on 127.0.0.1 over the full synthetic store, for the whole session."""
    from tests.inprocess import served

    with served(full_store, tmp_path_factory.mktemp("server")) as running:
        yield running


@pytest.fixture(scope="session")
def server_address(server) -> str:
    return f"grpc://{server.address}"
