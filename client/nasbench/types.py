"""The types the API's extensions return, for annotations: ``NASBench.optima()`` maps budgets to
``DatasetOptimum``, ``NASBench.columns()`` returns ``DatasetColumns`` (whose ``optima()`` maps budgets to
``Optimum``: the best cells by row); ``METRIC_FIELDS`` names the last axis of its metrics."""

from __future__ import annotations

from nasbench._engine.engine import DatasetColumns
from nasbench._engine.optima import DatasetOptimum, Optimum
from nasbench._store.layout import METRIC_FIELDS

__all__ = ["METRIC_FIELDS", "DatasetColumns", "DatasetOptimum", "Optimum"]

for _exported in (DatasetColumns, DatasetOptimum, Optimum):
    _exported.__module__ = __name__
