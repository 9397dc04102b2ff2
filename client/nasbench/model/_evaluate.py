"""``NASBench.evaluate``: the original's meaning (``nasbench/api.py``), on PyTorch: train the cell from scratch with
the protocol and network of the config (``train_epochs``, ``batch_size``, ``learning_rate``, ``stem_filter_size``,
``num_stacks``, ... as the original read them), write ``model_dir/metadata.json``, return the final evaluation as
``query()`` would."""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nasbench import files
from nasbench._architecture import Architecture, checked_cell
from nasbench._cache import downloads_folder
from nasbench.errors import ConfigurationError
from nasbench.model import cifar
from nasbench.model._protocol import Options, Protocol

CIFAR_ENV = "NASBENCH_CIFAR10"


def cifar_location() -> Path:
    """$NASBENCH_CIFAR10, else where ``nasbench download cifar10`` puts the archive."""
    if os.environ.get(CIFAR_ENV):
        return Path(os.environ[CIFAR_ENV])
    return downloads_folder() / cifar.ARCHIVE_NAME


def evaluate(
    spec: Any, model_dir: str | os.PathLike[str], config: Mapping[str, Any], device: str = "cpu"
) -> dict[str, Any]:
    """Train and evaluate ``spec`` once; see ``NASBench.evaluate``.

    Raises:
      InvalidSpecError: the spec is not valid or names an unknown op.
      CifarError: CIFAR-10 is missing or damaged.
      ConfigurationError: the config asks for something the protocol does not build.
      ImportError: torch is not installed.
    """
    checked_cell(spec)
    protocol = Protocol.from_config(config)
    try:
        architecture = Architecture(
            stem_channels=int(config["stem_filter_size"]),
            stacks=int(config["num_stacks"]),
            modules_per_stack=int(config["num_modules_per_stack"]),
            num_labels=int(config["num_labels"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigurationError(f"config: {exc}") from None
    if importlib.util.find_spec("torch") is None:
        raise ImportError("NASBench.evaluate trains with PyTorch: pip install 'nasbench-server[train]'")
    data = cifar.load(cifar_location())
    from nasbench.model import _training

    folder = Path(model_dir)
    options = Options(device=device, architecture=architecture)
    metadata = _training.train_and_evaluate(spec, data, protocol, options, folder)
    files.write_atomically(folder / "metadata.json", lambda handle: handle.write(json.dumps(metadata).encode()))
    final = metadata["evaluation_results"][-1]
    return {
        "module_adjacency": spec.matrix,
        "module_operations": spec.ops,
        "trainable_parameters": metadata["trainable_params"],
        "training_time": final["training_time"],
        "train_accuracy": final["train_accuracy"],
        "validation_accuracy": final["validation_accuracy"],
        "test_accuracy": final["test_accuracy"],
    }
