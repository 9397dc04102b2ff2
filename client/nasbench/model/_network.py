"""The network of a cell as a ``torch.nn.Module``, layer for layer the one google-research/nasbench trained
(``nasbench/lib/model_builder.py``, ``base_ops.py``); see ``nasbench.model`` for the rules.

Translated to PyTorch:

- batch norm: TensorFlow's ``momentum=0.997`` keeps 0.997 of the old moving average, PyTorch's ``momentum`` is
  the weight of the *new* batch statistic: 1 - 0.997 = 0.003. The original asks for ``epsilon=1e-5``;
  ``tf.layers.batch_normalization`` runs the fused kernel there, whose wrapper raises any epsilon below
  1.001e-5 to 1.001e-5 (a cuDNN floor), so 1.001e-5 is what the dataset's networks used;
- convolution kernels: ``tf.variance_scaling_initializer()`` (scale 1, fan-in, truncated normal): a normal cut at
  two standard deviations, its standard deviation sqrt(1 / fan_in) / 0.8796 so that the truncated one is
  sqrt(1 / fan_in); the dense layer: Glorot uniform kernel, zero bias (``tf.layers.dense``'s defaults);
- 'same' padding: 1 pixel for a 3x3 convolution or max-pool with stride 1 (max-pool pads with -inf in both);
  the 2x2 stride-2 max-pool of an even size pads nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from nasbench._architecture import ORIGINAL, Architecture, ModulePlan, checked_cell, plan
from nasbench.lib import config

BN_MOMENTUM = 1.0 - 0.997  # base_ops.BN_MOMENTUM, as PyTorch means it
BN_EPSILON = 1.001e-5  # base_ops.BN_EPSILON = 1e-5, as TensorFlow's fused batch norm applies it
_TRUNCATED_NORMAL_STD = 0.87962566103423978  # standard deviation of a unit normal cut at +-2


def _variance_scaling_(weight: torch.Tensor) -> None:
    fan_in = weight.shape[1] * weight.shape[2] * weight.shape[3]
    std = math.sqrt(1.0 / fan_in) / _TRUNCATED_NORMAL_STD
    nn.init.trunc_normal_(weight, mean=0.0, std=std, a=-2.0 * std, b=2.0 * std)


class ConvBnRelu(nn.Sequential):
    """Convolution (no bias, 'same' padding, stride 1), batch norm, ReLU: ``base_ops.conv_bn_relu``."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int) -> None:
        conv = nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False)
        _variance_scaling_(conv.weight)
        super().__init__(conv, nn.BatchNorm2d(out_channels, eps=BN_EPSILON, momentum=BN_MOMENTUM), nn.ReLU())


def _op(name: str, channels: int) -> nn.Module:
    if name == config.CONV3X3:
        return ConvBnRelu(channels, channels, 3)
    if name == config.CONV1X1:
        return ConvBnRelu(channels, channels, 1)
    return nn.MaxPool2d(3, stride=1, padding=1)  # checked_cell admits no other op


class Cell(nn.Module):
    """One cell (the original's module): interior vertices sum their inputs (wider ones truncated to the
    vertex's channels), the output concatenates the vertices feeding it and adds the projected input if the
    input feeds it directly."""

    def __init__(self, matrix: np.ndarray, ops: Sequence[str], module: ModulePlan) -> None:
        super().__init__()
        size = len(matrix)
        self.size = size
        self.channels = module.channels
        # per interior vertex: the interior vertices feeding it, and whether the cell input does
        self.sources = [[src for src in range(1, t) if matrix[src, t]] for t in range(size)]
        self.fed_by_input = [bool(matrix[0, t]) for t in range(size)]
        self.to_output = [t for t in range(1, size - 1) if matrix[t, size - 1]]
        self.projections = nn.ModuleDict(
            {
                str(t): ConvBnRelu(module.input_channels, module.channels[t], 1)
                for t in range(1, size)
                if matrix[0, t]
            }
        )
        self.ops = nn.ModuleDict({str(t): _op(ops[t], module.channels[t]) for t in range(1, size - 1)})

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        tensors = [inputs]
        for t in range(1, self.size - 1):
            width = self.channels[t]
            summed = [tensors[src][:, :width] for src in self.sources[t]]
            if self.fed_by_input[t]:
                summed.append(self.projections[str(t)](inputs))
            total = summed[0]
            for tensor in summed[1:]:
                total = total + tensor
            tensors.append(self.ops[str(t)](total))
        last = self.size - 1
        if not self.to_output:  # the input alone feeds the output
            return self.projections[str(last)](inputs)  # type: ignore[no-any-return]
        feeding = [tensors[t] for t in self.to_output]
        outputs = torch.cat(feeding, dim=1) if len(feeding) > 1 else feeding[0]
        if self.fed_by_input[last]:
            outputs = outputs + self.projections[str(last)](inputs)
        return outputs


class Network(nn.Module):
    """The whole network of a cell: stem, stacks of cells with max-pools between them, pooling, dense layer."""

    def __init__(self, matrix: np.ndarray, ops: Sequence[str], architecture: Architecture = ORIGINAL) -> None:
        super().__init__()
        self.stem = ConvBnRelu(architecture.image_channels, architecture.stem_channels, 3)
        layers: list[nn.Module] = []
        channels = architecture.stem_channels
        for module in plan(matrix, architecture):
            if module is None:
                layers.append(nn.MaxPool2d(2, stride=2, ceil_mode=True))
            else:
                layers.append(Cell(matrix, ops, module))
                channels = module.output_channels
        self.cells = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, architecture.num_labels)
        nn.init.xavier_uniform_(self.classifier.weight)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.cells(self.stem(images))
        return self.classifier(features.mean(dim=(2, 3)))  # type: ignore[no-any-return]


def build(spec: object, architecture: Architecture = ORIGINAL) -> Network:
    """The network of a valid ``ModelSpec`` (see ``nasbench.model.build``)."""
    matrix, ops = checked_cell(spec)
    return Network(matrix, ops, architecture)
