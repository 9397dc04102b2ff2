"""``nasbench bench train --quick``: training speed of the Inception-like cell on the CPU, three variants reported
apart, and the 108-epoch projection next to the dataset's TPU v2 time."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from nasbench import _cli
from nasbench_bench import results
from nasbench_bench.train import DATASET_TRAINING_TIME_S


def test_train_scenario_reports_images_per_second_and_the_projection(small_store: Path, tmp_path: Path) -> None:
    """One torch thread: a loaded shared machine makes torch's threads wait on each other (the figure is then
    of one core, which the results record)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _run_and_check(small_store, tmp_path)
    finally:
        torch.set_num_threads(before)


def _run_and_check(small_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    assert _cli.main(["bench", "train", "--quick", "--store", str(small_store), "--out", str(out)]) == 0
    data = json.loads((out / "results.json").read_text())
    assert results.validate(data) == []
    scenario = data["scenarios"]["train"]
    figures = {figure["name"]: figure for figure in scenario["figures"]}
    for variant in ("float32", "channels-last", "bf16 autocast"):
        figure = figures[f"train cpu {variant}, images/s (forward+backward+step)"]
        assert figure["unit"] == "images/s" and figure["count"] == 3 and figure["median"] > 0
        projected = scenario["params"][f"projected_108_epochs_s cpu {variant}"]
        assert projected == round(108 * 40_000 / figure["median"], 1)
        ratio = scenario["ratios"][f"cpu {variant}: projected 108 epochs / dataset's TPU v2 time"]
        assert abs(ratio * DATASET_TRAINING_TIME_S - projected) < 0.1  # projected is rounded to 0.1 s
    assert scenario["params"]["trainable_parameters"] == 2_694_282 and scenario["params"]["threads"] == 1
    assert "## train" in (out / "report.md").read_text()
