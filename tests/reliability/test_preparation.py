"""Processes opening the same original .tfrecord file at once build its store once: the others wait for the
first and open what it built (before, each built its own: four times the memory and the time)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

_OPEN = """
import logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
from nasbench import api
print(len(api.NASBench(sys.argv[1]).hash_iterator()))
"""


def test_four_processes_build_a_tfrecord_once(small_tfrecord: Path, tmp_path: Path) -> None:
    source = tmp_path / "data.tfrecord"
    shutil.copy2(small_tfrecord, source)
    processes = [
        subprocess.Popen([sys.executable, "-c", _OPEN, str(source)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
        for _ in range(4)
    ]
    outputs = [process.communicate(timeout=600) for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0, 0], [err for _, err in outputs]
    assert [out.strip() for out, _ in outputs] == ["2532"] * 4
    builds = sum(err.count("building the store (once)") for _, err in outputs)
    assert builds == 1, [err for _, err in outputs]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data.lmdb", "data.tfrecord"]
