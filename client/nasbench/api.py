"""User interface of NAS-Bench-101, as the original ``nasbench.api``: same names, answers, errors, randomness.

Usage::

    from nasbench import api

    nasbench = api.NASBench("nasbench_only108.lmdb", seed=0)   # a store, a .tfrecord, or "grpc://host:port"
    model_spec = api.ModelSpec(
        matrix=[[0, 1, 1, 1, 0, 1, 0],    # input
                [0, 0, 0, 0, 0, 0, 1],    # 1x1 conv
                [0, 0, 0, 0, 0, 0, 1],    # 3x3 conv
                [0, 0, 0, 0, 1, 0, 0],    # 3x3 conv
                [0, 0, 0, 0, 0, 0, 1],    # 3x3 conv
                [0, 0, 0, 0, 0, 0, 1],    # 3x3 max-pool
                [0, 0, 0, 0, 0, 0, 0]],   # output
        ops=[api.INPUT, api.CONV1X1, api.CONV3X3, api.CONV3X3, api.CONV3X3, api.MAXPOOL3X3, api.OUTPUT])
    data = nasbench.query(model_spec)            # the dict the original returns
    nasbench.get_budget_counters()               # (training time spent, epochs spent)

What stays exactly as in the original (reference §1): the constructor seeds Python's global ``random`` and each
successful ``query`` draws one ``random.randint(0, 2)`` to pick the repeat, so a seeded script gets the repeats
the original gets; ``query`` returns the dataset's stored adjacency and ops (not the caller's matrix), the same
keys in the same order, int8 adjacency, Python floats bit-identical to the data; failed queries change neither
the budget nor the random stream; unknown hashes raise ``KeyError``; ``hash_iterator`` follows the file order.

Deliberate differences (each where the original fails by accident; see the README's compatibility notes):
more than 7 vertices raises an error that is both ``OutOfDomainError`` and ``TypeError`` (the original raised
a bare ``TypeError`` from a formatting bug) and ``is_valid`` returns False; ``evaluate`` raises
``NotImplementedError`` (training needs TensorFlow); loading prints nothing (it takes milliseconds).

Extensions, all opt-in: ``query_batch``, ``sample``, ``neighbors``, ``optima``, and a ``repeat`` policy (below).
"""

from __future__ import annotations

import copy
import os
import random
from collections.abc import Collection, Iterator, KeysView, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from nasbench import domain, errors, keytable
from nasbench.backends.base import Backend
from nasbench.datasets import open_backend
from nasbench.engine import Cell, hashed_repeat, representative
from nasbench.lib import config
from nasbench.lib import model_spec as _model_spec
from nasbench.optima import DatasetOptimum
from nasbench.store.layout import METRIC_FIELDS

__all__ = [
    "CONV1X1",
    "CONV3X3",
    "INPUT",
    "MAXPOOL3X3",
    "OUTPUT",
    "ModelSpec",
    "NASBench",
    "OutOfDomainError",
]

ModelSpec = _model_spec.ModelSpec
OutOfDomainError = errors.OutOfDomainError
for _exported in (ModelSpec, OutOfDomainError):
    _exported.__module__ = __name__

INPUT = config.INPUT
OUTPUT = config.OUTPUT
CONV1X1 = config.CONV1X1
CONV3X3 = config.CONV3X3
MAXPOOL3X3 = config.MAXPOOL3X3


def __getattr__(name: str) -> Any:
    """``api.model_metrics_pb2`` as in the original, imported on first use: protobuf stays out of local-only
    processes (importing it costs more than the rest of the package)."""
    if name == "model_metrics_pb2":
        from nasbench.lib import model_metrics_pb2

        globals()[name] = model_metrics_pb2
        return model_metrics_pb2
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_POLICIES = ("random", "mean", "all", "hashed")
_HALFWAY = slice(0, 4)
_FINAL = slice(4, 8)
_DEFAULT = object()  # "the policy given to the constructor"
_Value = TypeVar("_Value")


def _check_policy(repeat: Any) -> Any:
    if repeat is None or repeat in _POLICIES:
        return None if repeat == "random" else repeat
    if isinstance(repeat, (int, np.integer)) and not isinstance(repeat, bool) and 0 <= repeat < config.NUM_REPEATS:
        return int(repeat)
    raise ValueError(
        f"repeat must be None or 'random' (the original random draw), an index 0-{config.NUM_REPEATS - 1}, "
        f"'mean', 'all' or 'hashed'; got {repeat!r}"
    )


class _Surface:
    """What the synchronous and the asyncio API share: configuration, the budget, the random draw, the checks,
    and turning cells into the original answers. Subclasses provide the cells."""

    config: dict[str, Any]
    valid_epochs: set[int]
    history: dict[str, Any]
    training_time_spent: float
    total_epochs_spent: int

    def _setup(self, seed: int | None, repeat: Any) -> None:
        """The original's first steps (config, then the global seed), plus the extensions' state."""
        self.config = config.build_config()
        random.seed(seed)
        keytable.table()  # every spec is named through the key table: map it now (computed once per machine)
        self._repeat = _check_policy(repeat)
        self._seed = 0 if seed is None else seed
        self._sample_from: int | None = seed  # seeds the sampling generator, made on first use (importing
        self._sample_rng: np.random.Generator | None = None  # numpy.random costs more than opening a store)

    def _set_epochs(self, epochs: Sequence[int]) -> None:
        self._epochs = tuple(epochs)
        self._epoch_index = {budget: index for index, budget in enumerate(self._epochs)}
        self.valid_epochs = domain.epoch_set(self._epochs)
        self.history = {}
        self.training_time_spent = 0.0
        self.total_epochs_spent = 0

    def is_valid(self, model_spec: ModelSpec) -> bool:
        """True iff the spec passes the checks of the search domain (presence in the data is not checked)."""
        try:
            self._check_spec(model_spec)
        except OutOfDomainError:
            return False
        return True

    def get_budget_counters(self) -> tuple[float, int]:
        """``(training_time_spent, total_epochs_spent)``."""
        return self.training_time_spent, self.total_epochs_spent

    def reset_budget_counters(self) -> None:
        self.training_time_spent = 0.0
        self.total_epochs_spent = 0

    def evaluate(self, model_spec: ModelSpec, model_dir: str) -> dict[str, Any]:
        """Training a cell from scratch needs the original TensorFlow code; it is not part of this package."""
        raise NotImplementedError(
            "NASBench.evaluate trains the model with TensorFlow 1.x; use the original google-research/nasbench "
            "code for training. Query the dataset with query() instead."
        )

    def _check_spec(self, model_spec: ModelSpec) -> None:
        domain.check_spec(model_spec, self.config)

    def _hash_spec(self, model_spec: ModelSpec) -> str:
        return model_spec.hash_spec(self.config["available_ops"])

    def _check_epochs(self, epochs: Any) -> None:
        try:
            valid = epochs in self.valid_epochs
        except TypeError:  # unhashable: the original failed with "unhashable type"
            valid = False
        if not valid:
            raise domain.invalid_epochs(self.valid_epochs)

    def _answer(self, cell: Cell, epochs: int, stop_halfway: bool, policy: Any) -> dict[str, Any]:
        part = _HALFWAY if stop_halfway else _FINAL
        if policy is None:  # the original: one draw from the global random module per successful query
            index = random.randint(0, self.config["num_repeats"] - 1)
            values = cell.metrics[self._epoch_index[epochs], index, part].tolist()
            charged = values[0]
        else:
            runs = cell.metrics[self._epoch_index[epochs]]  # float64[3, 8]
            if policy.__class__ is int:
                values = runs[policy, part].tolist()
            elif policy == "hashed":
                values = runs[hashed_repeat(cell.key, epochs, self._seed), part].tolist()
            elif policy == "mean":
                values = runs[:, part].mean(axis=0).tolist()
            else:  # "all": lists of the three repeats, charged as one run at the mean time
                values = runs[:, part].T.tolist()
            charged = values[0] if policy != "all" else sum(values[0]) / len(values[0])
        matrix, ops = representative(cell.representative)
        self.training_time_spent += charged
        self.total_epochs_spent += epochs // 2 if stop_halfway else epochs
        return {
            "module_adjacency": matrix.copy(),
            "module_operations": list(ops),
            "trainable_parameters": cell.parameters,
            "training_time": values[0],
            "train_accuracy": values[1],
            "validation_accuracy": values[2],
            "test_accuracy": values[3],
        }

    def _fixed(self, cell: Cell) -> dict[str, Any]:
        matrix, ops = representative(cell.representative)
        return {
            "module_adjacency": matrix.copy(),
            "module_operations": list(ops),
            "trainable_parameters": cell.parameters,
        }

    def _computed(self, cell: Cell) -> dict[int, list[dict[str, float]]]:
        runs = cell.metrics.tolist()
        return {
            epochs: [dict(zip(METRIC_FIELDS, run, strict=True)) for run in runs[index]]
            for index, epochs in enumerate(self._epochs)
        }

    def _spec_of(self, cell: Cell) -> ModelSpec:
        matrix, ops = representative(cell.representative)
        return ModelSpec(matrix.copy(), list(ops))

    def _sample_seed(self, seed: int | None, filters: dict[str, Any]) -> int:
        """Check the sample filters; the seed to draw with (from the object's own generator if None)."""
        for name, value in filters.items():
            if value is not None and not isinstance(value, (int, np.integer)) and len(value) == 0:
                raise errors.InvalidSpecError(f"{name} is empty: pass None to allow any")
        return int(self._sampling_rng().integers(2**63)) if seed is None else seed

    def _sampling_rng(self) -> np.random.Generator:
        if self._sample_rng is None:
            self._sample_rng = np.random.default_rng(self._sample_from)
        return self._sample_rng


class NASBench(_Surface):
    """User-facing API for accessing the NAS-Bench-101 dataset.

    Args:
      dataset_file: a store built by ``nasbench build`` (opened in-process, in milliseconds); an original
        ``.tfrecord`` file (built into a store next to it, or in the cache folder, the first time); a server
        address: ``grpc://host:port``, ``host:port``, several of those comma-separated, or ``unix:/path``; or
        ``"only108"`` / ``"full"``: the official file, downloaded (resumable, SHA-256 verified) and built into a
        store in the cache folder the first time (needs the builder extra), opened directly afterwards. A path
        that exists on disk wins over these names.
      seed: seeds Python's global ``random`` (None reseeds it from the OS), exactly as the original does.
      repeat: the default repeat policy of ``query``: None (the original random draw), an index 0-2 (always
        that repeat), ``'mean'`` (the mean over the three repeats), ``'all'`` (lists of the three values), or
        ``'hashed'`` (a repeat chosen from the cell, the budget and ``seed``: the same whatever the query
        order, and without touching ``random``). ``'mean'`` and ``'all'`` charge the budget one run, at the
        mean training time.
      cache_dir: where stores built from .tfrecord files go when their folder is not writable; for ``"only108"``
        and ``"full"``, the cache folder holding ``datasets/`` and ``stores/`` (default: $NASBENCH_CACHE_DIR or
        ~/.cache/nasbench).
      token: for a server started with a token: sent as ``authorization: Bearer <token>``.
      tls_ca: for a TLS server with a private CA: the CA certificate (PEM path or bytes); ``grpcs://`` addresses
        use TLS with the system's roots otherwise.
      timeout: seconds per remote call (default 30); calls wait for a restarted server within it.

    Raises:
      StoreError: the store is missing, damaged or of an unknown schema.
      ServiceUnavailableError: no server answers at the address.
      DownloadError: a named dataset could not be downloaded or verified.
    """

    def __init__(
        self,
        dataset_file: str | os.PathLike[str],
        seed: int | None = None,
        *,
        repeat: Any = None,
        cache_dir: str | os.PathLike[str] | None = None,
        token: str | None = None,
        tls_ca: str | os.PathLike[str] | bytes | None = None,
        timeout: float | None = None,
    ) -> None:
        self._setup(seed, repeat)
        remote = {"token": token, "tls_ca": tls_ca, "timeout": timeout}
        self._backend: Backend = open_backend(dataset_file, cache_dir, remote)
        self._set_epochs(self._backend.epochs)
        self.fixed_statistics: Mapping[str, dict[str, Any]] = FixedStatistics(self)
        self.computed_statistics: Mapping[str, dict[int, list[dict[str, float]]]] = ComputedStatistics(self)

    # --- the original surface -------------------------------------------------------------------------------

    def query(
        self, model_spec: ModelSpec, epochs: int = 108, stop_halfway: bool = False, *, repeat: Any = _DEFAULT
    ) -> dict[str, Any]:
        """Fetch one training run of the cell (one of its three repeats) and charge it to the budget.

        Args:
          model_spec: the cell.
          epochs: a budget in ``valid_epochs``.
          stop_halfway: the metrics at half the budget, of the same run (charged half the epochs).
          repeat: overrides the constructor's repeat policy for this call (keyword only).

        Returns:
          ``{'module_adjacency', 'module_operations', 'trainable_parameters', 'training_time',
          'train_accuracy', 'validation_accuracy', 'test_accuracy'}``, adjacency and ops as the dataset stores
          them.

        Raises:
          OutOfDomainError: invalid epochs or a spec outside the space (original messages).
          KeyError: a valid spec whose cell is not in the data (e.g. a float matrix, issue #32).
        """
        self._check_epochs(epochs)
        key = domain.check_spec(model_spec, self.config)
        cell = None if key is None else self._backend.cell_by_key(key)
        if cell is None:
            cell = self._cell_of_unkeyed_spec(model_spec, key)
        return self._answer(cell, epochs, stop_halfway, self._repeat if repeat is _DEFAULT else _check_policy(repeat))

    def hash_iterator(self) -> KeysView[str]:
        """Every hash of the dataset, in the order of first appearance in the source file."""
        return self.fixed_statistics.keys()

    def get_metrics_from_hash(self, module_hash: str) -> tuple[dict[str, Any], dict[int, list[dict[str, float]]]]:
        """``(fixed_stat, computed_stat)`` of a hash: fresh copies; unknown hash → KeyError(module_hash)."""
        cell = self._cell_of_hash(module_hash)
        return self._fixed(cell), self._computed(cell)

    def get_metrics_from_spec(self, model_spec: ModelSpec) -> tuple[dict[str, Any], dict[int, list[dict[str, float]]]]:
        """``get_metrics_from_hash`` of the spec's cell, after the checks of ``query``."""
        cell = self._cell_of_spec(model_spec)
        return self._fixed(cell), self._computed(cell)

    # --- extensions ------------------------------------------------------------------------------------------

    def query_batch(
        self, model_specs: Sequence[ModelSpec], epochs: int = 108, stop_halfway: bool = False, *, repeat: Any = _DEFAULT
    ) -> list[dict[str, Any]]:
        """``[query(spec) for spec in model_specs]``, but all or nothing.

        Every spec is checked and looked up first; if one fails, its error is raised and neither the budget
        nor the random stream has moved. Otherwise repeats are drawn in order, exactly as that many ``query``
        calls would draw them.

        Example::

            results = nasbench.query_batch([spec_a, spec_b], epochs=36)
        """
        self._check_epochs(epochs)
        policy = self._repeat if repeat is _DEFAULT else _check_policy(repeat)
        keys = [domain.check_spec(spec, self.config) for spec in model_specs]
        found = iter(self._backend.cells_by_keys([key for key in keys if key is not None]))  # one round trip
        cells = []
        for spec, key in zip(model_specs, keys, strict=True):
            cell = None if key is None else next(found)
            cells.append(cell if cell is not None else self._cell_of_unkeyed_spec(spec, key))
        return [self._answer(cell, epochs, stop_halfway, policy) for cell in cells]

    def sample(
        self,
        k: int = 1,
        *,
        seed: int | None = None,
        num_vertices: Collection[int] | int | None = None,
        num_edges: Collection[int] | int | None = None,
        min_parameters: int | None = None,
        max_parameters: int | None = None,
        ops: Collection[str] | None = None,
    ) -> list[ModelSpec]:
        """``k`` distinct cells drawn uniformly from the data, as ModelSpecs of their stored representatives.

        Uses its own generator (seeded by the constructor's seed, or by ``seed``), never Python's global
        ``random``, so sampling does not disturb the repeats ``query`` draws. Nothing is charged.

        Example::

            specs = nasbench.sample(100, num_vertices=7, ops={api.CONV3X3, api.MAXPOOL3X3})
        """
        draw_seed = self._sample_seed(seed, {"num_vertices": num_vertices, "num_edges": num_edges, "ops": ops})
        cells = self._backend.sample(
            k,
            draw_seed,
            num_vertices=_as_collection(num_vertices),
            num_edges=_as_collection(num_edges),
            min_parameters=min_parameters,
            max_parameters=max_parameters,
            ops=ops,
        )
        return [self._spec_of(cell) for cell in cells]

    def neighbors(self, model_spec: ModelSpec) -> list[ModelSpec]:
        """The cells in the data one edit away (one edge flipped or one op changed, pruned, de-duplicated).

        Example::

            for neighbor in nasbench.neighbors(spec):
                nasbench.query(neighbor)
        """
        key = domain.check_spec(model_spec, self.config)
        if key is None:  # a cell only a hash can name is in no store: it has no neighbours there either
            raise errors.UnknownCellError(self._hash_spec(model_spec))
        return [self._spec_of(cell) for cell in self._backend.neighbors(key)]

    def optima(self) -> dict[int, DatasetOptimum]:
        """Per budget, the best mean (over the three repeats) validation and test accuracy of the data.

        What every regret is measured against (the paper's benchmark: incumbent's mean test error at 108 epochs
        minus the best mean test error of the space), taken from the data itself: a local store computes it in
        one vectorized pass, a server answers it (the client never scans the dataset). Nothing is charged.

        Example::

            best = nasbench.optima()[108]
            best.test_accuracy, best.test_hash      # also validation_accuracy, validation_hash

        Returns:
          ``{epochs: DatasetOptimum(epochs, validation_accuracy, validation_hash, test_accuracy, test_hash)}``.
        """
        return dict(self._backend.optima())

    def close(self) -> None:
        """Release the store or the connection (also done at exit)."""
        self._backend.close()

    # --- internals -------------------------------------------------------------------------------------------

    def _cell_of_spec(self, model_spec: ModelSpec) -> Cell:
        key = domain.check_spec(model_spec, self.config)
        cell = None if key is None else self._backend.cell_by_key(key)
        return cell if cell is not None else self._cell_of_unkeyed_spec(model_spec, key)

    def _cell_of_unkeyed_spec(self, model_spec: ModelSpec, key: int | None) -> Cell:
        """The cell of a spec that passed the checks but was not found by key: by hash, else KeyError(hash)."""
        module_hash = self._hash_spec(model_spec)
        cell = None if key is not None else self._backend.cell_by_hash(bytes.fromhex(module_hash))
        if cell is None:
            raise errors.UnknownCellError(module_hash)
        return cell

    def _cell_of_hash(self, module_hash: Any) -> Cell:
        digest = _digest(module_hash)
        cell = None if digest is None else self._backend.cell_by_hash(digest)
        if cell is None:
            raise errors.UnknownCellError(module_hash)
        return cell

    def __repr__(self) -> str:
        return f"NASBench({len(self._backend)} cells, valid_epochs={self.valid_epochs})"

    def __deepcopy__(self, memo: dict[int, Any]) -> NASBench:
        self._sampling_rng()  # shared by the copies, as it always was
        clone = copy.copy(self)  # the data is immutable and shared; counters and history are per object
        memo[id(self)] = clone
        clone.history = copy.deepcopy(self.history, memo)
        return clone


class _HashView(Mapping[str, _Value]):
    """A read-only view keyed by the dataset's hashes; subclasses say what a hash maps to."""

    def __init__(self, nasbench: NASBench) -> None:
        self._nasbench = nasbench

    def __iter__(self) -> Iterator[str]:
        return self._nasbench._backend.hash_strings()

    def __len__(self) -> int:
        return len(self._nasbench._backend)

    def __contains__(self, module_hash: object) -> bool:
        digest = _digest(module_hash)
        return digest is not None and self._nasbench._backend.cell_by_hash(digest) is not None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {len(self)} cells>"


class FixedStatistics(_HashView[dict[str, Any]]):
    """Read-only view ``hash -> {'module_adjacency', 'module_operations', 'trainable_parameters'}``; every
    access returns fresh objects, so mutating them never touches the data."""

    def __getitem__(self, module_hash: str) -> dict[str, Any]:
        return self._nasbench._fixed(self._nasbench._cell_of_hash(module_hash))


class ComputedStatistics(_HashView[dict[int, list[dict[str, float]]]]):
    """Read-only view ``hash -> {epochs: [3 x {8 metric names: float}]}`` (fresh objects on every access)."""

    def __getitem__(self, module_hash: str) -> dict[int, list[dict[str, float]]]:
        return self._nasbench._computed(self._nasbench._cell_of_hash(module_hash))


def _digest(module_hash: Any) -> bytes | None:
    """The 16 bytes of a 32-character lowercase hex hash; None for anything else (which no dict key matches)."""
    if type(module_hash) is not str or len(module_hash) != 32 or module_hash != module_hash.lower():
        return None
    try:
        return bytes.fromhex(module_hash)
    except ValueError:
        return None


def _as_collection(value: Collection[int] | int | None) -> Collection[int] | None:
    return (value,) if isinstance(value, (int, np.integer)) else value
