"""One tidy, columnar table of every evaluation of every run (Apache Parquet through pyarrow).

One row per evaluation: ``optimizer``, ``encoding``, ``seed``, ``step`` (0-based), then the columns of
``Problem.columns`` (epochs, valid, validation_accuracy, cost, time, mean_test_accuracy,
mean_validation_accuracy, cell) and of ``bookkeeping.regrets`` (incumbent, test_regret, validation_regret).
Open it with ``pandas.read_parquet(path)`` or ``pyarrow.parquet.read_table(path)``.

Each finished run is written alone (``runs/<optimizer>/<seed>.parquet``), atomically (``nasbench.files``): a
run file either is complete or does not exist.

A run file carries its run record in the Parquet schema's metadata (key ``nasbench.run``, JSON): the format
version, optimizer, seed, encoding, budget, evaluation cap, optimizer settings and the dataset (its optimum,
cell count and budgets). ``check_run`` reads a file back against the record its path and study expect, and
checks the rows too (one optimizer, seed and encoding, steps 0…n-1, stopped where the budget stops a run,
regrets against the study's optimum), so a file copied from another run, study or dataset, a damaged one, or one
written before run records existed (checked by its rows alone) is never taken for the run it is named after.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from nasbench import files
from nasbench.errors import ConfigurationError

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
RUN_FORMAT = 1
RECORD_KEY = b"nasbench.run"
# what check_run reads of the rows (the other columns are not needed to tell whose run a file holds)
_CHECKED = ("optimizer", "encoding", "seed", "step", "cost", "time", "mean_test_accuracy", "incumbent", "test_regret")


def run_table(record: dict[str, Any], columns: dict[str, np.ndarray]) -> pa.Table:
    """The rows of one run, its run record (``optimizer``, ``encoding``, ``seed``…) in the metadata."""
    count = len(columns["time"])
    data: dict[str, Any] = {
        "optimizer": pa.array([record["optimizer"]] * count, pa.string()).dictionary_encode(),
        "encoding": pa.array([record["encoding"]] * count, pa.string()).dictionary_encode(),
        "seed": pa.array(np.full(count, record["seed"], dtype=np.int64)),
        "step": pa.array(np.arange(count, dtype=np.int32)),
    }
    for name in COLUMNS[4:]:
        data[name] = pa.array(columns[name])
    return pa.table(data).replace_schema_metadata({RECORD_KEY: json.dumps(record, sort_keys=True)})


def to_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old state or the whole new file, never a part.

    Raises:
      ConfigurationError: the file cannot be written (a full disk, no permission): one line naming the path.
    """
    try:
        files.write_atomically(path, lambda handle: handle.write(data))
    except OSError as exc:
        raise ConfigurationError(f"cannot write {path}: {exc.strerror or exc}") from None


def read_runs(runs: list[tuple[Path, dict[str, Any]]]) -> pa.Table:
    """The concatenated rows of run files (in the given order), each checked against its expected record
    (``check_run``); the result carries no run record."""
    tables = [check_run(path, expected) for path, expected in runs]
    if not tables:
        return pa.table({name: pa.array([], pa.float64()) for name in COLUMNS})
    return pa.concat_tables(tables, promote_options="permissive").replace_schema_metadata(None)


def check_run(path: Path, expected: dict[str, Any], columns: tuple[str, ...] | None = None) -> pa.Table:
    """The rows of the run file ``path`` (only ``columns`` besides the checked ones, if given), after checking
    that it holds the run ``expected`` describes (a run record, as ``run_table`` writes it).

    Raises:
      ConfigurationError: one line naming the file and what is wrong with it.
    """
    problem = _run_problem(path, expected, columns)
    if isinstance(problem, str):
        raise ConfigurationError(f"{path}: {problem}")
    return problem


def _run_problem(path: Path, expected: dict[str, Any], columns: tuple[str, ...] | None) -> pa.Table | str:
    """The file's rows, or what is wrong with it."""
    try:
        if path.stat().st_size == 0:
            return "the run file is empty"
        schema = pq.read_schema(path)
        missing = [name for name in COLUMNS if name not in schema.names]
        if missing:
            return f"not a run file: no column {', '.join(missing)}"
        names = list(dict.fromkeys([*_CHECKED, *(COLUMNS if columns is None else columns)]))
        rows = pq.read_table(path, columns=names)
    except OSError as exc:
        return f"cannot read the run file ({exc.strerror or exc})"
    except pa.ArrowException as exc:  # not Parquet, truncated, damaged
        return f"not a readable run file ({' '.join(str(exc).split())})"
    expected = json.loads(json.dumps(expected))  # the record as JSON gives it back (tuples become lists...)
    stored = (schema.metadata or {}).get(RECORD_KEY)
    if stored is not None:  # files written before run records existed are checked by their rows alone
        try:
            record = json.loads(stored)
        except ValueError:
            return "its run record is not JSON"
        if not isinstance(record, dict) or record.get("format") != expected["format"]:
            found = record.get("format") if isinstance(record, dict) else record
            return f"written in run format {found!r}, this version reads format {expected['format']}"
        for name, value in expected.items():
            if name == "revision" and record.get(name, 1) != value:
                return (
                    f"holds a run of what {expected['optimizer']} meant before (revision {record.get(name, 1)}; "
                    f"this version runs revision {value}, docs/compare.md): resume with the version that wrote it, "
                    "or start the study in another --out"
                )
            if record.get(name) != value:
                return f"holds a run with {name} = {_shown(name, record.get(name))}, not {_shown(name, value)}"
    return _rows_problem(rows, expected) or rows


def _rows_problem(rows: pa.Table, expected: dict[str, Any]) -> str | None:
    """What is wrong with the rows of a run that should be ``expected``, or None."""
    count = rows.num_rows
    if count == 0:
        return "the run file holds no evaluation"
    for name in ("optimizer", "encoding", "seed"):
        values = rows.column(name).unique().to_pylist()
        if values != [expected[name]]:
            found = ", ".join(_shown(name, value) for value in values)
            return f"holds rows with {name} = {found}, not {_shown(name, expected[name])}"
    if not np.array_equal(rows.column("step").to_numpy(), np.arange(count)):
        return f"its steps are not 0 to {count - 1} in order (a damaged or joined file)"
    # the summed training time: a run's time column on one worker, more than its wall-clock on several
    time = np.cumsum(rows.column("cost").to_numpy())
    budget, cap = expected["budget_s"], expected["max_evaluations"]
    stopped = time[-1] >= budget or count == cap
    if not stopped or np.any(time[:-1] >= budget) or (cap is not None and count > cap):
        return (
            f"its {count} evaluations end at {time[-1]:.6g} simulated seconds of training: not where a run of budget "
            f"{budget:.6g} s" + (f" and at most {cap} evaluations" if cap is not None else "") + " stops"
        )
    incumbent = rows.column("incumbent").to_numpy()
    known = incumbent >= 0
    best = expected["dataset"]["best_test_accuracy"]
    recomputed = best - rows.column("mean_test_accuracy").to_numpy()[incumbent[known]]
    if not np.array_equal(recomputed, rows.column("test_regret").to_numpy()[known]):
        return f"its test regrets are not against this study's dataset (best mean test accuracy {best:.6f})"
    return None


def _shown(name: str, value: Any) -> str:
    """A recorded value as a message shows it (a dataset by its cells, budgets and optimum)."""
    if name == "dataset" and isinstance(value, dict):
        try:
            return (
                f"{value['cells']:,} cells, budgets {value['epochs']}, best mean test accuracy "
                f"{value['best_test_accuracy']:.6f}"
            )
        except (KeyError, TypeError, ValueError):
            pass
    return repr(value) if isinstance(value, str) else json.dumps(value, sort_keys=True)
