"""CIFAR-10 as NAS-Bench-101 split it, read from the python-version archive (``cifar-10-python.tar.gz``) or
its extracted folder (``cifar-10-batches-py``), without torch.

The split is the original's (``nasbench/scripts/generate_cifar10_tfrecords.py``, ``nasbench/lib/cifar.py``):
train on ``data_batch_1`` to ``data_batch_4`` (40,000 images), validate on ``data_batch_5`` (10,000), test on
``test_batch`` (10,000); the training accuracy is measured on ``data_batch_1`` alone. The archive is checked
against the MD5 its publisher gives (https://www.cs.toronto.edu/~kriz/cifar.html) before anything in it is read;
the batches are pickles, read with an unpickler that builds nothing but numpy arrays, so a tampered file cannot
run code.

Usage::

    from nasbench.model import cifar
    data = cifar.load("~/.cache/nasbench/datasets/cifar-10-python.tar.gz")
    data.train.images.shape   # (40000, 3, 32, 32) uint8
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from nasbench.errors import CifarError

ARCHIVE_NAME = "cifar-10-python.tar.gz"
FOLDER_NAME = "cifar-10-batches-py"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"  # published on the CIFAR-10 page
TRAIN_BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4")
VALIDATION_BATCH = "data_batch_5"
TEST_BATCH = "test_batch"
IMAGES_PER_BATCH = 10_000
IMAGE_SHAPE = (3, 32, 32)
NUM_LABELS = 10
# per-channel mean and standard deviation of the raw pixels (nasbench/lib/cifar.py RGB_MEAN, RGB_STD)
RGB_MEAN = (125.31, 122.95, 113.87)
RGB_STD = (62.99, 62.09, 66.70)


@dataclass(frozen=True)
class Images:
    """Images (uint8, N x 3 x 32 x 32, channels first as stored) and their labels (int64, 0 to 9)."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class Splits:
    """The original's split: train (40,000), train_eval (= data_batch_1), validation, test (10,000 each)."""

    train: Images
    train_eval: Images
    validation: Images
    test: Images
    source: str


class _ArraysOnly(pickle.Unpickler):
    """Rebuilds dicts, lists, strings, numbers and numpy arrays; refuses every other global."""

    _ALLOWED: ClassVar[frozenset[tuple[str, str]]] = frozenset({
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # bytes pickled at protocol 2 by Python 3
    })

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a CIFAR-10 batch holds only arrays")
        return super().find_class(module, name)


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(8 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _batch(raw: bytes, where: str) -> Images:
    try:
        batch = _ArraysOnly(io.BytesIO(raw), encoding="bytes").load()
    except Exception as exc:  # any unpickling failure of a damaged file
        raise CifarError(f"{where}: not a CIFAR-10 batch ({exc})") from None
    if not isinstance(batch, dict):
        raise CifarError(f"{where}: not a CIFAR-10 batch (a pickled {type(batch).__name__}, expected a dict)")
    entries = {key.decode() if isinstance(key, bytes) else key: value for key, value in batch.items()}
    data, labels = entries.get("data"), entries.get("labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.shape != (IMAGES_PER_BATCH, 3072):
        shape = getattr(data, "shape", None)
        raise CifarError(f"{where}: 'data' must be a uint8 array of {IMAGES_PER_BATCH} x 3072, got {shape}")
    label_array = np.asarray(labels, dtype=np.int64) if isinstance(labels, list) else None
    if label_array is None or label_array.shape != (IMAGES_PER_BATCH,):
        raise CifarError(f"{where}: 'labels' must be a list of {IMAGES_PER_BATCH} labels")
    if label_array.min() < 0 or label_array.max() >= NUM_LABELS:
        raise CifarError(f"{where}: labels must be 0 to {NUM_LABELS - 1}")
    return Images(data.reshape(IMAGES_PER_BATCH, *IMAGE_SHAPE), label_array)


def _read_archive(path: Path, md5: str) -> Callable[[str], Images]:
    actual = file_md5(path)
    if actual != md5.lower():
        raise CifarError(
            f"{path}: MD5 {actual}, expected {md5.lower()} (the published digest of {ARCHIVE_NAME}): the file is "
            "damaged or another file; download it again (nasbench download cifar10)"
        )
    wanted = {f"{FOLDER_NAME}/{name}" for name in (*TRAIN_BATCHES, VALIDATION_BATCH, TEST_BATCH)}
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:  # one pass: a gzip stream cannot seek back cheaply
                if member.name in wanted and member.isfile():
                    handle = archive.extractfile(member)
                    assert handle is not None  # a regular file
                    found[member.name] = handle.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise CifarError(f"{path}: not a readable .tar.gz ({exc})") from None

    def read(name: str) -> Images:
        raw = found.get(f"{FOLDER_NAME}/{name}")
        if raw is None:
            raise CifarError(f"{path}: {FOLDER_NAME}/{name} is missing from the archive")
        return _batch(raw, f"{path}:{FOLDER_NAME}/{name}")

    return read


def _read_folder(folder: Path) -> Callable[[str], Images]:
    def read(name: str) -> Images:
        file = folder / name
        try:
            raw = file.read_bytes()
        except OSError as exc:
            raise CifarError(f"cannot read {file}: {exc.strerror or exc}") from None
        return _batch(raw, str(file))

    return read


def load(path: str | os.PathLike[str], md5: str = MD5) -> Splits:
    """CIFAR-10 split as the original trained on it, from the archive (checked against ``md5``) or from the
    extracted folder (``cifar-10-batches-py``, or a folder holding it).

    Raises:
      CifarError: missing, unreadable or damaged files, a wrong digest, batches of another shape.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        folder = path / FOLDER_NAME if (path / FOLDER_NAME).is_dir() else path
        read = _read_folder(folder)
    elif path.is_file():
        read = _read_archive(path, md5)
    else:
        raise CifarError(
            f"no CIFAR-10 at {path}: pass {ARCHIVE_NAME} or its extracted {FOLDER_NAME} folder "
            "(nasbench download cifar10 fetches the archive)"
        )
    train = [read(name) for name in TRAIN_BATCHES]
    return Splits(
        train=Images(np.concatenate([b.images for b in train]), np.concatenate([b.labels for b in train])),
        train_eval=train[0],
        validation=read(VALIDATION_BATCH),
        test=read(TEST_BATCH),
        source=str(path),
    )
