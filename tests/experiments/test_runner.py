"""The study runner: the same trajectories whatever the workers and the backend; resumption after a kill; the
command line's one-line errors; the report redrawn from saved runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from nasbench._cli import main
from nasbench_experiments.search.registry import OPTIMIZERS
from nasbench_experiments.studies import runner
from nasbench_server.process import free_ports


def every_optimizer_study(dataset: str) -> runner.Study:
    return runner.Study(
        dataset=dataset, optimizers=tuple(OPTIMIZERS), runs=3, budget_s=1e7, encoding="A", max_evaluations=25
    )


def in_process_tables(study: runner.Study, scratch: Path) -> dict[runner.Task, object]:
    """Each task run here, one after the other (the reference every executor must reproduce)."""
    optimum, _ = runner.prepare(study, scratch)
    found = {}
    for task in study.tasks():
        data, _ = runner.run_one(study, task, optimum)
        found[task] = pq.read_table(pa_buffer(data))
    return found


def pa_buffer(data: bytes):
    import pyarrow as pa

    return pa.BufferReader(data)


def assert_same_rows(found, reference, label: object) -> None:
    """Equal tables, NaN equal to NaN (invalid configurations have no test accuracy)."""
    assert found.column_names == reference.column_names, label
    for name in found.column_names:
        left, right = (table.column(name).to_pylist() for table in (found, reference))
        np.testing.assert_array_equal(np.array(left, dtype=object if name in ("optimizer", "encoding") else None),
                                      np.array(right, dtype=object if name in ("optimizer", "encoding") else None),
                                      err_msg=f"{label}: {name}")  # fmt: skip


def assert_same_runs(out: Path, expected: dict) -> None:
    for task, reference in expected.items():
        assert_same_rows(pq.read_table(task.path(out)), reference, task)


def test_trajectories_are_identical_across_workers_and_backends(full_store: Path, server_address: str, tmp_path):
    """3 seeds of every optimizer: in this process over the server, and over 2 and 1 worker processes on the
    store, give the same rows (the dataset's optimum is the same too)."""
    remote = in_process_tables(every_optimizer_study(server_address), tmp_path / "reference")
    study = every_optimizer_study(str(full_store))
    runner.run_study(study, tmp_path / "two", workers=2, progress=False)
    assert_same_runs(tmp_path / "two", remote)
    runner.run_study(study, tmp_path / "one", workers=1, progress=False)
    assert_same_runs(tmp_path / "one", remote)


def test_an_interrupted_study_resumes_without_duplicating_or_losing_runs(small_store: Path, tmp_path: Path):
    out = tmp_path / "study"
    command = [
        sys.executable, "-m", "nasbench._cli", "compare", "--optimizers", "rs,re", "--runs", "12",
        "--budget", "3e6", "--encoding", "cells", "--store", str(small_store), "--out", str(out),
        "--workers", "1", "--no-progress",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while len(list(out.glob("runs/*/*.parquet"))) < 3:
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "no run finished in time"
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the command and its worker processes, mid-way
        process.wait()
        process.stderr.close()
    finished = sorted(out.glob("runs/*/*.parquet"))
    assert 3 <= len(finished) < 24
    before = {path: path.read_bytes() for path in finished}
    (out / "runs" / "rs" / ".000011.parquet.partial-99999").write_bytes(b"half a file")  # as a kill may leave

    assert main([*command[3:], "--no-progress"]) == 0
    assert sorted(out.glob("runs/*/.*")) == []
    runs = pq.read_table(out / "results.parquet", columns=["optimizer", "seed", "step"])
    optimizer, seed, step = (runs.column(name).to_pylist() for name in ("optimizer", "seed", "step"))
    starts = [(o, s) for o, s, first in zip(optimizer, seed, step, strict=True) if first == 0]
    assert sorted(starts) == sorted((name, seed) for name in ("rs", "re") for seed in range(12))
    for path, data in before.items():
        assert path.read_bytes() == data  # finished runs were kept, not redone
    study = runner.Study(str(small_store), ("rs", "re"), 12, 3e6, "cells")
    optimum, _ = runner.prepare(study, out)
    for task in study.tasks()[:4]:
        data, _ = runner.run_one(study, task, optimum)
        assert_same_rows(pq.read_table(task.path(out)), pq.read_table(pa_buffer(data)), task)


def error_line(capsys, *arguments: str) -> str:
    assert main(["compare", *arguments, "--no-progress"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("nasbench compare: error: ")
    return lines[0]


def test_bad_arguments_get_one_clear_error_line(capsys, small_store: Path, only108_store: Path, tmp_path: Path):
    store = ["--store", str(small_store), "--out", str(tmp_path / "out")]
    assert "unknown optimizer 'foo' (choose from rs, re" in error_line(capsys, "--optimizers", "rs,foo", *store)
    for budget in ("0", "-5"):
        assert "--budget must be a positive number" in error_line(capsys, "--budget", budget, *store)
    assert "--budget must be a number, got 'lots'" in error_line(capsys, "--budget", "lots", *store)
    assert "--runs must be a positive integer" in error_line(capsys, "--runs", "0", *store)
    assert "unknown encoding 'D'" in error_line(capsys, "--encoding", "D", *store)
    assert "unknown executor 'threads'" in error_line(capsys, "--executor", "threads", "--optimizers", "rs", *store)
    line = error_line(capsys, "--optimizers", "rs,bohb", "--store", str(only108_store), "--out", str(tmp_path / "x"))
    assert "bohb is multi-fidelity and needs a dataset with the budgets [4, 12, 36, 108]" in line
    assert "this one has [108]" in line
    port = free_ports()[0]
    line = error_line(capsys, "--target", f"grpc://127.0.0.1:{port}", "--out", str(tmp_path / "y"))
    assert f"127.0.0.1:{port}" in line
    assert main(["compare", "--optimizers", "rs", "--runs", "1", "--budget", "1e4", *store, "--no-progress"]) == 0
    capsys.readouterr()
    line = error_line(capsys, "--optimizers", "rs", "--runs", "1", "--budget", "2e4", *store)
    assert "holds a study with budget_s = 10000.0" in line
    assert "holds no study" in error_line(capsys, "--report", str(tmp_path / "nothing"))


def test_the_report_is_redrawn_from_saved_runs(small_store: Path, tmp_path: Path, capsys):
    out = tmp_path / "study"
    arguments = ["compare", "--optimizers", "rs,ls", "--runs", "3", "--budget", "2e5", "--encoding", "cells"]
    assert main([*arguments, "--store", str(small_store), "--out", str(out), "--no-progress", "--workers", "1"]) == 0
    report = (out / "report.md").read_text()
    for name in ("regret.png", "ecdf.png", "summary.csv"):
        assert (out / name).exists()
        (out / name).unlink()
    assert main(["compare", "--report", str(out)]) == 0
    assert (out / "report.md").read_text() == report
    assert (out / "regret.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = (out / "summary.csv").read_text().splitlines()
    assert summary[0].startswith("optimizer,runs,final_test_regret_median")
    assert [line.split(",")[:2] for line in summary[1:]] == [["rs", "3"], ["ls", "3"]]
    results = pq.read_table(out / "results.parquet")
    assert set(results.column_names) >= {"optimizer", "seed", "step", "time", "test_regret", "validation_regret"}
