"""SMAC, Hyperband and BOHB-style multi-fidelity through SMAC3 (``smac`` 2.x), ask/tell, seeded per run.

- ``smac``: ``HyperparameterOptimizationFacade`` with the paper's script settings: a random forest of 10 trees,
  1/3 random configurations, noisy target (``deterministic=False``), at most 4 evaluations per configuration.
- ``hb``: ``HyperbandFacade``: random configurations raced by Hyperband over the budgets 4, 12, 36, 108 epochs
  (eta 3).
- ``bohb``: ``MultiFidelityFacade``: SMAC's model-based Hyperband (BOHB's design: Hyperband brackets, a model
  proposing configurations, 1/3 random), budgets 4 to 108 with eta 3. The model is SMAC's random forest, not
  BOHB's kernel density estimator, so BOHB's KDE settings (min bandwidth 0.3, 64 samples, bandwidth factor 3)
  have no counterpart; see docs/compare.md.

SMAC writes nothing: its output folder is a temporary directory removed with the optimizer, and results are
never saved per trial (``tell(save=False)``).

Usage::

    optimizer = SMACOptimizer(problem, kind="bohb")
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from typing import TYPE_CHECKING, Any

from nasbench.errors import ConfigurationError
from nasbench_experiments.search.encodings import vector_encoding
from nasbench_experiments.search.problem import FINAL_EPOCHS, Evaluation, Problem

if TYPE_CHECKING:
    from smac.facade.abstract_facade import AbstractFacade

MULTI_FIDELITY_BUDGETS = (4, 12, 36, 108)
DEFAULT_TREES = 10
DEFAULT_RANDOM_FRACTION = 1 / 3
DEFAULT_MAX_CONFIG_CALLS = 4
DEFAULT_ETA = 3
_MAX_TRIALS = 10**9


def require_budgets(problem: Problem, name: str) -> None:
    """Multi-fidelity optimizers need every budget of the full dataset."""
    missing = [epochs for epochs in MULTI_FIDELITY_BUDGETS if epochs not in problem.epochs]
    if missing:
        raise ConfigurationError(
            f"{name} is multi-fidelity and needs a dataset with the budgets {list(MULTI_FIDELITY_BUDGETS)} epochs; "
            f"this one has {list(problem.epochs)} (build the store from nasbench_full.tfrecord)"
        )


class SMACOptimizer:
    """One of SMAC3's facades (``kind`` = smac, hb or bohb) over the encoding's ConfigSpace."""

    def __init__(
        self,
        problem: Problem,
        kind: str = "smac",
        n_trees: int = DEFAULT_TREES,
        random_fraction: float = DEFAULT_RANDOM_FRACTION,
        max_config_calls: int = DEFAULT_MAX_CONFIG_CALLS,
        eta: int = DEFAULT_ETA,
    ) -> None:
        from smac import HyperbandFacade, HyperparameterOptimizationFacade, MultiFidelityFacade, Scenario

        if kind in ("hb", "bohb"):
            require_budgets(problem, kind)
        logging.getLogger("smac").setLevel(logging.ERROR)
        self.kind = kind
        self._folder = tempfile.mkdtemp(prefix="nasbench-smac-")
        seed = int(problem.rng.integers(2**31))
        space = vector_encoding(problem.encoding_name).configspace(seed=seed)
        common: dict[str, Any] = {"n_trials": _MAX_TRIALS, "seed": seed, "output_directory": self._folder}
        if kind == "smac":
            scenario = Scenario(space, deterministic=False, **common)
            facade = HyperparameterOptimizationFacade
            self.smac: AbstractFacade = facade(
                scenario,
                _never_called,
                model=facade.get_model(scenario, n_trees=n_trees),
                random_design=facade.get_random_design(scenario, probability=random_fraction),
                intensifier=facade.get_intensifier(scenario, max_config_calls=max_config_calls),
                overwrite=True,
                logging_level=logging.ERROR,
            )
        else:
            scenario = Scenario(
                space,
                deterministic=True,
                min_budget=MULTI_FIDELITY_BUDGETS[0],
                max_budget=MULTI_FIDELITY_BUDGETS[-1],
                **common,
            )
            multi_fidelity = HyperbandFacade if kind == "hb" else MultiFidelityFacade
            extra: dict[str, Any] = {}
            if kind == "bohb":
                extra["model"] = MultiFidelityFacade.get_model(scenario, n_trees=n_trees)
                extra["random_design"] = MultiFidelityFacade.get_random_design(scenario, probability=random_fraction)
            self.smac = multi_fidelity(
                scenario,
                _never_called,
                intensifier=multi_fidelity.get_intensifier(scenario, eta=eta),
                overwrite=True,
                logging_level=logging.ERROR,
                **extra,
            )
        self._trial: Any = None

    def ask(self) -> tuple[Any, int]:
        self._trial = self.smac.ask()
        budget = self._trial.budget
        epochs = FINAL_EPOCHS if budget is None else _nearest_budget(budget)
        return dict(self._trial.config), epochs

    def tell(self, point: Any, epochs: int, evaluation: Evaluation) -> None:
        from smac.runhistory.dataclasses import TrialValue

        self.smac.tell(self._trial, TrialValue(cost=evaluation.validation_error, time=evaluation.cost), save=False)

    def close(self) -> None:
        folder = getattr(self, "_folder", None)  # absent when the constructor refused the settings
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    def __del__(self) -> None:
        self.close()


def _nearest_budget(budget: float) -> int:
    return min(MULTI_FIDELITY_BUDGETS, key=lambda epochs: abs(epochs - budget))


def _never_called(config: Any, seed: int = 0, budget: float = 0.0) -> float:
    raise RuntimeError("SMAC is driven by ask/tell here; the target function is never called")
