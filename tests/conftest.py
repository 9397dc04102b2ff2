"""Session fixtures: the search space table, small synthetic datasets in the original format, built stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from nasbench import space
from nasbench_builder import source, synthetic, writer


@pytest.fixture(scope="session")
def space_table() -> space.SpaceTable:
    return space.load_space()


@pytest.fixture(scope="session")
def tiny_synthetic(space_table: space.SpaceTable) -> synthetic.SyntheticDataset:
    """Cells of up to 4 vertices (91), all four budgets: 1,092 records."""
    return synthetic.synthesize(max_vertices=4, seed=7, table=space_table)


@pytest.fixture(scope="session")
def tiny_tfrecord(tmp_path_factory: pytest.TempPathFactory, tiny_synthetic: synthetic.SyntheticDataset) -> Path:
    path = tmp_path_factory.mktemp("tiny") / "tiny_full.tfrecord"
    synthetic.write_tfrecord(tiny_synthetic, path)
    return path


@pytest.fixture(scope="session")
def small_synthetic(space_table: space.SpaceTable) -> synthetic.SyntheticDataset:
    """Cells of up to 5 vertices (2,532), all four budgets: 30,384 records."""
    return synthetic.synthesize(max_vertices=5, seed=3, table=space_table)


@pytest.fixture(scope="session")
def small_store(tmp_path_factory: pytest.TempPathFactory, small_synthetic: synthetic.SyntheticDataset) -> Path:
    """A store built from a real generated TFRecord file of cells up to 5 vertices."""
    folder = tmp_path_factory.mktemp("small")
    record_file = folder / "small_full.tfrecord"
    synthetic.write_tfrecord(small_synthetic, record_file)
    path = folder / "small.lmdb"
    writer.write_store(source.read_dataset(record_file, workers=1), path)
    return path


@pytest.fixture(scope="session")
def full_synthetic(space_table: space.SpaceTable) -> synthetic.SyntheticDataset:
    """The whole space, all four budgets (a synthetic nasbench_full)."""
    return synthetic.synthesize(seed=11, table=space_table)


@pytest.fixture(scope="session")
def full_store(tmp_path_factory: pytest.TempPathFactory, full_synthetic: synthetic.SyntheticDataset) -> Path:
    path = tmp_path_factory.mktemp("full") / "full.lmdb"
    writer.write_store(full_synthetic.dataset, path)
    return path


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, full_store: Path):
    """A real server process on 127.0.0.1 over the full synthetic store, for the whole session."""
    from nasbench_server.process import ServerProcess

    process = ServerProcess(full_store, tmp_path_factory.mktemp("server")).wait_serving()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def server_address(server) -> str:
    return f"grpc://{server.address}"
