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

What stays exactly as in the original (google-research/nasbench, ``nasbench/api.py``): the constructor seeds
Python's global ``random`` and each
successful ``query`` draws one ``random.randint(0, 2)`` to pick the repeat, so a seeded script gets the repeats
the original gets; ``query`` returns the dataset's stored adjacency and ops (not the caller's matrix), the same
keys in the same order, int8 adjacency, Python floats bit-identical to the data; failed queries change neither
the budget nor the random stream; unknown hashes raise ``KeyError``; ``hash_iterator`` follows the file order.

Deliberate differences (each where the original fails by accident; see docs/compatibility.md):
more than 7 vertices raises an error that is both ``OutOfDomainError`` and ``TypeError`` (the original raised
a bare ``TypeError`` from a formatting bug) and ``is_valid`` returns False; ``evaluate`` trains in PyTorch
(extra 'train', docs/network.md); loading prints nothing (it takes milliseconds).

Extensions, all opt-in: ``query_batch``, ``sample``, ``neighbors``, ``optima``, ``columns`` (the whole dataset in
bulk), ``network_stats`` (parameters and FLOPs of the cell's network), and a ``repeat`` policy (below).
``aio.AsyncNASBench`` is the same API for asyncio.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Collection, Iterator, KeysView, Mapping, Sequence
from typing import Any, TypeVar

from nasbench import errors
from nasbench._backends.base import DEFAULT_REPLICATE_AFTER, Backend
from nasbench._backends.opening import open_backend
from nasbench._cells import domain
from nasbench._engine.engine import Cell, DatasetColumns
from nasbench._engine.optima import DatasetOptimum
from nasbench._surface import DEFAULT, Surface, digest
from nasbench.lib import config
from nasbench.lib import model_spec as _model_spec

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


_Value = TypeVar("_Value")


class NASBench(Surface):
    """User-facing API for accessing the NAS-Bench-101 dataset.

    Args:
      dataset_file: a store built by ``nasbench build`` (opened in-process, in milliseconds); an original
        ``.tfrecord`` file (built into a store next to it, or in the cache folder, the first time); a server
        address: ``grpc://host:port``, ``host:port``, several of those comma-separated, or ``unix:/path``; or
        ``"only108"`` / ``"full"``: the official file, downloaded (resumable, SHA-256 verified) and built into a
        store in the cache folder the first time (needs the builder extra), opened directly afterwards; or
        ``"synthetic"``: the embedded synthetic dataset, built once likewise. A path that exists on disk wins over
        these names. The same text means the same thing to every entry point (``nasbench --store``/``--target``).
      seed: seeds Python's global ``random`` (None reseeds it from the OS), exactly as the original does.
      repeat: the default repeat policy of ``query``: None (the original random draw), an index 0-2 (always
        that repeat), ``'mean'`` (the mean over the three repeats), ``'all'`` (lists of the three values), or
        ``'hashed'`` (a repeat chosen from the cell, the budget and ``seed``: the same whatever the query
        order, and without touching ``random``). ``'mean'`` and ``'all'`` charge the budget one run, at the
        mean training time.
      cache_dir: the cache folder (default: $NASBENCH_CACHE_DIR or ~/.cache/nasbench): downloads go to its
        ``datasets/``, prepared stores to its ``stores/`` (a ``.tfrecord``'s store goes there only when the file's
        own folder is not writable).
      token: for a server started with a token: sent as ``authorization: Bearer <token>``.
      tls_ca: for a TLS server with a private CA: the CA certificate (PEM path or bytes); ``grpcs://`` addresses
        use TLS with the system's roots otherwise.
      timeout: seconds per remote call (default 30); calls wait for a restarted server within it.
      replicate_after: for a server: after this many cells fetched one at a time (cache misses), fetch the whole
        dataset once in bulk and answer from that copy, as fast as a local store (up to 1 GiB of memory: 325 MB
        for every budget of the space); None never does. Long studies pay a few seconds once instead of a round
        trip per new cell.

    Raises:
      StoreError: the store is missing, damaged or of an unknown schema (or must be built, and the builder extra
        is not installed).
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
        replicate_after: int | None = DEFAULT_REPLICATE_AFTER,
    ) -> None:
        self._setup(seed, repeat)
        remote = {"token": token, "tls_ca": tls_ca, "timeout": timeout, "replicate_after": replicate_after}
        self._backend: Backend = open_backend(dataset_file, cache_dir, **remote)
        self._set_epochs(self._backend.epochs)
        self.fixed_statistics: Mapping[str, dict[str, Any]] = FixedStatistics(self)
        self.computed_statistics: Mapping[str, dict[int, list[dict[str, float]]]] = ComputedStatistics(self)

    # --- the original surface -------------------------------------------------------------------------------

    def query(
        self, model_spec: ModelSpec, epochs: int = 108, stop_halfway: bool = False, *, repeat: Any = DEFAULT
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
          KeyError: a valid spec whose cell is not in the data (e.g. a float matrix, google-research/nasbench#32).
        """
        self._check_epochs(epochs)
        key = domain.check_spec(model_spec, self.config)
        cell = None if key is None else self._backend.cell_by_key(key)
        if cell is None:
            cell = self._cell_of_unkeyed_spec(model_spec, key)
        return self._answer(cell, epochs, stop_halfway, self._repeat if repeat is DEFAULT else self._policy(repeat))

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
        self, model_specs: Sequence[ModelSpec], epochs: int = 108, stop_halfway: bool = False, *, repeat: Any = DEFAULT
    ) -> list[dict[str, Any]]:
        """``[query(spec) for spec in model_specs]``, but all or nothing.

        Every spec is checked and looked up first; if one fails, its error is raised and neither the budget
        nor the random stream has moved. Otherwise repeats are drawn in order, exactly as that many ``query``
        calls would draw them.

        Example::

            results = nasbench.query_batch([spec_a, spec_b], epochs=36)
        """
        self._check_epochs(epochs)
        policy = self._policy(repeat)
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
        draw_seed, where = self._sample_filter(seed, num_vertices, num_edges, min_parameters, max_parameters, ops)
        cells = self._backend.sample(k, draw_seed, where)
        return [self._spec_of(cell) for cell in cells]

    def neighbors(self, model_spec: ModelSpec) -> list[ModelSpec]:
        """The cells in the data one edit away (one edge flipped or one op changed, pruned, de-duplicated).

        Example::

            for neighbor in nasbench.neighbors(spec):
                nasbench.query(neighbor)
        """
        return [self._spec_of(cell) for cell in self._backend.neighbors(self._neighbors_key(model_spec))]

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

    def columns(self) -> DatasetColumns:
        """The whole dataset as columns, rows in ascending canonical key: keys, hashes, stored representatives,
        trainable parameters and every metric (float64[cells, budgets, 3, 8]), with the store's source.

        The bulk path of analyses: a local store gathers it in one pass; a server answers it with batched calls,
        in the same order, so both give identical columns. Nothing is charged.

        Example::

            data = nasbench.columns()
            data.metrics[:, data.epochs.index(108), :, 6].mean(axis=1)   # mean final validation accuracy
        """
        return self._backend.columns()

    @property
    def dataset_identity(self) -> str:
        """The dataset this object answers from: its store's checksum (a remote client is pinned to it)."""
        return self._backend.identity

    @property
    def dataset_source(self) -> dict[str, Any]:
        """Where the dataset came from, as its store records it: the source file's ``name``, ``sha256`` and
        ``records``, ``synthetic`` for generated data (then not NAS-Bench-101's results). A copy."""
        return dict(self._backend.source)

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
        found = digest(module_hash)
        cell = None if found is None else self._backend.cell_by_hash(found)
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
        found = digest(module_hash)
        return found is not None and self._nasbench._backend.cell_by_hash(found) is not None

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
