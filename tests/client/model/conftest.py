"""The generated CIFAR-10 archive (tests/conftest.py) loaded and extracted once per session; one torch thread."""

from __future__ import annotations

import importlib.util
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from nasbench.model import cifar


@pytest.fixture(scope="session")
def cifar_splits(cifar_archive: Path, cifar_md5: str) -> cifar.Splits:
    return cifar.load(cifar_archive, md5=cifar_md5)


@pytest.fixture(scope="session")
def cifar_folder(cifar_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated archive, extracted: ``<folder>/cifar-10-batches-py/data_batch_1`` and so on."""
    folder = tmp_path_factory.mktemp("cifar-extracted")
    with tarfile.open(cifar_archive) as archive:
        archive.extractall(folder, filter="data")
    return folder


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> Iterator[None]:
    """The tests' networks are tiny: one thread is as fast, and on a machine shared with other jobs torch's
    threads would wait on each other (ten times slower seen here). Without torch (the fast subsets) a no-op."""
    if importlib.util.find_spec("torch") is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
