"""nasbench.model.cifar: the original's split of CIFAR-10 from the python-version archive or its folder, the
archive checked by its MD5, damaged files refused with one clear error."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from nasbench.model import cifar
from tests.cifar_files import BATCHES, batch, pickled, write_archive


def test_split_sizes_are_the_originals(cifar_splits: cifar.Splits) -> None:
    assert (len(cifar_splits.train), len(cifar_splits.validation), len(cifar_splits.test)) == (40_000, 10_000, 10_000)
    assert cifar_splits.train.images.shape == (40_000, 3, 32, 32)
    assert cifar_splits.train.images.dtype == np.uint8


def test_split_follows_the_batches(cifar_splits: cifar.Splits) -> None:
    """train = data_batch_1..4 in order, train_eval = data_batch_1, validation = data_batch_5, test = test_batch;
    pixels as stored (R plane, G plane, B plane of each row of 'data')."""
    first = batch("data_batch_1", seed=0)
    assert np.array_equal(cifar_splits.train_eval.images.reshape(10_000, 3072), first[b"data"])
    assert np.array_equal(cifar_splits.train.images[:10_000], cifar_splits.train_eval.images)
    assert cifar_splits.train.labels[30_000:].tolist() == batch("data_batch_4", seed=0)[b"labels"]
    assert cifar_splits.validation.labels.tolist() == batch("data_batch_5", seed=0)[b"labels"]
    assert cifar_splits.test.labels.tolist() == batch("test_batch", seed=0)[b"labels"]


def test_published_digest_is_checked_before_reading(cifar_archive: Path) -> None:
    """The default digest is the one published for the real archive, which the generated file does not have."""
    assert cifar.MD5 == "c58f30108f718f92721af3b95e74349a"
    with pytest.raises(cifar.CifarError, match=f"expected {cifar.MD5}"):
        cifar.load(cifar_archive)


def test_extracted_folder_gives_the_same_split(cifar_folder: Path, cifar_splits: cifar.Splits) -> None:
    for where in (cifar_folder, cifar_folder / cifar.FOLDER_NAME):  # the folder holding it, or the folder itself
        loaded = cifar.load(where)
        assert np.array_equal(loaded.test.images, cifar_splits.test.images)
        assert np.array_equal(loaded.train.labels, cifar_splits.train.labels)


class _Payload:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned",))


@pytest.mark.parametrize(
    ("member", "raw", "message"),
    [
        pytest.param("data_batch_2", pickled(_Payload()), "refusing to load", id="code-in-a-pickle"),
        pytest.param("data_batch_3", b"not a pickle", "not a CIFAR-10 batch", id="garbage"),
        pytest.param(
            "test_batch",
            pickled({b"data": np.zeros((10, 3072), np.uint8), b"labels": [0] * 10}),
            "10000 x 3072",
            id="short-batch",
        ),
        pytest.param(
            "data_batch_5",
            pickled({b"data": np.zeros((10_000, 3072), np.uint8), b"labels": [10] * 10_000}),
            "labels must be 0 to 9",
            id="bad-label",
        ),
    ],
)
def test_damaged_batch_is_one_clear_error(tmp_path: Path, member: str, raw: bytes, message: str) -> None:
    folder = tmp_path / cifar.FOLDER_NAME
    folder.mkdir()
    for name in BATCHES:
        (folder / name).write_bytes(raw if name == member else pickled(batch(name, seed=0)))
    with pytest.raises(cifar.CifarError, match=message) as caught:
        cifar.load(folder)
    assert member in str(caught.value)


def test_damaged_member_of_an_archive_is_named(tmp_path: Path) -> None:
    archive = write_archive(tmp_path / cifar.ARCHIVE_NAME, replace={"data_batch_2": pickled(_Payload())})
    with pytest.raises(cifar.CifarError, match=r"refusing to load posix\.system") as caught:
        cifar.load(archive, md5=cifar.file_md5(archive))
    assert "data_batch_2" in str(caught.value)


def test_truncated_archive_and_missing_path_are_clear_errors(cifar_archive: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(cifar_archive.read_bytes()[:100_000])
    with pytest.raises(cifar.CifarError, match=r"not a readable \.tar\.gz"):
        cifar.load(cut, md5=cifar.file_md5(cut))
    with pytest.raises(cifar.CifarError, match="no CIFAR-10 at"):
        cifar.load(tmp_path / "absent")


def test_missing_batch_in_folder_is_named(tmp_path: Path) -> None:
    folder = tmp_path / cifar.FOLDER_NAME
    folder.mkdir()
    for name in cifar.TRAIN_BATCHES:
        (folder / name).write_bytes(pickle.dumps(batch(name, seed=0)))
    with pytest.raises(cifar.CifarError, match="data_batch_5"):
        cifar.load(folder)
