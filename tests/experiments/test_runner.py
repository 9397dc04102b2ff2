"""The study runner: the same trajectories whatever the workers and the backend; resumption after a kill; the
command line's one-line errors; the report redrawn from saved runs."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from nasbench._cli import main
from nasbench_builder import synthetic, writer
from nasbench_experiments.search.registry import OPTIMIZERS
from nasbench_experiments.studies import report as report_module
from nasbench_experiments.studies import runner, table
from nasbench_server.process import free_ports
from tests.builder.test_build_errors import tmpfs
from tests.experiments.conftest import needs_libraries


def every_optimizer_study(dataset: str) -> runner.Study:
    """Every optimizer asking one evaluation at a time (Syne Tune's, on simulated workers: test_parallel)."""
    sequential = tuple(name for name, info in OPTIMIZERS.items() if not info.parallel)
    return runner.Study(dataset=dataset, optimizers=sequential, runs=3, budget_s=1e7, encoding="A", max_evaluations=25)


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
    needs_libraries(*OPTIMIZERS)
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
    (out / "runs" / "rs" / ".000011.parquet.q7x2ka.partial").write_bytes(b"half a file")  # as a kill may leave

    assert main([*command[3:], "--no-progress"]) == 0
    assert sorted(out.glob("runs/*/.*")) == []
    assert run_starts(out) == sorted((name, seed) for name in ("rs", "re") for seed in range(12))
    for path, data in before.items():
        assert path.read_bytes() == data  # finished runs were kept, not redone
    study = runner.Study(str(small_store), ("rs", "re"), 12, 3e6, "cells")
    optimum, _ = runner.prepare(study, out)
    for task in study.tasks()[:4]:
        data, _ = runner.run_one(study, task, optimum)
        assert_same_rows(pq.read_table(task.path(out)), pq.read_table(pa_buffer(data)), task)


def run_starts(out: Path) -> list[tuple[str, int]]:
    """(optimizer, seed) of every run in the study's results table, sorted: each run once."""
    runs = pq.read_table(out / "results.parquet", columns=["optimizer", "seed", "step"])
    optimizer, seed, step = (runs.column(name).to_pylist() for name in ("optimizer", "seed", "step"))
    return sorted((o, s) for o, s, first in zip(optimizer, seed, step, strict=True) if first == 0)


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
    cells = ["--optimizers", "rs", "--runs", "1", "--encoding", "cells", *store]
    assert main(["compare", "--budget", "1e4", *cells, "--no-progress"]) == 0
    capsys.readouterr()
    line = error_line(capsys, "--budget", "2e4", *cells)
    assert "holds a study with budget_s = 10000.0" in line
    assert "holds no study" in error_line(capsys, "--report", str(tmp_path / "nothing"))


def test_the_report_is_redrawn_from_saved_runs(small_store: Path, tmp_path: Path, capsys):
    out = tmp_path / "study"
    arguments = ["compare", "--optimizers", "rs,ls", "--runs", "3", "--budget", "2e5", "--encoding", "cells"]
    assert main([*arguments, "--store", str(small_store), "--out", str(out), "--no-progress", "--workers", "1"]) == 0
    report = (out / "report.md").read_text()
    for name in ("regret.png", "ecdf.png", "summary.csv", "finals.csv"):
        assert (out / name).exists()
        (out / name).unlink()
    assert main(["compare", "--report", str(out)]) == 0
    assert (out / "report.md").read_text() == report
    assert (out / "regret.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = (out / "summary.csv").read_text().splitlines()
    assert summary[0].startswith("optimizer,runs,final_test_regret_median")
    assert [line.split(",")[:2] for line in summary[1:]] == [["rs", "3"], ["ls", "3"]]
    # one row per run, from which the summary is computed again exactly
    with open(out / "finals.csv", newline="") as handle:
        finals = list(csv.DictReader(handle))
    runs = sorted((row["optimizer"], row["seed"]) for row in finals)
    assert runs == [(name, str(seed)) for name in ("ls", "rs") for seed in range(3)]
    with open(out / "summary.csv", newline="") as handle:
        assert [{k: str(v) for k, v in row.items()} for row in report_module.summarize_finals(finals)] == list(
            csv.DictReader(handle)
        )
    results = pq.read_table(out / "results.parquet")
    assert set(results.column_names) >= {"optimizer", "seed", "step", "time", "test_regret", "validation_regret"}


def test_a_subset_store_is_refused_for_a_whole_space_encoding_before_any_run(capsys, small_store: Path, tmp_path):
    """Encodings A, B and C search every cell of the space; on a store of some cells a study used to end mid-way
    with a bare hash. It is refused at the start, in one line; the encoding 'cells' searches the stored cells."""
    for encoding in ("A", "B", "C"):
        out = tmp_path / encoding
        arguments = ["--optimizers", "rs", "--runs", "1", "--budget", "1e6", "--encoding", encoding]
        line = error_line(capsys, *arguments, "--store", str(small_store), "--out", str(out))
        assert line == (
            f"nasbench compare: error: encoding {encoding} searches the whole space of 423,624 cells and this dataset "
            "holds 2,532 of them (a subset store): use --encoding cells (it searches the stored cells) or a full store"
        )
        assert not out.exists()


# --- resuming: a run file is taken for its run only if it is that run -------------------------------------------

RESUMED = ["--optimizers", "rs,re", "--runs", "3", "--budget", "2e5", "--encoding", "cells", "--workers", "1"]


def finished(store: Path, out: Path, *changes: str) -> Path:
    """A finished study of ``RESUMED`` (with ``changes`` appended: later options win) in ``out``."""
    assert main(["compare", *RESUMED, *changes, "--store", str(store), "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def studies(tmp_path_factory: pytest.TempPathFactory, small_store: Path, space_table) -> dict[str, Path]:
    """The study resumed below, and studies whose run files look alike: another budget, another dataset (the
    same cells, other accuracies)."""
    root = tmp_path_factory.mktemp("studies")
    other = root / "other.lmdb"
    writer.write_store(synthetic.synthesize(max_vertices=5, seed=4, table=space_table).dataset, other)
    return {
        "study": finished(small_store, root / "study"),
        "budget": finished(small_store, root / "budget", "--budget", "3e5"),
        "dataset": finished(other, root / "dataset"),
    }


def without_record(path: Path) -> bytes:
    """The run file as written before run files carried their run record (rows only)."""
    return table.to_bytes(pq.read_table(path).replace_schema_metadata(None))


DAMAGES = {  # name: (what to write at runs/rs/000002.parquet, given the studies; what the error says)
    "another seed": (
        lambda s: (s["study"] / "runs/rs/000001.parquet").read_bytes(),
        "holds a run with seed = 1, not 2",
    ),
    "another optimizer": (
        lambda s: (s["study"] / "runs/re/000002.parquet").read_bytes(),
        "holds a run with optimizer = 're', not 'rs'",
    ),
    "another budget": (
        lambda s: (s["budget"] / "runs/rs/000002.parquet").read_bytes(),
        "holds a run with budget_s = 300000.0, not 200000.0",
    ),
    "another dataset": (
        lambda s: (s["dataset"] / "runs/rs/000002.parquet").read_bytes(),
        "holds a run with dataset = 2,532 cells, budgets [4, 12, 36, 108], best mean test accuracy ",
    ),
    "another seed, no run record": (
        lambda s: without_record(s["study"] / "runs/rs/000001.parquet"),
        "holds rows with seed = 1, not 2",
    ),
    "another budget, no run record": (
        lambda s: without_record(s["budget"] / "runs/rs/000002.parquet"),
        " evaluations end at ",
    ),
    "another dataset, no run record": (
        lambda s: without_record(s["dataset"] / "runs/rs/000002.parquet"),
        "its test regrets are not against this study's dataset (best mean test accuracy ",
    ),
    "garbage": (lambda s: b"not a parquet file\n" * 50, "not a readable run file (Parquet magic bytes not found"),
    "truncated": (
        lambda s: (s["study"] / "runs/rs/000002.parquet").read_bytes()[:1000],
        "not a readable run file (",
    ),
    "empty": (lambda s: b"", "the run file is empty"),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_resumed_study_refuses_a_run_file_that_is_not_its_run(studies, small_store: Path, tmp_path, capsys, damage):
    """A file under a run's name that holds another run (copied from another seed, optimizer, study or dataset,
    with or without a run record) or no run at all (garbage, truncated, empty): one error line naming the file and
    what is wrong, before anything runs or is written; never a table with a seed missing and another twice."""
    out = tmp_path / "study"
    shutil.copytree(studies["study"], out)
    wrong = out / "runs/rs/000002.parquet"
    content, message = DAMAGES[damage]
    wrong.write_bytes(content(studies))
    (out / "runs/re/000002.parquet").unlink()  # a run still to do: it must not be run while a file is wrong
    before = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}

    line = error_line(capsys, *RESUMED, "--store", str(small_store), "--out", str(out))
    assert line.startswith(f"nasbench compare: error: {wrong}: ") and message in line, line
    assert line.endswith("; remove the file to run that run again, or use another --out"), line
    assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == before
    report_line = error_line(capsys, "--report", str(out))
    assert report_line.startswith(f"nasbench compare: error: {wrong}: ") and message in report_line, report_line

    wrong.unlink()  # as the error says: the run is run again, and the table holds every run once
    assert main(["compare", *RESUMED, "--store", str(small_store), "--out", str(out), "--no-progress"]) == 0
    assert run_starts(out) == [(name, seed) for name in ("re", "rs") for seed in range(3)]
    assert (out / "runs/rs/000001.parquet").read_bytes() == (studies["study"] / "runs/rs/000001.parquet").read_bytes()


def test_run_files_without_a_run_record_are_taken_when_their_rows_are_the_run(studies, small_store, tmp_path, capsys):
    """Studies written before run files carried their run record resume: their rows are checked instead."""
    out = tmp_path / "study"
    shutil.copytree(studies["study"], out)
    for path in out.glob("runs/*/*.parquet"):
        path.write_bytes(without_record(path))
    (out / "runs/rs/000002.parquet").unlink()
    assert main(["compare", *RESUMED, "--store", str(small_store), "--out", str(out), "--no-progress"]) == 0
    assert (out / "runs/rs/000002.parquet").read_bytes() == (studies["study"] / "runs/rs/000002.parquet").read_bytes()
    results = pq.read_table(out / "results.parquet")
    assert results.num_rows == pq.read_table(studies["study"] / "results.parquet").num_rows


def test_several_wrong_run_files_are_counted_in_the_one_line(studies, small_store: Path, tmp_path, capsys):
    out = tmp_path / "study"
    shutil.copytree(studies["study"], out)
    for seed in (0, 1, 2):
        (out / f"runs/re/00000{seed}.parquet").write_bytes(b"")
    line = error_line(capsys, *RESUMED, "--store", str(small_store), "--out", str(out))
    assert line == (
        f"nasbench compare: error: {out}/runs/re/000000.parquet: the run file is empty; and 2 more run files are "
        "wrong: remove them to run those runs again, or use another --out"
    )


def test_runs_of_what_a_name_meant_before_are_refused(studies, small_store: Path, tmp_path, capsys, monkeypatch):
    """When a name comes to mean another optimizer (tpe, hb and bohb became the paper's hyperopt and hpbandster
    optimizers), its runs recorded under the earlier meaning are refused on resume, naming the change, instead of
    mixing the two optimizers in one table; the study is left as it was."""
    out = tmp_path / "study"
    shutil.copytree(studies["study"], out)
    (out / "runs/re/000002.parquet").unlink()
    before = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    monkeypatch.setitem(OPTIMIZERS, "rs", dataclasses.replace(OPTIMIZERS["rs"], revision=2))
    line = error_line(capsys, *RESUMED, "--store", str(small_store), "--out", str(out))
    assert line.startswith(f"nasbench compare: error: {out}/runs/rs/000000.parquet: holds a run of what rs meant "
                           "before (revision 1; this version runs revision 2, docs/compare.md)"), line  # fmt: skip
    assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == before


def test_a_study_recorded_before_subspaces_and_parallel_workers_resumes(studies, small_store: Path, tmp_path):
    """A study.json written before the settings 'subspace' and 'parallel' existed means the whole space, one
    worker: resuming it is accepted, and the record then names both."""
    out = tmp_path / "study"
    shutil.copytree(studies["study"], out)
    record = json.loads((out / "study.json").read_text())
    record.pop("subspace", None)
    record.pop("parallel", None)
    (out / "study.json").write_text(json.dumps(record))
    assert main(["compare", *RESUMED, "--store", str(small_store), "--out", str(out), "--no-progress"]) == 0
    assert runner.load_study(out)["subspace"] is None and runner.load_study(out)["parallel"] == 1


def test_a_damaged_study_record_is_one_line(studies, small_store: Path, tmp_path, capsys):
    out = tmp_path / "study"
    shutil.copytree(studies["study"], out)
    (out / "study.json").write_text('{"optimizers": ["rs"')
    line = error_line(capsys, *RESUMED, "--store", str(small_store), "--out", str(out))
    assert line == (
        f"nasbench compare: error: {out}/study.json is not a study record of nasbench compare (damaged?): "
        "use another --out"
    )


def test_a_full_disk_is_one_error_line_naming_the_file_and_leaves_no_partial_file(small_store: Path, tmp_path, capsys):
    """A real ENOSPC (a 64 KiB file system): the study stops with the path it could not write, and the run files
    written before it are whole runs (they pass the run check)."""
    with tmpfs(tmp_path / "small", "size=64k") as folder:
        out = folder / "study"
        line = error_line(capsys, *RESUMED, "--runs", "40", "--store", str(small_store), "--out", str(out))
        assert re.fullmatch(
            rf"nasbench compare: error: cannot write {re.escape(str(out))}/\S+: No space left on device", line
        ), line
        assert not [path for path in out.rglob(".*") if ".partial" in path.name]
        assert table.read_runs(runner.finished_runs(out)).num_rows > 0  # every run written is whole and checked
