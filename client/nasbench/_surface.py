"""What ``api.NASBench`` and ``aio.AsyncNASBench`` share: configuration, the budget, the random draw, the checks,
and turning cells into the original answers. The two facades only add the calls to their backend (blocking or
awaited), so an answer is built by this code whichever of them asked.

What stays exactly as in the original (google-research/nasbench, ``nasbench/api.py``): the constructor seeds
Python's global ``random`` and each successful ``query`` draws one ``random.randint(0, 2)`` to pick the repeat;
``query`` returns the dataset's stored adjacency and ops, the same keys in the same order, int8 adjacency, Python
floats bit-identical to the data; failed queries change neither the budget nor the random stream.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np

from nasbench import _plugins, errors
from nasbench._architecture import NetworkStats, network_stats
from nasbench._cells import domain, keytable
from nasbench._engine.answers import Repeat, point, select
from nasbench._engine.engine import Cell, representative
from nasbench._engine.filters import SampleFilter
from nasbench._store.layout import METRIC_FIELDS
from nasbench.lib import config
from nasbench.lib.model_spec import ModelSpec

DEFAULT = object()  # "the policy given to the constructor"
_FINAL = point(False)
_HALFWAY = point(True)


def check_policy(repeat: Any, seed: int) -> Repeat | None:
    """The repeat policy of the API's ``repeat=`` argument: None for the original random draw (None or
    'random'); an index 0-2, 'mean', 'all', or 'hashed' (by ``seed``) as the engine's ``Repeat``."""
    if repeat is None or repeat == "random":
        return None
    if isinstance(repeat, (int, np.integer)) and not isinstance(repeat, bool) and 0 <= repeat < config.NUM_REPEATS:
        return Repeat.at(int(repeat))
    if repeat == "mean":
        return Repeat.mean()
    if repeat == "all":
        return Repeat.all()
    if repeat == "hashed":
        return Repeat.hashed(seed)
    raise ValueError(
        f"repeat must be None or 'random' (the original random draw), an index 0-{config.NUM_REPEATS - 1}, "
        f"'mean', 'all' or 'hashed'; got {repeat!r}"
    )


class Surface:
    """The state and the pure steps of the API (see the module docstring); subclasses fetch the cells."""

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
        self._seed = 0 if seed is None else seed
        self._repeat = check_policy(repeat, self._seed)
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
        except errors.OutOfDomainError:
            return False
        return True

    def get_budget_counters(self) -> tuple[float, int]:
        """``(training_time_spent, total_epochs_spent)``."""
        return self.training_time_spent, self.total_epochs_spent

    def reset_budget_counters(self) -> None:
        self.training_time_spent = 0.0
        self.total_epochs_spent = 0

    def evaluate(self, model_spec: ModelSpec, model_dir: str) -> dict[str, Any]:
        """Train the cell from scratch with the protocol of the dataset (``self.config``) and return the result as
        ``query()`` would; writes ``model_dir/metadata.json``. Needs the 'train' extra (PyTorch) and CIFAR-10
        (``nasbench download cifar10``, or $NASBENCH_CIFAR10); see docs/network.md."""
        train = _plugins.load("evaluate", "train", "NASBench.evaluate trains the cell's network")
        result: dict[str, Any] = train(model_spec, model_dir, self.config)
        return result

    def network_stats(self, model_spec: ModelSpec) -> NetworkStats:
        """Trainable parameters, multiply-accumulates and FLOPs of the cell's network for one 32x32x3 image,
        computed (no torch, no dataset access); raises ``InvalidSpecError`` for an invalid spec."""
        return network_stats(model_spec)

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

    def _policy(self, repeat: Any) -> Repeat | None:
        return self._repeat if repeat is DEFAULT else check_policy(repeat, self._seed)

    def _answer(self, cell: Cell, epochs: int, stop_halfway: bool, policy: Repeat | None) -> dict[str, Any]:
        """The original answer of one run of ``cell`` (charged to the budget); the policy picks the run."""
        part = _HALFWAY if stop_halfway else _FINAL
        if policy is None:  # the original: one draw from the global random module per successful query
            index = random.randint(0, self.config["num_repeats"] - 1)
            values = cell.metrics[self._epoch_index[epochs], index, part].tolist()
            charged = values[0]
        elif policy.mode == "all":  # lists of the three repeats, charged as one run at the mean time
            values = cell.metrics[self._epoch_index[epochs], :, part].T.tolist()
            charged = sum(values[0]) / len(values[0])
        else:
            runs = select(cell.metrics[self._epoch_index[epochs]], policy, cell.key, epochs)
            values = runs[0, part].tolist()
            charged = values[0]
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

    def _sample_filter(
        self,
        seed: int | None,
        num_vertices: Collection[int] | int | None,
        num_edges: Collection[int] | int | None,
        min_parameters: int | None,
        max_parameters: int | None,
        ops: Collection[str] | None,
    ) -> tuple[int, SampleFilter]:
        """The checked filter of the sample keywords, and the seed to draw with (from the object's own generator
        if None: drawn only once the filter is known to be valid)."""
        where = SampleFilter.of(
            num_vertices=num_vertices,
            num_edges=num_edges,
            min_parameters=min_parameters,
            max_parameters=max_parameters,
            ops=ops,
        )
        return (int(self._sampling_rng().integers(2**63)) if seed is None else seed), where

    def _sampling_rng(self) -> np.random.Generator:
        if self._sample_rng is None:
            self._sample_rng = np.random.default_rng(self._sample_from)
        return self._sample_rng

    def _neighbors_key(self, model_spec: ModelSpec) -> int:
        """The key whose neighbours ``neighbors`` returns (a cell only a hash can name is in no store, so it has
        no neighbours there either: UnknownCellError)."""
        key = domain.check_spec(model_spec, self.config)
        if key is None:
            raise errors.UnknownCellError(self._hash_spec(model_spec))
        return key


def digest(module_hash: Any) -> bytes | None:
    """The 16 bytes of a 32-character lowercase hex hash; None for anything else (which no dict key matches)."""
    if type(module_hash) is not str or len(module_hash) != 32 or module_hash != module_hash.lower():
        return None
    try:
        return bytes.fromhex(module_hash)
    except ValueError:
        return None
