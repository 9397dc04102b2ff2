"""Scenario ``train``: how fast one cell's network trains here, and what 108 epochs would cost at that speed.

The cell is the Inception-like cell of the original README. A sample is one optimizer step of ``nasbench train``
(forward and backward of each half-batch shard, TensorFlow's RMSProp), timed on its own; the figure is in
images per second. The projection is 108 epochs x 40,000 images at the median rate, steps only (the dataset's
``training_time`` also excludes evaluation), next to that cell's ``training_time`` in the dataset on TPU v2:
1,155.85 s (the query in the original notebook, google-research/nasbench NASBench.ipynb). The protocol's float32
is measured first; channels-last and bfloat16 autocast, which change the numbers, are reported separately. A GPU
is measured too when torch sees one.
"""

from __future__ import annotations

import time

import numpy as np

from nasbench.errors import ConfigurationError
from nasbench_bench.results import Context, ScenarioResult
from nasbench_bench.timing import summarize

DATASET_TRAINING_TIME_S = 1155.85302734375  # NASBench.ipynb: the Inception-like cell, 108 epochs, TPU v2
EPOCH_IMAGES = 40_000
EPOCHS = 108
# name -> (channels_last, bf16)
_VARIANTS = {"float32": (False, False), "channels-last": (True, False), "bf16 autocast": (False, True)}


def run(context: Context) -> ScenarioResult:
    try:
        import torch
    except ImportError:
        raise ConfigurationError("scenario train needs torch: pip install 'nasbench-server[train]'") from None
    from dataclasses import replace

    from nasbench import model
    from nasbench.lib.model_spec import ModelSpec
    from nasbench_experiments.analysis.pareto import REFERENCE_CELLS

    spec = ModelSpec(*REFERENCE_CELLS["Inception-like"])
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    steps = 3 if context.quick else 10
    rng = np.random.default_rng(0)
    result = ScenarioResult(
        params={
            "cell": "Inception-like (original README)",
            "trainable_parameters": model.count_parameters(spec),
            "macs_per_image": model.network_stats(spec).macs,
            "steps": steps,
            "threads": torch.get_num_threads(),
            "dataset_training_time_s": DATASET_TRAINING_TIME_S,
        }
    )
    for device in devices:
        batch = (8 if context.quick else 32) if device == "cpu" else 256
        images = rng.integers(0, 256, size=(batch, 3, 32, 32), dtype=np.uint8)
        labels = rng.integers(0, 10, size=batch)
        result.params[f"batch_{device}"] = batch
        for variant, (channels_last, bf16) in _VARIANTS.items():
            options = model.Options(device=device, channels_last=channels_last, bf16=bf16)
            torch.manual_seed(0)
            runner = model.trainer(model.build(spec), replace(model.DEFAULT, batch_size=batch), options)
            rates = []
            for step in range(steps + 1):  # the first step (allocation, kernel choice) is not counted
                runner.synchronize()
                started = time.perf_counter()
                runner.train_step(step + 1, model.augment(images, rng), labels)
                runner.synchronize()
                if step:
                    rates.append(batch / (time.perf_counter() - started))
            name = f"train {device} {variant}"
            result.figures.append(summarize(f"{name}, images/s (forward+backward+step)", rates, "images/s"))
            projected = EPOCHS * EPOCH_IMAGES / float(np.median(rates))
            result.params[f"projected_108_epochs_s {device} {variant}"] = round(projected, 1)
            result.ratios[f"{device} {variant}: projected 108 epochs / dataset's TPU v2 time"] = (
                projected / DATASET_TRAINING_TIME_S
            )
    return result
