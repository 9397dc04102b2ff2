"""Where the analyses' data comes from: the dataset as columns, from a store or from a server.

Every analysis is a function of one ``Columns`` value: canonical keys, hashes, trainable parameters and the
metrics of every cell (float64[cells, budgets, 3 repeats, 8 fields], the store's layout), in one canonical
row order, ascending canonical key, whatever the source. So a store read in-process and the same store
behind a server give bit-identical columns, and every result computed from them is identical too.

- ``from_store(path)``: the store's memory-mapped columns, gathered into key order (one pass).
- ``from_dataset(dataset)``: an in-memory ``layout.Dataset`` (the synthetic generator's output).
- ``from_server(address)``: ``QueryBatch`` over every key of the space (``nasbench.space.enumerate_cells``;
  all budgets, all repeats) in chunks sized to stay well under the 64 MiB message limit; the response's
  ``found`` flags keep the cells a server's store holds (a store may hold a subset of the space).

Usage::

    from nasbench_experiments.analysis import columns
    data = columns.load("nasbench.lmdb")             # or "grpc://127.0.0.1:50051"
    accuracy = data.accuracy(108, "validation")      # float64[cells]: mean over the 3 repeats
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from nasbench import space
from nasbench.errors import ConfigurationError
from nasbench.store import layout
from nasbench.store.reader import Store
from nasbench_experiments.analysis.ranks import SubsetRanks

METRICS = ("validation", "test", "train")
_FINAL_FIELD = {name: layout.METRIC_FIELDS.index(f"final_{name}_accuracy") for name in ("train", "validation", "test")}
TRAINING_TIME = layout.METRIC_FIELDS.index("final_training_time")  # positions on the metrics' last axis
VALIDATION = _FINAL_FIELD["validation"]
TEST = _FINAL_FIELD["test"]
_TARGET_MESSAGE_BYTES = 32 << 20  # per QueryBatch response: half the 64 MiB limit
_MAX_CHUNK = 50_000
_Kept = TypeVar("_Kept")
_PER_CELL_BYTES = 16 + 8 + 8 + 4 + 1  # hash, key, representative, parameters, found


@dataclass(frozen=True)
class Columns:
    """The dataset as columns, rows in ascending canonical key."""

    keys: np.ndarray  # uint64[cells], strictly ascending
    hashes: np.ndarray  # uint8[cells, 16]: original MD5 digests
    parameters: np.ndarray  # int64[cells]: trainable parameters
    metrics: np.ndarray  # float64[cells, budgets, 3 repeats, 8 METRIC_FIELDS]
    epochs: tuple[int, ...]  # the budgets of the metrics axis, ascending
    source: dict[str, Any] = field(default_factory=dict)  # the store manifest's source, plus "location"
    _cache: dict[tuple[Any, ...], Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def cells(self) -> int:
        return len(self.keys)

    @property
    def synthetic(self) -> bool:
        return bool(self.source.get("synthetic"))

    def budget_index(self, budget: int) -> int:
        """Position of a budget on the metrics axis.

        Raises:
          ConfigurationError: the data has no such budget (naming the budgets it has).
        """
        if budget not in self.epochs:
            held = ", ".join(map(str, self.epochs)) or "none"
            raise ConfigurationError(f"budget {budget} epochs is not in this dataset (it holds: {held})")
        return self.epochs.index(budget)

    def runs(self, budget: int = 108, metric: str = "validation") -> np.ndarray:
        """float64[cells, 3]: the final ``metric`` accuracy of each repeat at ``budget`` epochs."""
        return self.metrics[:, self.budget_index(budget), :, _metric_field(metric)]

    def accuracy(self, budget: int = 108, metric: str = "validation") -> np.ndarray:
        """float64[cells]: the final ``metric`` accuracy at ``budget`` epochs, mean over the 3 repeats (computed
        once per budget and metric, then kept; read-only)."""
        return self._kept(("accuracy", budget, metric), lambda: self.runs(budget, metric).mean(axis=1))

    def ranking(self, budget: int = 108, metric: str = "validation") -> SubsetRanks:
        """Ranks of ``accuracy(budget, metric)`` (best-first order, subset ranks), computed once."""
        return self._kept(("ranking", budget, metric), lambda: SubsetRanks(self.accuracy(budget, metric)))

    def training_time(self, budget: int = 108) -> np.ndarray:
        """float64[cells]: the final training time (seconds) at ``budget`` epochs, mean over the 3 repeats."""
        index = self.budget_index(budget)
        return self._kept(("time", budget), lambda: self.metrics[:, index, :, TRAINING_TIME].mean(axis=1))

    def _kept(self, name: tuple[Any, ...], compute: Callable[[], _Kept]) -> _Kept:
        value: _Kept | None = self._cache.get(name)
        if value is None:
            value = compute()
            if isinstance(value, np.ndarray):
                value.flags.writeable = False
            self._cache[name] = value
        return value

    def row_of_key(self, key: int) -> int:
        """The row of a canonical key, or -1."""
        position = int(self.keys.searchsorted(np.uint64(key)))
        return position if position < self.cells and int(self.keys[position]) == key else -1

    def hash_of(self, row: int) -> str:
        digest: bytes = self.hashes[row].tobytes()
        return digest.hex()

    def describe(self) -> str:
        """One line: where the data comes from, how many cells and budgets, and whether it is synthetic."""
        kind = "SYNTHETIC data" if self.synthetic else "data"
        name = self.source.get("name", "?")
        version = self.source.get("synthetic_version")
        version_text = f", synthetic model v{version}" if version is not None else ""
        return (
            f"{kind} {name}{version_text} from {self.source.get('location', '?')}: {self.cells:,} cells, "
            f"budgets {list(self.epochs)} epochs, 3 repeats"
        )


def _metric_field(metric: str) -> int:
    try:
        return _FINAL_FIELD[metric]
    except KeyError:
        raise ConfigurationError(f"unknown metric {metric!r} (choose from {', '.join(METRICS)})") from None


def check_metric(metric: str) -> str:
    """``metric`` itself when known (ConfigurationError naming the choices otherwise)."""
    _metric_field(metric)
    return metric


def from_store(path: str | os.PathLike[str]) -> Columns:
    """The columns of a store, in ascending key order (the metrics are copied once, in that order).

    Raises:
      StoreError: no store at ``path``, or one that cannot be read.
    """
    store = Store.open(path)
    try:
        order = np.asarray(store.key_order, dtype=np.int64)
        return Columns(
            keys=store.keys[order],
            hashes=store.hashes[order],
            parameters=store.parameters[order].astype(np.int64),
            metrics=np.take(store.metrics, order, axis=0),
            epochs=tuple(store.epochs),
            source={**store.manifest.get("source", {}), "location": str(path)},
        )
    finally:
        store.close()


def from_dataset(dataset: layout.Dataset, location: str = "memory") -> Columns:
    """The columns of an in-memory ``layout.Dataset`` (e.g. a synthetic one before it is written), in key order."""
    order = np.argsort(dataset.keys, kind="stable")
    return Columns(
        keys=np.asarray(dataset.keys, dtype=np.uint64)[order],
        hashes=np.asarray(dataset.hashes, dtype=np.uint8)[order],
        parameters=np.asarray(dataset.parameters, dtype=np.int64)[order],
        metrics=np.asarray(dataset.metrics, dtype=np.float64)[order],
        epochs=tuple(dataset.epochs),
        source={**dataset.source, "location": location},
    )


def from_server(
    address: str,
    *,
    token: str | None = None,
    tls_ca: str | os.PathLike[str] | bytes | None = None,
    timeout: float = 120.0,
    progress: Callable[[int, int], None] | None = None,
) -> Columns:
    """The columns of the store a server holds, fetched with ``QueryBatch`` in chunks.

    Args:
      address: ``grpc://host:port`` (any address ``api.NASBench`` accepts).
      token, tls_ca: as for ``api.NASBench``.
      timeout: seconds per chunk.
      progress: called with (cells asked so far, cells of the space) after each chunk.

    Raises:
      ServiceUnavailableError, NotAuthorizedError, RequestRejectedError: as the remote client raises them.
    """
    from nasbench.backends import remote
    from nasbench.v1 import nasbench_pb2 as pb
    from nasbench.v1 import nasbench_pb2_grpc as pb_grpc

    channel = remote.shared_channel(remote.grpc_target(address), remote.channel_credentials(address, tls_ca))
    stub = pb_grpc.NasbenchStub(channel)
    metadata = (("authorization", f"Bearer {token}"),) if token else None
    with remote.map_rpc_errors(address):
        info = stub.GetInfo(pb.GetInfoRequest(), timeout=timeout, metadata=metadata)
    epochs = tuple(info.epochs)
    manifest = json.loads(info.manifest_json) if info.manifest_json else {}
    every_key = space.enumerate_cells().keys
    per_cell = len(epochs) * layout.NUM_REPEATS * len(layout.METRIC_FIELDS) * 8 + _PER_CELL_BYTES
    chunk = max(1, min(_MAX_CHUNK, info.max_batch or _MAX_CHUNK, _TARGET_MESSAGE_BYTES // per_cell))
    metrics = np.empty((int(info.cells), *_metrics_shape(epochs)), dtype=np.float64)
    keys = np.empty(int(info.cells), dtype=np.uint64)
    hashes = np.empty((int(info.cells), 16), dtype=np.uint8)
    parameters = np.empty(int(info.cells), dtype=np.int64)
    filled = 0
    for start in range(0, len(every_key), chunk):
        asked = every_key[start : start + chunk]
        request = pb.QueryBatchRequest(keys=asked.tolist(), epochs=0, repeat=pb.REPEAT_ALL)
        with remote.map_rpc_errors(address):
            response = stub.QueryBatch(request, timeout=timeout, metadata=metadata)
        found = np.frombuffer(response.found, dtype=np.uint8).astype(bool)
        count = int(found.sum())
        if filled + count > len(keys):
            raise ConfigurationError(f"{address} returned more cells than it reports holding ({info.cells})")
        rows = slice(filled, filled + count)
        keys[rows] = np.frombuffer(response.keys, dtype="<u8")[found]
        hashes[rows] = np.frombuffer(response.hashes, dtype=np.uint8).reshape(-1, 16)[found]
        parameters[rows] = np.frombuffer(response.trainable_parameters, dtype="<i4")[found]
        metrics[rows] = np.frombuffer(response.metrics, dtype="<f8").reshape(len(asked), *_metrics_shape(epochs))[found]
        filled += count
        if progress is not None:
            progress(start + len(asked), len(every_key))
    if filled != len(keys):
        raise ConfigurationError(
            f"{address} holds {info.cells} cells but {filled} of them are cells of the search space"
        )
    source = {**manifest.get("source", {}), "location": address}
    return Columns(keys, hashes, parameters, metrics, epochs, source)


def _metrics_shape(epochs: tuple[int, ...]) -> tuple[int, int, int]:
    return (len(epochs), layout.NUM_REPEATS, len(layout.METRIC_FIELDS))


def is_remote(location: str) -> bool:
    """True for a server address (``grpc://``, ``grpcs://``, ``unix:``), False for a store path."""
    return location.startswith(("grpc://", "grpcs://", "unix:", "dns:"))


def load(location: str | os.PathLike[str], **remote_options: Any) -> Columns:
    """``from_server`` for a server address, ``from_store`` for anything else (a path)."""
    text = str(location)
    if is_remote(text):
        return from_server(text, **remote_options)
    return from_store(Path(text))
