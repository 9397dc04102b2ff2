"""One tidy, columnar table of every evaluation of every run (Apache Parquet through pyarrow).

One row per evaluation: ``optimizer``, ``encoding``, ``seed``, ``step`` (0-based), then the columns of
``Problem.columns`` (epochs, valid, validation_accuracy, cost, time, mean_test_accuracy,
mean_validation_accuracy, cell) and of ``bookkeeping.regrets`` (incumbent, test_regret, validation_regret).
Open it with ``pandas.read_parquet(path)`` or ``pyarrow.parquet.read_table(path)``.

Each finished run is written alone (``runs/<optimizer>/<seed>.parquet``), atomically: a temporary file in the
same folder, fsync, rename. A run file either is complete or does not exist.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

COLUMNS = (
    "optimizer",
    "encoding",
    "seed",
    "step",
    "epochs",
    "valid",
    "validation_accuracy",
    "cost",
    "time",
    "mean_test_accuracy",
    "mean_validation_accuracy",
    "cell",
    "incumbent",
    "test_regret",
    "validation_regret",
)


def run_table(optimizer: str, encoding: str, seed: int, columns: dict[str, np.ndarray]) -> pa.Table:
    """The rows of one run."""
    count = len(columns["time"])
    data: dict[str, Any] = {
        "optimizer": pa.array([optimizer] * count, pa.string()).dictionary_encode(),
        "encoding": pa.array([encoding] * count, pa.string()).dictionary_encode(),
        "seed": pa.array(np.full(count, seed, dtype=np.int64)),
        "step": pa.array(np.arange(count, dtype=np.int32)),
    }
    for name in COLUMNS[4:]:
        data[name] = pa.array(columns[name])
    return pa.table(data)


def to_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old state or the whole new file, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def read_runs(paths: list[Path]) -> pa.Table:
    """The concatenated rows of run files (in the given order)."""
    tables = [pq.read_table(path) for path in paths]
    if not tables:
        return pa.table({name: pa.array([], pa.float64()) for name in COLUMNS})
    return pa.concat_tables(tables, promote_options="permissive")
