"""Where the analyses' data comes from: the dataset as columns, from a store or from a server.

Every analysis is a function of one ``Columns`` value: canonical keys, hashes, trainable parameters and the
metrics of every cell (float64[cells, budgets, 3 repeats, 8 fields]), in one canonical row order, ascending
canonical key, whatever the source. The columns come from ``api.NASBench(location).columns()``: a store read
in-process and the same store behind a server (batched ``QueryBatch`` calls) give bit-identical columns, so every
result computed from them is identical too, and ``location`` is anything ``api.NASBench`` accepts.

Usage::

    from nasbench_experiments.analysis import columns
    data = columns.load("nasbench.lmdb")             # or "grpc://127.0.0.1:50051", "127.0.0.1:50051", "full"
    accuracy = data.accuracy(108, "validation")      # float64[cells]: mean over the 3 repeats
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from nasbench import api
from nasbench.errors import ConfigurationError
from nasbench.types import METRIC_FIELDS, DatasetColumns
from nasbench_experiments.analysis.ranks import SubsetRanks

METRICS = ("validation", "test", "train")
_FINAL_FIELD = {name: METRIC_FIELDS.index(f"final_{name}_accuracy") for name in ("train", "validation", "test")}
TRAINING_TIME = METRIC_FIELDS.index("final_training_time")  # positions on the metrics' last axis
VALIDATION = _FINAL_FIELD["validation"]
TEST = _FINAL_FIELD["test"]
_Kept = TypeVar("_Kept")


@dataclass(frozen=True)
class Columns(DatasetColumns):
    """``NASBench.columns()``'s dataset (rows in ascending canonical key; ``source`` has its ``location`` too),
    with the per-budget views the analyses share, each computed once."""

    _cache: dict[tuple[Any, ...], Any] = field(default_factory=dict, init=False, repr=False, compare=False)

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


def of(data: DatasetColumns, location: str) -> Columns:
    """The analyses' columns of ``NASBench.columns()``'s answer."""
    return Columns(
        keys=data.keys,
        hashes=data.hashes,
        representatives=data.representatives,
        parameters=data.parameters,
        metrics=data.metrics,
        epochs=tuple(data.epochs),
        source={**data.source, "location": location},
    )


def load(location: str | os.PathLike[str], **options: Any) -> Columns:
    """The columns of any location ``api.NASBench`` accepts (a store, a server address, a dataset name, a
    .tfrecord); ``options`` are its keywords (token, tls_ca, timeout, cache_dir).

    Loading leaves Python's global ``random`` as it was (``api.NASBench`` seeds it, as the original does).

    Raises:
      StoreError, ServiceUnavailableError, NotAuthorizedError, RequestRejectedError: as ``api.NASBench`` raises.
    """
    state = random.getstate()
    try:
        nasbench = api.NASBench(location, **options)
    finally:
        random.setstate(state)
    try:
        return of(nasbench.columns(), os.fspath(location))
    finally:
        nasbench.close()


def from_dataset(dataset: Any, location: str = "memory") -> Columns:
    """The columns of an in-memory dataset (the builder's ``Dataset``, e.g. a synthetic one before it is written),
    in key order."""
    order = np.argsort(dataset.keys, kind="stable")
    return Columns(
        keys=np.asarray(dataset.keys, dtype=np.uint64)[order],
        hashes=np.asarray(dataset.hashes, dtype=np.uint8)[order],
        representatives=np.asarray(dataset.representatives, dtype=np.uint64)[order],
        parameters=np.asarray(dataset.parameters, dtype=np.int64)[order],
        metrics=np.asarray(dataset.metrics, dtype=np.float64)[order],
        epochs=tuple(dataset.epochs),
        source={**dataset.source, "location": location},
    )
