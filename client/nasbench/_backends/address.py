"""What a dataset argument names: a store, an original .tfrecord file, an official dataset, or a server. The one
parser of every entry point (``api.NASBench``, ``aio.AsyncNASBench``, ``NASBench.columns`` through them, the
``--store`` and ``--target`` options of every command), so the same text means the same thing everywhere.

In this order:

1. ``grpc://host:port``, ``grpcs://host:port`` (TLS), ``unix:/path``, ``dns:///name:port``: a server;
2. a path that exists: an original ``.tfrecord`` file (by its suffix, or by its first bytes: a TFRecord of
   NAS-Bench records), else a store;
3. ``host:port``, or several comma-separated (``h:p1,h:p2``): a server (round-robin across them);
4. ``only108`` or ``full``: the official dataset file (downloaded and built into a store once); ``synthetic``:
   the embedded synthetic dataset (built once);
5. a name ending in ``.tfrecord``: an original file (missing: an error naming it); anything else: a store path.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Kind = Literal["store", "tfrecord", "dataset", "server"]
# the official files (their URLs and digests: nasbench_builder.download), and the embedded synthetic dataset
DATASET_NAMES = ("only108", "full", "synthetic")
_SCHEME = re.compile(r"^(?:grpcs?://|unix:|dns:)")
_HOST_PORTS = re.compile(r"^(?:[\w.-]+|\[[0-9a-fA-F:.]+\]):\d+(?:,\s*(?:[\w.-]+|\[[0-9a-fA-F:.]+\]):\d+)*$")


@dataclass(frozen=True)
class Location:
    """A parsed dataset argument."""

    kind: Kind
    text: str  # as given: the path, the dataset name or the server address

    @property
    def path(self) -> Path:
        return Path(self.text)

    def describe(self) -> str:
        return {"store": "the store", "tfrecord": "the dataset file", "dataset": "the dataset", "server": "the server"}[
            self.kind
        ] + f" {self.text}"


def parse(dataset: str | os.PathLike[str]) -> Location:
    """The location ``dataset`` names (see the module docstring)."""
    text = os.fspath(dataset)
    if _SCHEME.match(text):
        return Location("server", text)
    path = Path(text)
    if os.path.lexists(path):
        is_tfrecord = path.suffix == ".tfrecord" or (path.is_file() and _looks_like_tfrecord(path))
        return Location("tfrecord" if is_tfrecord else "store", text)
    if _HOST_PORTS.match(text):
        return Location("server", text)
    if text in DATASET_NAMES:
        return Location("dataset", text)
    return Location("tfrecord" if path.suffix == ".tfrecord" else "store", text)


def is_server(dataset: str | os.PathLike[str]) -> bool:
    return parse(dataset).kind == "server"


def _looks_like_tfrecord(path: Path) -> bool:
    """A TFRecord of NAS-Bench records: a 12-byte header, then a JSON list. A file this process cannot read is
    not sniffed: it is taken for a store, whose opening then names the problem."""
    try:
        with open(path, "rb") as handle:
            return handle.read(14)[12:14] == b'["'
    except OSError:
        return False
