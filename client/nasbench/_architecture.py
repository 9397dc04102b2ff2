"""Sizes of the network a cell stands for, by arithmetic alone (no torch): trainable parameters, multiply-
accumulates and FLOPs, in milliseconds per cell.

The network is the one google-research/nasbench builds (``nasbench/lib/model_builder.py``, ``base_ops.py``):
a stem (3x3 convolution to 128 channels, batch norm, ReLU), 3 stacks of 3 cells with a 2x2 stride-2 max-pool and
doubled channels before stacks 2 and 3, global average pooling, a dense layer to 10 classes. Inside a cell, the
output's channels are split over the vertices feeding it (the remainder to the earliest), every other vertex takes
the largest channel count of its successors (``compute_vertex_channels``); the cell input reaches a vertex through
a 1x1 projection (convolution, batch norm, ReLU) only where it feeds that vertex. Convolutions have no bias; each
batch norm has a trainable scale and offset (2 parameters per channel); the dense layer has a bias.

Multiply-accumulates count the convolutions and the dense layer for one 32x32x3 image; FLOPs are twice that,
the convention of ``torch.utils.flop_counter.FlopCounterMode`` (batch norm, ReLU, pooling and additions are not
counted, as there).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nasbench import canonical
from nasbench.errors import InvalidSpecError
from nasbench.lib import config

_KERNEL = {config.CONV3X3: 3, config.CONV1X1: 1, config.MAXPOOL3X3: 0}  # 0: no convolution


@dataclass(frozen=True)
class Architecture:
    """The network around the cell; the defaults are the original's (``nasbench/lib/config.py``)."""

    stem_channels: int = 128
    stacks: int = 3
    modules_per_stack: int = 3
    num_labels: int = 10
    image_size: int = 32
    image_channels: int = 3

    def __post_init__(self) -> None:
        for name in ("stem_channels", "stacks", "modules_per_stack", "num_labels", "image_size", "image_channels"):
            if getattr(self, name) < 1:
                raise InvalidSpecError(f"{name} must be at least 1, got {getattr(self, name)}")


ORIGINAL = Architecture()


@dataclass(frozen=True)
class NetworkStats:
    """Size of a cell's network: trainable parameters, multiply-accumulates and FLOPs per 32x32x3 image."""

    trainable_parameters: int
    macs: int
    flops: int


def vertex_channels(input_channels: int, output_channels: int, matrix: Any) -> list[int]:
    """Output channels of every vertex of a cell (the rule of the original ``compute_vertex_channels``).

    The vertices feeding the output share its channels, the remainder going one each to the earliest of them;
    every other interior vertex takes the largest count among its interior successors.
    """
    matrix = np.asarray(matrix)
    size = len(matrix)
    channels = [0] * size
    channels[0], channels[size - 1] = input_channels, output_channels
    feeding = [v for v in range(1, size - 1) if matrix[v, size - 1]]
    if not feeding:
        return channels
    share, remainder = divmod(output_channels, len(feeding))
    for rank, vertex in enumerate(feeding):
        channels[vertex] = share + (rank < remainder)
    for vertex in range(size - 2, 0, -1):
        if not matrix[vertex, size - 1]:
            channels[vertex] = max(channels[dst] for dst in range(vertex + 1, size - 1) if matrix[vertex, dst])
    return channels


def checked_cell(spec: Any) -> tuple[np.ndarray, tuple[str, ...]]:
    """The pruned matrix and ops of a valid ``ModelSpec`` whose interior ops are NAS-Bench-101's.

    Raises:
      InvalidSpecError: the spec is not valid (no input→output path after pruning) or names an unknown op.
    """
    if not getattr(spec, "valid_spec", False) or spec.matrix is None:
        raise InvalidSpecError("the spec is not valid (after pruning, no path leads from the input to the output)")
    matrix = np.asarray(spec.matrix)
    ops = tuple(spec.ops)
    if len(ops) != len(matrix) or ops[0] != config.INPUT or ops[-1] != config.OUTPUT:
        raise InvalidSpecError(f"ops must be 'input', one op per interior vertex, 'output'; got {list(ops)}")
    unknown = [op for op in ops[1:-1] if op not in _KERNEL]
    if unknown:
        raise InvalidSpecError(f"unknown op {unknown[0]!r}: expected one of {', '.join(_KERNEL)}")
    return matrix, ops


@dataclass(frozen=True)
class ModulePlan:
    """One cell of the network: its input and output channels, spatial size and per-vertex channels."""

    input_channels: int
    output_channels: int
    size: int  # height = width
    channels: tuple[int, ...]


def plan(matrix: Any, architecture: Architecture = ORIGINAL) -> Iterator[ModulePlan | None]:
    """The cells of the network in order; None marks the 2x2 stride-2 max-pool before stacks 2, 3, ..."""
    channels = architecture.stem_channels
    size = architecture.image_size
    for stack in range(architecture.stacks):
        output_channels = architecture.stem_channels * 2**stack
        if stack > 0:
            size = -(-size // 2)  # 'same' padding: ceil
            yield None
        for _ in range(architecture.modules_per_stack):
            yield ModulePlan(channels, output_channels, size, tuple(vertex_channels(channels, output_channels, matrix)))
            channels = output_channels


@functools.lru_cache(maxsize=65536)
def _structure(
    matrix_bytes: bytes, size: int, architecture: Architecture
) -> tuple[int, int, tuple[tuple[int, ...], ...]]:
    """What a structure costs whatever its ops: (parameters, MACs) of the stem, projections and dense layer, and
    per interior vertex (sum of channels², sum of channels² x pixels, sum of 2 x channels) over all cells."""
    matrix = np.frombuffer(matrix_bytes, dtype=np.int8).reshape(size, size)
    image = architecture.image_size
    parameters = 9 * architecture.image_channels * architecture.stem_channels + 2 * architecture.stem_channels
    macs = 9 * architecture.image_channels * architecture.stem_channels * image * image
    sums = [[0, 0, 0] for _ in range(size - 2)]
    channels = architecture.stem_channels
    for module in plan(matrix, architecture):
        if module is None:
            continue
        pixels = module.size * module.size
        for vertex in range(1, size - 1):
            width = module.channels[vertex]
            if matrix[0, vertex]:  # 1x1 projection of the cell input, with batch norm
                parameters += module.input_channels * width + 2 * width
                macs += module.input_channels * width * pixels
            sums[vertex - 1][0] += width * width
            sums[vertex - 1][1] += width * width * pixels
            sums[vertex - 1][2] += 2 * width
        if matrix[0, size - 1]:
            parameters += module.input_channels * module.output_channels + 2 * module.output_channels
            macs += module.input_channels * module.output_channels * pixels
        channels = module.output_channels
    parameters += channels * architecture.num_labels + architecture.num_labels
    macs += channels * architecture.num_labels
    return parameters, macs, tuple(tuple(entry) for entry in sums)


def stats_of(matrix: Any, ops: Sequence[str], architecture: Architecture = ORIGINAL) -> NetworkStats:
    """``network_stats`` of an already checked, pruned (matrix, ops)."""
    matrix = np.asarray(matrix, dtype=np.int8)
    parameters, macs, sums = _structure(matrix.tobytes(), len(matrix), architecture)
    for op, (squares, square_pixels, norms) in zip(ops[1:-1], sums, strict=True):
        kernel = _KERNEL[op]
        if kernel:
            parameters += kernel * kernel * squares + norms
            macs += kernel * kernel * square_pixels
    return NetworkStats(parameters, macs, 2 * macs)


def network_stats(spec: Any, architecture: Architecture = ORIGINAL) -> NetworkStats:
    """Trainable parameters, multiply-accumulates and FLOPs (one 32x32x3 image) of a cell's network.

    Raises:
      InvalidSpecError: the spec is not valid or names an op outside NAS-Bench-101's.
    """
    matrix, ops = checked_cell(spec)
    return stats_of(matrix, ops, architecture)


def count_parameters(spec: Any, architecture: Architecture = ORIGINAL) -> int:
    """Trainable parameters of a cell's network, as the dataset's ``trainable_parameters`` counts them."""
    return network_stats(spec, architecture).trainable_parameters


def stats_of_keys(keys: np.ndarray, architecture: Architecture = ORIGINAL) -> tuple[np.ndarray, np.ndarray]:
    """(trainable parameters, MACs) of many cells of the space at once, by canonical key (int64 arrays): each
    structure is solved once, the ops are weighed for all its labellings together (the whole space in seconds)."""
    keys = np.asarray(keys, dtype=np.uint64)
    structures, inverse = np.unique(keys >> np.uint64(canonical.BITS_SHIFT), return_inverse=True)
    interior = canonical.MAX_VERTICES - 2
    fixed = np.zeros((len(structures), 2), dtype=np.int64)
    sums = np.zeros((len(structures), interior, 3), dtype=np.int64)  # per interior vertex, vertex 1 first
    for index, structure in enumerate(structures.tolist()):
        num_vertices, bits, _ = canonical.unpack(structure << canonical.BITS_SHIFT | _ANY_LABELS)
        matrix = np.zeros((num_vertices, num_vertices), dtype=np.int8)
        for src, dst in canonical.edges_of(num_vertices, bits):
            matrix[src, dst] = 1
        parameters, macs, per_vertex = _structure(matrix.tobytes(), num_vertices, architecture)
        fixed[index] = parameters, macs
        if per_vertex:
            sums[index, : len(per_vertex)] = per_vertex
    slots = canonical.label_slots(keys)  # last interior vertex first, -1 past the interior
    count = (slots >= 0).sum(axis=1, keepdims=True)
    position = np.arange(interior)[None, :]
    labels = np.where(position < count, np.take_along_axis(slots, np.maximum(count - 1 - position, 0), 1), -1)
    squared = np.array([_KERNEL[op] ** 2 for op in config.AVAILABLE_OPS] + [0])[labels]  # label -1: no vertex
    per_cell = sums[inverse]
    parameters = fixed[inverse, 0] + (squared * per_cell[:, :, 0] + (squared > 0) * per_cell[:, :, 2]).sum(axis=1)
    macs = fixed[inverse, 1] + (squared * per_cell[:, :, 1]).sum(axis=1)
    return parameters, macs


_ANY_LABELS = 0  # unpack needs a code; the labels of a structure's code do not matter here
