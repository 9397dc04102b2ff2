"""NAS-Bench-101 as a Syne Tune blackbox over any ``api.NASBench`` (a store, a server address), for Syne Tune's
simulator backend (``syne-tune`` 0.16; its blackbox repository imports ``huggingface_hub``, nothing is
downloaded)::

    from syne_tune.blackbox_repository import UserBlackboxBackend
    from nasbench_experiments.search.blackbox import NASBench101Blackbox

    backend = UserBlackboxBackend(NASBench101Blackbox("grpc://host:50051"), elapsed_time_attr="elapsed_time")

Pair it with a scheduler deciding on ``epochs`` with rung levels that are budgets of the data, e.g.
``ASHA(config_space(), metric="validation_error", time_attr="epochs", max_t=108, grace_period=4,
reduction_factor=3)``. The budgets are independent training runs (``search.synetune``): the ``elapsed_time`` of
a trial at a budget is the summed training time of the runs at every budget up to it, so Syne Tune's simulator
reports each budget's result when its own run ends, and a trial it resumes after a pause at 12 epochs is charged
the whole 36-epoch run (the simulator subtracts the elapsed time at the pause).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from syne_tune.blackbox_repository.blackbox import Blackbox
from syne_tune.config_space import choice

from nasbench import api
from nasbench_experiments.search.encodings import vector_encoding
from nasbench_experiments.search.problem import NUM_REPEATS
from nasbench_experiments.search.synetune import ELAPSED, METRIC, RESOURCE, config_space


class NASBench101Blackbox(Blackbox):  # type: ignore[misc]  # syne_tune ships no type information
    """NAS-Bench-101 for Syne Tune's simulator backend: encoding ``A`` (or B, C) over ``nasbench``.

    Objectives at each budget (``epochs``): ``validation_error`` and ``test_error`` of one training run (the
    repeat ``seed % 3``, or drawn from the blackbox's own generator when no seed is given), ``training_time``
    of that run alone and ``elapsed_time``, the training time of the runs at every budget up to this one (see
    the module docstring). Invalid configurations score error 1 at no cost.

    Args:
      nasbench: an ``api.NASBench`` or anything ``api.NASBench`` opens (a store path, ``grpc://host:port``).
      encoding: ``A``, ``B`` or ``C`` (the paper's benchmark encodings).
      seed: seeds the generator drawing repeats when Syne Tune passes no seed.
    """

    objectives = (METRIC, "test_error", "training_time", ELAPSED)

    def __init__(self, nasbench: api.NASBench | str, encoding: str = "A", seed: int = 0) -> None:
        self.nasbench = nasbench if isinstance(nasbench, api.NASBench) else api.NASBench(nasbench)
        self.encoding = vector_encoding(encoding)
        self.epochs = tuple(sorted(self.nasbench.valid_epochs))
        self._repeats = np.random.default_rng(seed)
        super().__init__(
            configuration_space=config_space(encoding),
            fidelity_space={RESOURCE: choice(list(self.epochs))},
            objectives_names=list(self.objectives),
        )

    @property
    def fidelity_values(self) -> np.ndarray:
        return np.array(self.epochs)

    def _objective_function(
        self, configuration: dict[str, Any], fidelity: dict[str, Any] | None = None, seed: int | None = None
    ) -> dict[str, float] | np.ndarray:
        repeat = int(self._repeats.integers(NUM_REPEATS)) if seed is None else seed % NUM_REPEATS
        rows = self._rows(configuration, repeat)
        if fidelity is None:
            return rows
        return dict(zip(self.objectives, rows[self.epochs.index(int(fidelity[RESOURCE]))].tolist(), strict=True))

    def _rows(self, configuration: dict[str, Any], repeat: int) -> np.ndarray:
        """float64[budgets, objectives]: the objectives at every budget, in budget order."""
        rows = np.zeros((len(self.epochs), len(self.objectives)))
        rows[:, 0] = rows[:, 1] = 1.0
        spec = self.encoding.to_spec(configuration)
        if spec is None or not spec.valid_spec:
            return rows
        try:
            runs = [self.nasbench.query(spec, epochs, repeat="all") for epochs in self.epochs]
        except api.OutOfDomainError:
            return rows
        for row, data in zip(rows, runs, strict=True):
            row[:3] = (
                1.0 - data["validation_accuracy"][repeat],
                1.0 - data["test_accuracy"][repeat],
                data["training_time"][repeat],
            )
        rows[:, 3] = np.cumsum(rows[:, 2])
        return rows
