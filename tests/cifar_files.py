"""Generated files in the layout of CIFAR-10's python-version archive (``cifar-10-python.tar.gz``): five training
batches, the test batch and ``batches.meta``, each a pickled dict as the real ones, 10,000 images per batch.

The real archive cannot be downloaded here. The images are flat colours that depend on the label (plus a small
per-image shift), so the 180 MB of pixels compress to almost nothing and a network can learn them.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

from nasbench.model import cifar

BATCHES = (*cifar.TRAIN_BATCHES, cifar.VALIDATION_BATCH, cifar.TEST_BATCH)


def batch(name: str, seed: int) -> dict[bytes, object]:
    rng = np.random.default_rng([seed, BATCHES.index(name)])
    labels = rng.integers(0, cifar.NUM_LABELS, size=cifar.IMAGES_PER_BATCH)
    shift = rng.integers(0, 4, size=cifar.IMAGES_PER_BATCH)
    colours = (labels[:, None] * 23 + np.arange(3)[None, :] * 50 + shift[:, None]) % 256  # per image and channel
    data = np.repeat(colours.astype(np.uint8), 1024, axis=1)  # R plane, G plane, B plane, as CIFAR stores them
    return {b"batch_label": name.encode(), b"labels": labels.tolist(), b"data": data, b"filenames": []}


def pickled(entry: object) -> bytes:
    return pickle.dumps(entry, protocol=2)


def write_archive(path: Path, seed: int = 0, replace: dict[str, bytes] | None = None) -> Path:
    """Write the archive; ``replace`` swaps a member's bytes (by batch name) for damaged-file tests."""
    members = {name: pickled(batch(name, seed)) for name in BATCHES}
    members["batches.meta"] = pickled({b"label_names": [f"class{i}".encode() for i in range(10)]})
    members.update(replace or {})
    with tarfile.open(path, "w:gz", compresslevel=1) as archive:
        for name, raw in members.items():
            info = tarfile.TarInfo(f"{cifar.FOLDER_NAME}/{name}")
            info.size = len(raw)
            archive.addfile(info, io.BytesIO(raw))
    return path
