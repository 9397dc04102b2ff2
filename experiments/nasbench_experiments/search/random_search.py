"""Random search: configurations drawn uniformly from the encoding (the paper's RS), or the data's cells drawn
uniformly (``cells``: batches of distinct cells from ``NASBench.sample``, each batch drawn independently).

Usage::

    optimizer = RandomSearch(problem)
    point, epochs = optimizer.ask()
"""

from __future__ import annotations

from typing import Any

from nasbench_experiments.search.encodings import CellEncoding
from nasbench_experiments.search.problem import FINAL_EPOCHS, Evaluation, Problem

DEFAULT_CELL_BATCH = 1024


class RandomSearch:
    """Uniform sampling, every point at the full budget (108 epochs)."""

    def __init__(self, problem: Problem, cell_batch: int = DEFAULT_CELL_BATCH) -> None:
        self.problem = problem
        self.rng = problem.rng
        self.cell_batch = cell_batch
        self._pending: list[Any] = []

    def ask(self) -> tuple[Any, int]:
        if not self._pending:
            self._pending = self._draw()
        return self._pending.pop(), FINAL_EPOCHS

    def tell(self, point: Any, epochs: int, evaluation: Evaluation) -> None:
        pass

    def _draw(self) -> list[Any]:
        """The next batch, reversed (``ask`` pops from the end, so points come out in drawn order)."""
        encoding = self.problem.encoding
        batch: list[Any]  # cells (ModelSpec) or configurations (dicts)
        if isinstance(encoding, CellEncoding):
            nasbench = self.problem.nasbench
            k = min(self.cell_batch, len(nasbench.hash_iterator()))
            batch = nasbench.sample(k, seed=int(self.rng.integers(2**63)))
        else:
            batch = encoding.sample_many(self.rng, 256)
        batch.reverse()
        return batch
