"""SMAC, and SMAC3's Hyperband and multi-fidelity facades (``smac`` 2.x), ask/tell, seeded per run.

- ``smac``: ``HyperparameterOptimizationFacade`` with the paper's script settings: a random forest of 10 trees,
  1/3 random configurations, noisy target (``deterministic=False``), at most 4 evaluations per configuration.
- ``smac-hb``: ``HyperbandFacade``: random configurations raced by Hyperband over the budgets 4, 12, 36, 108 epochs
  (eta 3). The paper's Hyperband is hpbandster's (``hb``, ``search.hpbandster_family``).
- ``smac-mf``: ``MultiFidelityFacade``: SMAC's model-based Hyperband (Hyperband brackets, a model proposing
  configurations, 1/3 random), budgets 4 to 108 with eta 3. Its model is SMAC's random forest, not BOHB's kernel
  density estimator: the paper's BOHB is hpbandster's (``bohb``).

Runs repeat exactly per seed, in any process. SMAC's local search of the acquisition function starts from a
``set`` of configurations (``LocalSearch._get_init_points_from_previous_configs``, smac 2.4) and a
``Configuration`` hashes its ``repr``, a string, so the order of the start points, and with it which start
point gets which seed of the neighbourhood generator, followed Python's per-process string hash
(``PYTHONHASHSEED``): the same seed's runs parted after a few hundred evaluations in another process. Here the
same start points are searched in a fixed order (by their vector).

SMAC writes nothing: its output folder is a temporary directory removed with the optimizer, and results are
never saved per trial (``tell(save=False)``).

Usage::

    optimizer = SMACOptimizer(problem, kind="smac-mf")
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from typing import Any

from ConfigSpace import Configuration
from smac import HyperbandFacade, HyperparameterOptimizationFacade, MultiFidelityFacade, Scenario
from smac.acquisition.maximizer import LocalAndSortedRandomSearch, LocalSearch
from smac.facade.abstract_facade import AbstractFacade
from smac.runhistory.dataclasses import TrialValue

from nasbench_experiments.search.encodings import vector_encoding
from nasbench_experiments.search.problem import (
    FINAL_EPOCHS,
    MULTI_FIDELITY_BUDGETS,
    Evaluation,
    Problem,
    require_budgets,
)

DEFAULT_TREES = 10
DEFAULT_RANDOM_FRACTION = 1 / 3
DEFAULT_MAX_CONFIG_CALLS = 4
DEFAULT_ETA = 3
_MAX_TRIALS = 10**9


class SMACOptimizer:
    """One of SMAC3's facades (``kind`` = smac, smac-hb or smac-mf) over the encoding's ConfigSpace."""

    def __init__(
        self,
        problem: Problem,
        kind: str = "smac",
        n_trees: int = DEFAULT_TREES,
        random_fraction: float = DEFAULT_RANDOM_FRACTION,
        max_config_calls: int = DEFAULT_MAX_CONFIG_CALLS,
        eta: int = DEFAULT_ETA,
    ) -> None:
        if kind in ("smac-hb", "smac-mf"):
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
                acquisition_maximizer=_acquisition_maximizer(scenario),
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
            multi_fidelity = HyperbandFacade if kind == "smac-hb" else MultiFidelityFacade
            extra: dict[str, Any] = {}
            if kind == "smac-mf":
                extra["model"] = MultiFidelityFacade.get_model(scenario, n_trees=n_trees)
                extra["random_design"] = MultiFidelityFacade.get_random_design(scenario, probability=random_fraction)
                extra["acquisition_maximizer"] = _acquisition_maximizer(scenario)
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
        self.smac.tell(self._trial, TrialValue(cost=evaluation.validation_error, time=evaluation.cost), save=False)

    def close(self) -> None:
        folder = getattr(self, "_folder", None)  # absent when the constructor refused the settings
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    def __del__(self) -> None:
        self.close()


class _OrderedStartLocalSearch(LocalSearch):
    """SMAC's local search of the acquisition function, its start points in a fixed order (see the module
    docstring)."""

    def _get_init_points_from_previous_configs(
        self,
        previous_configs: list[Configuration],
        n_points: int,
        additional_start_points: list[tuple[float, Configuration]] | None,
    ) -> list[Configuration]:
        points = super()._get_init_points_from_previous_configs(previous_configs, n_points, additional_start_points)
        return sorted(points, key=lambda config: config.get_array().tobytes())


def _acquisition_maximizer(scenario: Scenario) -> LocalAndSortedRandomSearch:
    """The facades' default acquisition maximizer (local and sorted random search, their settings), its local
    search (the library's defaults) replaced by the ordered one."""
    maximizer = HyperparameterOptimizationFacade.get_acquisition_maximizer(scenario)
    maximizer._local_search = _OrderedStartLocalSearch(scenario.configspace, seed=scenario.seed)
    return maximizer


def _nearest_budget(budget: float) -> int:
    return min(MULTI_FIDELITY_BUDGETS, key=lambda epochs: abs(epochs - budget))


def _never_called(config: Any, seed: int = 0, budget: float = 0.0) -> float:
    raise RuntimeError("SMAC is driven by ask/tell here; the target function is never called")
