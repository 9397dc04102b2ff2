"""A study says what it will cost before it starts, and how far it is as it runs, in a log file too."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from nasbench_experiments.studies import cost, runner
from nasbench_experiments.studies.progress import Progress
from tests.polling import wait_for

PROGRESS = re.compile(
    r"\S+ \S+ INFO compare: (\d+) of 20 runs done \((\d+)%\) in [0-9.]+ (s|min), [0-9.]+ runs/(s|min|h); ETA \S+ \S+"
)


def test_the_estimate_comes_before_the_first_run_and_progress_lines_go_to_a_log_file(small_store: Path, tmp_path):
    """stderr to a file (not a terminal): the estimate is logged before any run is written, then one line per
    tenth of the runs (runs done, share, time, rate, ETA), no progress bar."""
    out, log_path = tmp_path / "study", tmp_path / "compare.log"
    command = [
        sys.executable, "-m", "nasbench._cli", "compare", "--optimizers", "rs,re", "--runs", "10", "--budget", "2e5",
        "--encoding", "cells", "--store", str(small_store), "--out", str(out), "--workers", "2",
    ]  # fmt: skip
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log_file)
        try:
            assert wait_for(lambda: any(out.glob("runs/*/*.parquet")) or process.poll() is not None, timeout=120)
            estimate_logged_first = "INFO estimate: 20 runs," in log_path.read_text()
        finally:
            assert process.wait(timeout=300) == 0, log_path.read_text()
    assert estimate_logged_first, log_path.read_text()
    lines = log_path.read_text().splitlines()
    assert re.fullmatch(
        r"\S+ \S+ INFO estimate: 20 runs, [0-9,]+ evaluations, about [0-9.]+ s on 2 workers \([0-9.]+ s of CPU\); "
        r"per run: rs [0-9.]+ s, re [0-9.]+ s",
        lines[0],
    ), lines[0]
    progress = [match for line in lines[1:] if (match := PROGRESS.fullmatch(line))]
    assert len(progress) == len(lines) - 1, lines  # nothing else: no bar, no carriage return
    assert [int(match.group(1)) for match in progress] == list(range(2, 21, 2))  # each tenth of the runs
    assert [int(match.group(2)) for match in progress] == list(range(10, 101, 10))
    assert progress[-1].group(0).endswith("ETA 0 s")


def test_progress_lines_keep_coming_while_long_runs_go_on(caplog):
    """No run finishes for a while (a run of SMAC can take hours): a line comes at least every ``every_s``."""
    study = runner.Study("store.lmdb", ("smac",), 2, 1e7)
    planned = cost.estimate(study, study.tasks(), workers=2)
    logger = logging.getLogger("nasbench.experiments.test")
    with caplog.at_level(logging.INFO, logger=logger.name):
        progress = Progress(planned, logger, terminal=False, every_s=0.2)
        try:
            assert wait_for(lambda: len(caplog.records) >= 2, timeout=30)
            first = caplog.records[0]
            assert re.fullmatch(
                r"compare: 0 of 2 runs done \(0%\) in 0\.\d+ s, 0 runs/day; ETA \S+ \S+", first.getMessage()
            )
            assert planned.wall_s - 30 < first.eta_s < planned.wall_s  # the estimate less the time spent
            progress.run_done(study.tasks()[0], seconds=3600.0, simulated_s=1e7)
            [line] = [
                record for record in caplog.records if record.getMessage().startswith("compare: 1 of 2 runs done")
            ]
            assert line.getMessage().startswith("compare: 1 of 2 runs done (50%)")
            assert line.eta_s == pytest.approx(3600.0)  # the other run, scaled as the first went against its estimate
        finally:
            progress.close()
    assert "compare-progress" not in [thread.name for thread in threading.enumerate()]
