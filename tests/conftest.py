"""Session fixtures: the search space table, small synthetic datasets in the original format, built stores.

The suite never reads or writes the user's cache folder (``~/.cache/nasbench``): each pytest session gets a
cache folder of its own (``NASBENCH_CACHE_DIR``, inherited by every process a test starts) and removes it at the
end, so a store that one run (or a mutant) left behind can never answer another run's test.

Three switches exist for mutation testing only (``tools/mutation.py`` sets them; a normal run uses none):

- ``NASBENCH_TEST_FIXTURE_CACHE=<folder>``: the expensive session fixtures (synthetic datasets, stores, files)
  are built once into that folder and reused by later pytest sessions, since mutmut runs one session per mutant.
- ``NASBENCH_TEST_INPROCESS_SERVER=1``: the shared ``server`` fixture runs the service in this process (on a
  thread), so mutmut sees which tests reach the servicer and its mutants run inside the server. Tests of the
  process itself (signals, restarts, workers) start real server processes either way.
- ``NASBENCH_TEST_FORGET_MEMOS=1``: every memoized function of the packages (``functools.cache``/``lru_cache``)
  forgets its results before each test. mutmut runs a mutant only against the tests that reached the mutated
  function when the selection ran unmutated; a function called only from inside a memoized one (the one-edit
  moves' pruning under ``moves._flip_table``, say) is reached by the first test that fills the cache, so without
  this its mutants would meet that one test alone.

With ``NASBENCH_TEST_FIXTURE_CACHE``, a session's own cache folder starts with copies of the key table and the
space table from ``<folder>/derived`` when that holds them (``tools/mutation.py`` computes them there with the
unmutated code): both are checked against their digests when opened, and computing them takes about 13 s, which
would otherwise be paid once per mutant.
"""

from __future__ import annotations

import os
import pickle
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from nasbench import space
from nasbench_builder import prepare, source, synthetic, writer

_CACHE = os.environ.get("NASBENCH_TEST_FIXTURE_CACHE")
_FORGET_MEMOS = bool(os.environ.get("NASBENCH_TEST_FORGET_MEMOS"))
_PACKAGES = ("nasbench", "nasbench_builder", "nasbench_server")
_OWN_CACHE = pytest.StashKey[tuple[Path, "str | None"]]()


def pytest_configure(config: pytest.Config) -> None:
    folder = Path(tempfile.mkdtemp(prefix="nasbench-test-cache-"))
    if _CACHE and (Path(_CACHE) / "derived").is_dir():
        for table in (Path(_CACHE) / "derived").iterdir():
            shutil.copy2(table, folder / table.name)
    config.stash[_OWN_CACHE] = (folder, os.environ.get("NASBENCH_CACHE_DIR"))
    os.environ["NASBENCH_CACHE_DIR"] = str(folder)


def pytest_unconfigure(config: pytest.Config) -> None:
    folder, before = config.stash[_OWN_CACHE]
    if before is None:
        os.environ.pop("NASBENCH_CACHE_DIR", None)
    else:
        os.environ["NASBENCH_CACHE_DIR"] = before
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(autouse=True)
def _memos_forgotten() -> None:
    """``NASBENCH_TEST_FORGET_MEMOS``: see the module docstring."""
    if not _FORGET_MEMOS:
        return
    for name, module in list(sys.modules.items()):
        if name.partition(".")[0] in _PACKAGES:
            for value in list(vars(module).values()):
                forget = getattr(value, "cache_clear", None)
                if callable(forget):
                    forget()


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
def tiny_store(tmp_path_factory: pytest.TempPathFactory, tiny_synthetic: synthetic.SyntheticDataset) -> Path:
    """``tiny_synthetic`` as a store (91 cells)."""
    folder = tmp_path_factory.mktemp("tiny-store")
    return _cached_file("tiny.lmdb", folder, lambda path: writer.write_store(tiny_synthetic.dataset, path))


@pytest.fixture(scope="session")
def small_synthetic(space_table: space.SpaceTable) -> synthetic.SyntheticDataset:
    """Cells of up to 5 vertices (2,532), all four budgets: 30,384 records."""
    return _cached_object("small_synthetic", lambda: synthetic.synthesize(max_vertices=5, seed=3, table=space_table))


@pytest.fixture(scope="session")
def small_tfrecord(tmp_path_factory: pytest.TempPathFactory, small_synthetic: synthetic.SyntheticDataset) -> Path:
    """``small_synthetic`` in the original file format (30,384 records)."""
    return _cached_file(
        "small_full.tfrecord",
        tmp_path_factory.mktemp("small-tfrecord"),
        lambda path: synthetic.write_tfrecord(small_synthetic, path),
    )


@pytest.fixture(scope="session")
def small_store(tmp_path_factory: pytest.TempPathFactory, small_tfrecord: Path) -> Path:
    """A store built from a real generated TFRecord file of cells up to 5 vertices."""
    return _cached_file(
        "small.lmdb",
        tmp_path_factory.mktemp("small"),
        lambda path: writer.write_store(source.read_dataset(small_tfrecord, workers=1), path),
    )


@pytest.fixture(scope="session")
def full_synthetic(space_table: space.SpaceTable) -> synthetic.SyntheticDataset:
    """The whole space, all four budgets: the embedded store's data (its seed), so the tests check the figures
    docs/synthetic-data.md gives for it."""
    return synthetic.synthesize(seed=prepare.SYNTHETIC_SEED, table=space_table)


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


@pytest.fixture(scope="session")
def cifar_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small CIFAR-10 archive in the published format (tests/cifar_files.py): the real one cannot be fetched."""
    from nasbench.model import cifar
    from tests.cifar_files import write_archive

    return write_archive(tmp_path_factory.mktemp("cifar") / cifar.ARCHIVE_NAME)


@pytest.fixture(scope="session")
def cifar_md5(cifar_archive: Path) -> str:
    """The generated archive's own MD5: stands in for the published one, which only the real file has."""
    from nasbench.model import cifar

    return cifar.file_md5(cifar_archive)


# --- a mirror of the only108 file and a cache folder to prepare it in (tests of downloading and preparing) -------

ONLY108_FILE = "nasbench_only108.tfrecord"


@pytest.fixture(scope="module")
def payload(tiny_tfrecord: Path) -> bytes:
    """The tiny dataset file's bytes, served as the only108 file by ``mirror``."""
    return tiny_tfrecord.read_bytes()


@pytest.fixture()
def mirror(payload: bytes) -> Iterator[Any]:
    """An HTTP server on 127.0.0.1 serving ``payload`` at ``data/nasbench_only108.tfrecord``."""
    from tests.mirror import Mirror

    with Mirror({f"data/{ONLY108_FILE}": payload}) as server:
        yield server


@pytest.fixture()
def space_cache(tmp_path: Path, space_table: space.SpaceTable) -> Path:
    """A fresh cache folder holding only the search-space table (its computation is tested elsewhere)."""
    folder = tmp_path / "cache"
    folder.mkdir()
    shutil.copy(space.default_cache_dir() / "space-v1.npz", folder / "space-v1.npz")
    return folder
