"""One optimization run's view of the benchmark: evaluate a point at a budget, charge simulated time, record it.

Usage::

    from nasbench import api
    from nasbench_experiments.search.problem import Problem, optimize
    from nasbench_experiments.search.registry import make_optimizer

    nasbench = api.NASBench("store.lmdb")                      # or "grpc://host:port"
    problem = Problem(nasbench, encoding="A", seed=0, budget_s=1e6)
    optimize(make_optimizer("re", problem), problem)            # ask/tell until the simulated budget is spent
    problem.columns()                                           # every evaluation, as columns

The objective is the paper's benchmark (automl/nas_benchmarks, tabular_benchmarks/nas_cifar10.py): the validation error
of one training run at the queried budget, at the cost of that run's training time; a configuration the
benchmark calls invalid scores error 1 at cost 0. The repeat (one of the three training runs) is drawn as the
original draws it (a uniform ``randint(0, 2)`` per evaluation), but from this run's own ``random.Random``,
seeded from the run's seed, never from the global ``random``: runs sharing a process never leak randomness into
each other, whatever the executor or backend. Optimizers get their own generator (``problem.rng``), a separate
stream of the same seed (``numpy.random.SeedSequence(seed).spawn(2)``).

Only the public API is used (``query`` with the opt-in ``repeat='all'`` policy, ``sample``, ``neighbors``).
"""

from __future__ import annotations

import functools
import random
import weakref
from collections.abc import Hashable
from typing import Any, NamedTuple, Protocol

import numpy as np

from nasbench import api
from nasbench.errors import ConfigurationError, UnknownCellError
from nasbench_experiments.search.encodings import ENCODINGS, CellEncoding, Encoding
from nasbench_experiments.search.subspaces import Dataset

FINAL_EPOCHS = 108
NUM_REPEATS = 3
MULTI_FIDELITY_BUDGETS = (4, 12, 36, 108)
_MEMO_LIMIT = 1 << 16


class Evaluation(NamedTuple):
    """What an optimizer learns from one evaluation."""

    validation_error: float  # 1 - validation accuracy of the drawn run, at the queried budget (1 when invalid)
    cost: float  # its training time in seconds (0 when invalid)
    valid: bool


class Optimizer(Protocol):
    """Sequential ask/tell: ``ask`` proposes a point and a budget (epochs), ``tell`` reports its evaluation."""

    def ask(self) -> tuple[Any, int]: ...

    def tell(self, point: Any, epochs: int, evaluation: Evaluation) -> None: ...


class Draw(NamedTuple):
    """One drawn evaluation, before it is recorded (see ``Problem.draw``)."""

    epochs: int
    valid: bool
    accuracy: float  # validation accuracy of the drawn run at the queried budget (0 when invalid)
    cost: float  # its training time in seconds (0 when invalid)
    test_108: float  # the cell's mean test accuracy at 108 epochs (NaN when invalid)
    validation_108: float
    cell: int  # cell_id, -1 when invalid


class _Answer(NamedTuple):
    """The three runs of a cell at one budget, plus what bookkeeping needs at 108 epochs (immutable data)."""

    times: tuple[float, ...]
    validation: tuple[float, ...]
    mean_test_108: float
    mean_validation_108: float
    cell: int  # a compact id of the stored cell (vertices, edges, ops)


class Problem:
    """One run: an encoding over a dataset, a seed, a simulated-time budget, and the record of evaluations.

    Args:
      nasbench: an ``api.NASBench`` (store or server), or its view restricted to a subspace
        (``subspaces.restrict``); shared by the runs of a process, never mutated here.
      encoding: ``A``, ``B``, ``C`` or ``cells`` (see ``encodings``).
      seed: the run's seed: repeats and the optimizer's generator derive from it.
      budget_s: stop once the summed training time reaches this many simulated seconds.
      max_evaluations: stop after this many evaluations anyway (invalid configurations cost nothing).
    """

    def __init__(
        self,
        nasbench: Dataset,
        encoding: str,
        seed: int,
        budget_s: float,
        max_evaluations: int | None = None,
    ) -> None:
        if encoding not in ENCODINGS:
            raise ConfigurationError(f"unknown encoding {encoding!r} (choose from {', '.join(ENCODINGS)})")
        if not budget_s > 0:
            raise ConfigurationError(f"the budget must be a positive number of simulated seconds, got {budget_s}")
        self.nasbench = nasbench
        self.encoding_name = encoding
        self.encoding: Encoding | CellEncoding = ENCODINGS[encoding]
        self.seed = seed
        self.budget_s = float(budget_s)
        self.max_evaluations = max_evaluations
        repeat_stream, optimizer_stream = np.random.SeedSequence(seed).spawn(2)
        self._repeats = random.Random(int(repeat_stream.generate_state(1, np.uint64)[0]))
        self.rng = np.random.default_rng(optimizer_stream)
        self.epochs = tuple(sorted(nasbench.valid_epochs))
        self.elapsed = 0.0
        self._answers = _memo_of(nasbench, "specs")  # (pruned matrix, ops, epochs) -> answer or None
        self._by_config = _memo_of(nasbench, encoding)  # (configuration values, epochs) -> answer or None
        self._spec_by_config: dict[tuple[Any, ...], api.ModelSpec | None] = {}  # a trial's budgets share its spec
        vector = self.encoding.vector if isinstance(self.encoding, CellEncoding) else self.encoding
        self._names = tuple(param.name for param in vector.params)
        # columns of the record, one entry per evaluation
        self._epochs: list[int] = []
        self._valid: list[bool] = []
        self._validation: list[float] = []
        self._cost: list[float] = []
        self._test_108: list[float] = []
        self._validation_108: list[float] = []
        self._cell: list[int] = []
        self._finished: list[float] | None = None  # wall-clock times of parallel runs (None: one worker)

    # --- what optimizers call --------------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """True once the simulated budget (or the evaluation cap) is spent."""
        return self.elapsed >= self.budget_s or (
            self.max_evaluations is not None and len(self._epochs) >= self.max_evaluations
        )

    @property
    def evaluations(self) -> int:
        return len(self._epochs)

    def spec_of(self, point: Any) -> api.ModelSpec | None:
        """The spec of a point: a ModelSpec itself (cells) or a configuration (None: invalid before querying)."""
        if isinstance(point, api.ModelSpec):
            return point
        return self.encoding.to_spec(point)

    def evaluate(self, point: Any, epochs: int = FINAL_EPOCHS) -> Evaluation:
        """Train ``point`` for ``epochs`` (simulated): one of its three runs, drawn from this run's generator.

        Raises:
          ConfigurationError: ``epochs`` is not a budget of the dataset.
        """
        return self.record(self.draw(point, epochs))

    def draw(self, point: Any, epochs: int = FINAL_EPOCHS) -> Draw:
        """What training ``point`` for ``epochs`` gives (the repeat drawn now), not yet recorded: a simulation of
        parallel workers draws when a run starts and records it when the run ends (``record``)."""
        if epochs not in self.epochs:
            raise ConfigurationError(f"epochs must be one of {list(self.epochs)}, got {epochs}")
        if isinstance(point, api.ModelSpec):
            answer = self._answer(point, epochs)
        else:  # a configuration: its answer is memoized by its values (the data and the encoding never change)
            values = tuple(map(point.__getitem__, self._names))
            key = (values, epochs)
            answer = self._by_config.get(key, _ABSENT)
            if answer is _ABSENT:
                spec = self._config_spec(point, values)
                answer = None if spec is None else self._answer(spec, epochs)
                if len(self._by_config) >= _MEMO_LIMIT:
                    self._by_config.clear()
                self._by_config[key] = answer
        if answer is None:
            return Draw(epochs, False, 0.0, 0.0, np.nan, np.nan, -1)
        index = self._repeats.randrange(NUM_REPEATS)
        return Draw(
            epochs,
            True,
            answer.validation[index],
            answer.times[index],
            answer.mean_test_108,
            answer.mean_validation_108,
            answer.cell,
        )

    def _config_spec(self, config: Any, values: tuple[Any, ...]) -> api.ModelSpec | None:
        """The spec of a configuration with these values, built once per run (a trial runs at several budgets)."""
        try:
            return self._spec_by_config[values]
        except KeyError:
            if len(self._spec_by_config) >= _MEMO_LIMIT:
                self._spec_by_config.clear()
            spec = self._spec_by_config[values] = self.spec_of(config)
            return spec

    def record(self, draw: Draw, finished_at: float | None = None) -> Evaluation:
        """Record a drawn evaluation as the next row; ``finished_at`` is its simulated wall-clock time when
        workers run in parallel (default: the summed cost so far, one worker)."""
        if finished_at is not None:
            if self._finished is None:
                if self._epochs:
                    raise ValueError("a run records its wall-clock times from its first evaluation on, or never")
                self._finished = []
            self._finished.append(finished_at)
        self._epochs.append(draw.epochs)
        self._valid.append(draw.valid)
        self._validation.append(draw.accuracy)
        self._cost.append(draw.cost)
        self._test_108.append(draw.test_108)
        self._validation_108.append(draw.validation_108)
        self._cell.append(draw.cell)
        self.elapsed += draw.cost
        return Evaluation(1.0 - draw.accuracy, draw.cost, draw.valid)

    # --- the record ------------------------------------------------------------------------------------------

    def columns(self) -> dict[str, np.ndarray]:
        """Every evaluation so far, in order (accuracies, so that regrets against the optimum are exact):

        epochs; valid; validation_accuracy (of the drawn run at the queried budget; 0 when invalid, i.e. error
        1); cost (its training time, s; 0 when invalid); time (the cumulative cost, s, or the
        simulated wall-clock time the evaluation ended when workers run in parallel); mean_test_accuracy and
        mean_validation_accuracy (the cell's means over the three runs at 108 epochs; NaN when invalid); cell
        (a compact id of the stored cell, ``cell_id``; -1 when invalid).
        """
        cost = np.array(self._cost, dtype=np.float64)
        time = np.cumsum(cost) if self._finished is None else np.array(self._finished, dtype=np.float64)
        return {
            "epochs": np.array(self._epochs, dtype=np.int16),
            "valid": np.array(self._valid, dtype=bool),
            "validation_accuracy": np.array(self._validation, dtype=np.float64),
            "cost": cost,
            "time": time,
            "mean_test_accuracy": np.array(self._test_108, dtype=np.float64),
            "mean_validation_accuracy": np.array(self._validation_108, dtype=np.float64),
            "cell": np.array(self._cell, dtype=np.int64),
        }

    def _answer(self, spec: api.ModelSpec, epochs: int) -> _Answer | None:
        """The immutable answer of the data for a spec at a budget (memoized per process), None if invalid."""
        # disconnected (no pruned matrix nor ops): the query would raise OutOfDomainError
        if not spec.valid_spec or spec.matrix is None or spec.ops is None:
            return None
        key = (spec.matrix.tobytes(), spec.matrix.shape[0], tuple(spec.ops), epochs)
        answer = self._answers.get(key)
        if answer is None:
            try:
                data = self.nasbench.query(spec, epochs, repeat="all")
            except api.OutOfDomainError:
                return None
            except UnknownCellError as exc:  # a subset store: the benchmark's data holds every cell of the space
                raise ConfigurationError(
                    f"the dataset has no cell {exc.args[0]}, a valid cell of the space: encoding "
                    f"{self.encoding_name} needs a store of every cell (use the encoding 'cells' on a subset store)"
                ) from None
            final = data if epochs == FINAL_EPOCHS else self.nasbench.query(spec, FINAL_EPOCHS, repeat="all")
            answer = _Answer(
                tuple(data["training_time"]),
                tuple(data["validation_accuracy"]),
                _mean(final["test_accuracy"]),
                _mean(final["validation_accuracy"]),
                cell_id(data["module_adjacency"], data["module_operations"]),
            )
            if len(self._answers) >= _MEMO_LIMIT:
                self._answers.clear()
            self._answers[key] = answer
        return answer


def require_budgets(problem: Problem, name: str) -> None:
    """Multi-fidelity optimizers need every budget of the full dataset."""
    missing = [epochs for epochs in MULTI_FIDELITY_BUDGETS if epochs not in problem.epochs]
    if missing:
        raise ConfigurationError(
            f"{name} is multi-fidelity and needs a dataset with the budgets {list(MULTI_FIDELITY_BUDGETS)} epochs; "
            f"this one has {list(problem.epochs)} (build the store from nasbench_full.tfrecord)"
        )


_ABSENT: Any = object()  # a memo's missing entry (None is a memoized invalid answer)
_MEMOS: weakref.WeakKeyDictionary[Dataset, dict[str, dict[Hashable, _Answer | None]]] = weakref.WeakKeyDictionary()


def _memo_of(nasbench: Dataset, name: str) -> dict[Hashable, _Answer | None]:
    """A memo of answers shared by every run of this process over this NASBench object (the data never changes,
    so sharing changes no result, only how often the API is asked)."""
    memos = _MEMOS.get(nasbench)
    if memos is None:
        memos = _MEMOS[nasbench] = {}
    return memos.setdefault(name, {})


def _mean(values: list[float]) -> float:
    """The mean over the three runs, summed in order, as numpy sums three values (the optima use numpy): the
    best cell's regret is exactly 0."""
    first, second, third = values
    return (first + second + third) / 3


_OP_CODE = {api.CONV3X3: 0, api.CONV1X1: 1, api.MAXPOOL3X3: 2}


def cell_id(matrix: np.ndarray, ops: list[str]) -> int:
    """A compact integer naming a stored cell: vertices (3 bits), the upper triangle row-major (21 bits), the
    interior ops (2 bits each). Two runs that query the same cell of the data record the same id."""
    size = len(ops)
    code = size
    for bit in matrix[_upper(size)].tolist():
        code = (code << 1) | bit
    for op in ops[1:-1]:
        code = (code << 2) | _OP_CODE[op]
    return code


@functools.lru_cache(maxsize=16)
def _upper(size: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(size, k=1)


def optimize(optimizer: Optimizer, problem: Problem) -> Problem:
    """Ask, evaluate, tell until the problem's budget is spent; returns the problem (with its record)."""
    ask, tell, evaluate = optimizer.ask, optimizer.tell, problem.evaluate
    while not problem.done:
        point, epochs = ask()
        tell(point, epochs, evaluate(point, epochs))
    return problem
