"""The original NAS-Bench-101 configuration, as plain values instead of absl flags.

Usage::

    from nasbench.lib import config
    cfg = config.build_config()
    cfg["available_ops"]  # ['conv3x3-bn-relu', 'conv1x1-bn-relu', 'maxpool3x3']
"""

from __future__ import annotations

from typing import Any

INPUT = "input"
OUTPUT = "output"
CONV3X3 = "conv3x3-bn-relu"
CONV1X1 = "conv1x1-bn-relu"
MAXPOOL3X3 = "maxpool3x3"

# The order defines the hash labels: conv3x3-bn-relu=0, conv1x1-bn-relu=1, maxpool3x3=2.
AVAILABLE_OPS: tuple[str, ...] = (CONV3X3, CONV1X1, MAXPOOL3X3)
MODULE_VERTICES = 7
MAX_EDGES = 9
NUM_REPEATS = 3

# The flag values of the original config module (google-research/nasbench, nasbench/lib/config.py), in its
# definition order.
_DEFAULTS: tuple[tuple[str, Any], ...] = (
    ("module_vertices", MODULE_VERTICES),
    ("max_edges", MAX_EDGES),
    ("available_ops", list(AVAILABLE_OPS)),
    ("num_repeats", NUM_REPEATS),
    ("train_data_files", []),
    ("valid_data_file", ""),
    ("test_data_file", ""),
    ("sample_data_file", ""),
    ("data_format", "channels_last"),
    ("num_labels", 10),
    ("stem_filter_size", 128),
    ("num_stacks", 3),
    ("num_modules_per_stack", 3),
    ("batch_size", 256),
    ("train_epochs", 108),
    ("train_seconds", 14400.0),
    ("learning_rate", 0.1),
    ("lr_decay_method", "COSINE_BY_STEP"),
    ("momentum", 0.9),
    ("weight_decay", 0.0001),
    ("max_attempts", 5),
    ("intermediate_evaluations", ["0.5"]),
    ("use_tpu", True),
    ("tpu_iterations_per_loop", 100),
    ("tpu_num_shards", 2),
)


def build_config() -> dict[str, Any]:
    """Return a fresh dict of the 25 original configuration values (callers may mutate it)."""
    return {name: (list(value) if isinstance(value, list) else value) for name, value in _DEFAULTS}
