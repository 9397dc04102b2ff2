"""`nasbench train`: cells trained with the paper's protocol become records in the original format that
`nasbench build` serves; a second run resumes; a wrong digest or device is one line."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from nasbench import api, model

torch = pytest.importorskip("torch")  # the train extra

TINY = model.Architecture(stem_channels=2, stacks=1, modules_per_stack=1)


def _train(
    output: Path, archive: Path, md5: str, *extra: str, epochs: tuple[str, ...] = ("1",)
) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable, "-m", "nasbench._cli", "train", str(output), "--max-vertices", "2",
        "--cifar", str(archive), "--cifar-md5", md5, "--epochs", *epochs, "--batch-size", "4000",
        "--stem-channels", "2", "--stacks", "1", "--modules-per-stack", "1", *extra,
    ]  # fmt: skip
    # one thread: on a machine shared with other jobs, torch's threads would wait on each other
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=900, check=False, env=environment)


def _build(output: Path, store: Path) -> None:
    """``nasbench build`` of the trained file, as users run it."""
    built = subprocess.run(
        [sys.executable, "-m", "nasbench._cli", "build", str(output), str(store), "--workers", "1"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr


def _runs(output: Path) -> list[dict[str, Any]]:
    """The finished runs the journal beside ``output`` records."""
    return [json.loads(line) for line in output.with_name(output.name + ".runs.jsonl").read_text().splitlines()]


def test_nasbench_train_writes_records_that_nasbench_build_serves(
    cifar_archive: Path, cifar_md5: str, tmp_path: Path
) -> None:
    """A few steps (10 per epoch at batch 4000) of the only cell of 2 vertices, 3 repeats: the .tfrecord builds
    into a store whose query answers one of the three runs; running again resumes and trains nothing; a second
    budget asked for later trains only its own runs, and the file then builds into a store of both budgets."""
    output = tmp_path / "trained.tfrecord"
    done = _train(output, cifar_archive, cifar_md5)
    assert done.returncode == 0, done.stderr
    runs = _runs(output)
    assert [run["repeat"] for run in runs] == [0, 1, 2]
    for run in runs:
        assert [r["training_steps"] for r in run["evaluation_results"]] == [0, 5, 10]
        assert [r["epochs"] for r in run["evaluation_results"]] == [0.0, 0.5, 1.0]
        times = [r["training_time"] for r in run["evaluation_results"]]
        assert 0 < times[0] < times[1] < times[2] < run["total_time"]
        for result in run["evaluation_results"]:  # 2 whole batches of 4000 images
            for key in ("train_accuracy", "validation_accuracy", "test_accuracy"):
                assert result[key] == round(result[key] * 8_000) / 8_000

    store = tmp_path / "trained.lmdb"
    _build(output, store)
    spec = api.ModelSpec([[0, 1], [0, 0]], ["input", "output"])
    bench = api.NASBench(str(store), seed=0)
    assert bench.valid_epochs == {1}
    data = bench.query(spec, epochs=1)
    assert data["trainable_parameters"] == model.count_parameters(spec, TINY)
    finals = [run["evaluation_results"][-1] for run in runs]
    assert (data["validation_accuracy"], data["training_time"]) in [
        (final["validation_accuracy"], final["training_time"]) for final in finals
    ]
    halfway = bench.query(spec, epochs=1, stop_halfway=True)
    assert halfway["training_time"] in [run["evaluation_results"][1]["training_time"] for run in runs]

    first = output.read_bytes()
    again = _train(output, cifar_archive, cifar_md5)
    assert again.returncode == 0, again.stderr
    assert "repeat" not in again.stderr  # no run trained again
    assert output.read_bytes() == first

    # a second budget added later: only its runs train, each a run of its own with a schedule over 2 epochs
    more = _train(output, cifar_archive, cifar_md5, epochs=("2", "1"))
    assert more.returncode == 0, more.stderr
    assert re.findall(r" (\d+) epochs repeat (\d)", more.stderr) == [("2", "1"), ("2", "2"), ("2", "3")]
    runs = _runs(output)
    assert [(run["epochs"], run["repeat"]) for run in runs] == [(1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2)]
    for run in runs[3:]:
        assert [r["training_steps"] for r in run["evaluation_results"]] == [0, 10, 20]
    both = tmp_path / "both.lmdb"
    _build(output, both)
    bench = api.NASBench(str(both), seed=0)
    assert bench.valid_epochs == {1, 2}
    _, computed = bench.get_metrics_from_spec(spec)
    assert {epochs: len(repeats) for epochs, repeats in computed.items()} == {1: 3, 2: 3}
    assert sorted(r["final_validation_accuracy"] for r in computed[2]) == sorted(
        run["evaluation_results"][-1]["validation_accuracy"] for run in runs[3:]
    )


def test_train_refuses_a_wrong_digest_in_one_line(cifar_archive: Path, tmp_path: Path) -> None:
    done = _train(tmp_path / "x.tfrecord", cifar_archive, "0" * 32)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "MD5" in done.stderr
    assert not (tmp_path / "x.tfrecord").exists()


@pytest.mark.parametrize(
    ("device", "message"),
    [("cuda" if not torch.cuda.is_available() else "cuda:99", "GPU|cuda"), ("tpu", "expected cpu or cuda")],
)
def test_train_refuses_an_unusable_device_in_one_line(
    cifar_archive: Path, tmp_path: Path, device: str, message: str
) -> None:
    done = _train(tmp_path / "x.tfrecord", cifar_archive, "0" * 32, "--device", device)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert re.search(message, done.stderr)
