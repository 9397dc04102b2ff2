"""The network behind every NAS-Bench-101 cell, in PyTorch, exact to the dataset; its size by arithmetic; the
paper's training protocol (``nasbench train``, ``NASBench.evaluate``).

Usage::

    from nasbench import api, model

    spec = api.ModelSpec(matrix, ops)
    model.count_parameters(spec)        # 2694282 for the Inception-like cell: the dataset's trainable_parameters
    model.network_stats(spec)           # NetworkStats(trainable_parameters=..., macs=..., flops=...)
    network = model.build(spec)         # torch.nn.Module (extra 'train': pip install 'nasbench-server[train]')

``count_parameters``, ``network_stats`` and ``vertex_channels`` are arithmetic and need no torch; ``build``
imports torch when called. docs/network.md describes the network, the protocol and every translation from
TensorFlow.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from nasbench._architecture import (
    ORIGINAL,
    Architecture,
    NetworkStats,
    count_parameters,
    network_stats,
    stats_of_keys,
    vertex_channels,
)
from nasbench.model._protocol import DEFAULT, Options, Protocol, learning_rate

if TYPE_CHECKING:
    import numpy as np

    from nasbench.model._network import Network
    from nasbench.model._training import Runner
    from nasbench.model.cifar import Splits

__all__ = [
    "DEFAULT",
    "ORIGINAL",
    "Architecture",
    "NetworkStats",
    "Options",
    "Protocol",
    "augment",
    "build",
    "count_parameters",
    "learning_rate",
    "network_stats",
    "stats_of_keys",
    "train_and_evaluate",
    "trainer",
    "vertex_channels",
]


def build(spec: object, architecture: Architecture = ORIGINAL) -> Network:
    """The network the original trained for a valid ``ModelSpec``, freshly initialised as the original did.

    Its trainable parameters are ``count_parameters(spec, architecture)``; with the default architecture, the
    dataset's ``trainable_parameters`` of the cell.

    Raises:
      InvalidSpecError: the spec is not valid or names an op outside NAS-Bench-101's.
      ImportError: torch is not installed (pip install 'nasbench-server[train]').
    """
    from nasbench.model import _network

    return _network.build(spec, architecture)


def train_and_evaluate(
    spec: object,
    data: Splits,
    protocol: Protocol = DEFAULT,
    options: Options | None = None,
    model_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Train a cell's network from scratch with the protocol on CIFAR-10 (``nasbench.model.cifar.load``) and
    return the original's metadata dict (``trainable_params``, ``total_time``, ``evaluation_results``).

    Raises:
      ImportError: torch is not installed (pip install 'nasbench-server[train]').
    """
    from nasbench.model import _training

    return _training.train_and_evaluate(spec, data, protocol, options or Options(), model_dir)


def trainer(network: Network, protocol: Protocol = DEFAULT, options: Options | None = None) -> Runner:
    """One training run of ``network`` with the protocol, step by step (``train_step``, ``evaluate``): what
    ``train_and_evaluate`` drives, for timing or custom loops.

    Raises:
      ImportError: torch is not installed (pip install 'nasbench-server[train]').
    """
    from nasbench.model import _training

    return _training.Runner(network, protocol, options or Options())


def augment(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The protocol's augmentation of a batch (uint8, N x 3 x 32 x 32): pad 4, random 32x32 crop, random flip."""
    from nasbench.model import _training

    return _training.augment(images, rng)
