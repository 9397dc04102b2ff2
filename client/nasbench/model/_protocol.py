"""The numbers of the paper's training protocol that need no torch: the learning-rate schedule and the steps.

From google-research/nasbench ``nasbench/lib/config.py`` (defaults), ``model_builder.py`` (``COSINE_BY_STEP``)
and ``evaluate.py`` (evaluation points). The dataset was trained on TPU v2 with ``use_tpu=True`` and
``tpu_num_shards=2``: the base learning rate 0.1 is scaled by the 2 shards to 0.2, and each shard normalises
its batch-norm statistics over its own half of the 256-image batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from nasbench._architecture import ORIGINAL, Architecture
from nasbench.errors import ConfigurationError
from nasbench.lib import config as _config

TRAIN_IMAGES = 40_000  # cifar.CIFARInput('train').num_images


@dataclass(frozen=True)
class Protocol:
    """Training hyperparameters; the defaults are those that produced the dataset."""

    epochs: int = 108
    batch_size: int = 256
    base_learning_rate: float = 0.2  # learning_rate 0.1 x tpu_num_shards 2
    momentum: float = 0.9
    rms_decay: float = 0.9  # tf.train.RMSPropOptimizer's default decay
    epsilon: float = 1.0
    weight_decay: float = 1e-4
    intermediate_evaluations: tuple[float, ...] = (0.5,)
    shards: int = 2  # batch-norm statistics over batch_size / shards images, as on the two TPU v2 cores

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigurationError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1 or self.shards < 1 or self.batch_size % self.shards:
            raise ConfigurationError(
                f"batch_size ({self.batch_size}) must be a positive multiple of the shards ({self.shards})"
            )
        points = list(self.intermediate_evaluations)
        if points != sorted(points) or any(not 0.0 < p < 1.0 for p in points):
            raise ConfigurationError(f"intermediate evaluations must be ascending in (0, 1), got {points}")

    @property
    def total_steps(self) -> int:
        """``int(train_epochs * 40000 / batch_size)``: 16,875 for 108 epochs."""
        return int(self.epochs * TRAIN_IMAGES / self.batch_size)

    def evaluation_points(self) -> list[tuple[float, int]]:
        """(epoch, steps) of the evaluations after the start: each intermediate fraction, then the end."""
        fractions = [*self.intermediate_evaluations, 1.0]
        return [
            (fraction * self.epochs, int(fraction * self.epochs * TRAIN_IMAGES / self.batch_size))
            for fraction in fractions
        ]

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Protocol:
        """The protocol of an original config dict (``nasbench.lib.config.build_config()``, maybe edited)."""
        if config.get("lr_decay_method", "COSINE_BY_STEP") != "COSINE_BY_STEP":
            raise ConfigurationError(f"lr_decay_method {config['lr_decay_method']!r}: only COSINE_BY_STEP is built")
        tpu = bool(config.get("use_tpu", True))
        shards = int(config.get("tpu_num_shards", 2)) if tpu else 1
        try:
            return cls(
                epochs=int(config["train_epochs"]),
                batch_size=int(config["batch_size"]),
                base_learning_rate=float(config["learning_rate"]) * shards,
                momentum=float(config["momentum"]),
                weight_decay=float(config["weight_decay"]),
                intermediate_evaluations=tuple(float(p) for p in config["intermediate_evaluations"]),
                shards=shards,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"config: {exc}") from None


@dataclass(frozen=True)
class Options:
    """How to run, beyond the protocol: none of these is the original's choice to make, except the defaults."""

    device: str = "cpu"
    seed: int = 0
    deterministic: bool = False  # torch.use_deterministic_algorithms: same seed, same numbers (slower on GPU)
    bf16: bool = False  # bfloat16 autocast: faster on recent hardware, other numbers than float32
    channels_last: bool = False  # NHWC memory layout: other kernels, other rounding
    architecture: Architecture = ORIGINAL


DEFAULT = Protocol.from_config(_config.build_config())


def learning_rate(step: int, total_steps: int, base: float) -> float:
    """The learning rate of global step ``step`` (``COSINE_BY_STEP``), in float32 as TensorFlow computed it:
    ``0.5 * base * (1 + cos(pi * step / total_steps))``, and 0 at step 0 (the original's first step only
    initialises)."""
    if step == 0:
        return 0.0
    f32 = np.float32
    progress = f32(step) / f32(total_steps)
    return float(f32(0.5 * base) * (f32(1.0) + np.cos(f32(np.pi) * progress)))
