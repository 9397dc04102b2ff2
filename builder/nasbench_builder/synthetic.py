"""Synthetic NAS-Bench-101 datasets: every cell of the space with plausible, deterministic metrics.

The real files cannot be downloaded here, so tests and benchmarks use these, written in the exact original
format (reference §1.2, §1.3, §5): per hash, budgets ascending, three repeats each; hashes in sorted order (the
order the original evaluation assigned work); stored adjacency/ops = the first representative of the original
enumeration (= the canonical key).

Values are plausible, not real: accuracies are ``float32(k / 9984)`` widened to double (evaluation ran on 9,984
images); the halfway point trained less than the final one; longer budgets train longer; the three repeats
differ. Trainable parameters are computed from the network the original model builder makes (stem, 3 stacks
of 3 modules, the channel rule of reference §7.4): they match the real counts of the Inception cell (2,694,282)
and of the issue #23 cell (32,426,634).

Values are drawn once for the whole space and then subset, so a cell has the same metrics in every
file written with the same seed (the 108-epoch file agrees with the full one, a 5-vertex file with both).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nasbench import canonical, space
from nasbench.lib import config
from nasbench.store import layout
from nasbench_builder import records, tfrecord

ALL_EPOCHS = (4, 12, 36, 108)
EVALUATION_IMAGES = 9984
_STEM_CHANNELS = 128
_STACKS = 3
_MODULES_PER_STACK = 3
_NUM_LABELS = 10


@dataclass
class SyntheticDataset:
    """A synthetic Dataset plus the record fields a store does not keep (for writing the original format)."""

    dataset: layout.Dataset
    step0: np.ndarray  # float64[cells, epochs, 3, 3]: train/validation/test accuracy at step 0
    total_time: np.ndarray  # float64[cells, epochs, 3]: wall time of the run, evaluations included


def vertex_channels(input_channels: int, output_channels: int, matrix: np.ndarray) -> list[int]:
    """Channels per vertex: the output's channels split among the vertices feeding it, others take the max of
    their successors (the rule of the original ``compute_vertex_channels``, reference §7.4)."""
    size = len(matrix)
    channels = [0] * size
    channels[0], channels[-1] = input_channels, output_channels
    if size == 2:
        return channels
    feeding = [v for v in range(1, size - 1) if matrix[v, size - 1]]
    share, extra = divmod(output_channels, len(feeding)) if feeding else (0, 0)
    for position, v in enumerate(feeding):
        channels[v] = share + (1 if position < extra else 0)
    for v in range(size - 2, 0, -1):
        if not matrix[v, size - 1]:
            channels[v] = max(channels[w] for w in range(v + 1, size - 1) if matrix[v, w])
    return channels


@functools.lru_cache(maxsize=8192)
def _structure_parameters(num_vertices: int, bits: int) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
    """Parameters of a structure that do not depend on the ops, and per interior vertex the sums of
    ``channels**2`` (times the kernel size for a convolution) and of ``2 * channels`` (its batch norm)."""
    matrix = np.zeros((num_vertices, num_vertices), dtype=np.int8)
    for src, dst in canonical.edges_of(num_vertices, bits):
        matrix[src, dst] = 1
    base = 3 * 3 * 3 * _STEM_CHANNELS + 2 * _STEM_CHANNELS
    squares = [0] * (num_vertices - 2)
    norms = [0] * (num_vertices - 2)
    input_channels = _STEM_CHANNELS
    for stack in range(_STACKS):
        output_channels = _STEM_CHANNELS * 2**stack
        for _ in range(_MODULES_PER_STACK):
            channels = vertex_channels(input_channels, output_channels, matrix)
            for v in range(1, num_vertices - 1):
                if matrix[0, v]:  # 1x1 projection of the module input
                    base += input_channels * channels[v] + 2 * channels[v]
                squares[v - 1] += channels[v] * channels[v]
                norms[v - 1] += 2 * channels[v]
            if matrix[0, num_vertices - 1]:
                base += input_channels * output_channels + 2 * output_channels
            input_channels = output_channels
    return base + input_channels * _NUM_LABELS + _NUM_LABELS, tuple(squares), tuple(norms)


_KERNEL = (9, 1, 0)  # by label: conv3x3, conv1x1, maxpool3x3


def trainable_parameters(key: int) -> int:
    """Parameters of a simplified NAS-Bench-101 network built from the cell: stem, 3 stacks of 3 modules
    (channels doubling per stack), global pooling, dense layer; convolutions with batch norm."""
    num_vertices, bits, labels = canonical.unpack(key)
    base, squares, norms = _structure_parameters(num_vertices, bits)
    for label, square, norm in zip(labels, squares, norms, strict=True):
        if _KERNEL[label]:
            base += _KERNEL[label] * square + norm
    return base


def quantize(accuracy: np.ndarray) -> np.ndarray:
    """Accuracies as float32(k / 9984), widened to float64, k an integer in [0, 9984]."""
    k = np.clip(np.rint(np.asarray(accuracy) * EVALUATION_IMAGES), 0, EVALUATION_IMAGES)
    return (k / EVALUATION_IMAGES).astype(np.float32).astype(np.float64)


def _features(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per cell: conv3x3 count, conv1x1 count, edges, vertices."""
    labels = canonical.label_slots(keys)
    vertices, edges = canonical.vertices_and_edges(keys)
    conv3 = (labels == canonical.OP_LABELS[config.CONV3X3]).sum(axis=1).astype(np.float64)
    conv1 = (labels == canonical.OP_LABELS[config.CONV1X1]).sum(axis=1).astype(np.float64)
    return conv3, conv1, edges.astype(np.float64), vertices.astype(np.float64)


def synthesize(
    epochs: Sequence[int] = ALL_EPOCHS,
    max_vertices: int = canonical.MAX_VERTICES,
    seed: int = 0,
    table: space.SpaceTable | None = None,
) -> SyntheticDataset:
    """A synthetic dataset over the cells of the space with at most ``max_vertices`` vertices.

    Raises:
      ValueError: an epoch budget other than 4, 12, 36, 108, or ``max_vertices`` outside 2..7.
    """
    budgets = tuple(sorted(set(epochs)))
    if not budgets or not set(budgets) <= set(ALL_EPOCHS):
        raise ValueError(f"epochs must be a subset of {list(ALL_EPOCHS)}, got {list(epochs)}")
    if not canonical.MIN_VERTICES <= max_vertices <= canonical.MAX_VERTICES:
        raise ValueError(f"max_vertices must be between 2 and 7, got {max_vertices}")
    table = table if table is not None else space.load_space()
    # Every random draw covers the whole space, in key order, so a cell gets the same values in every subset.
    rng = np.random.Generator(np.random.PCG64(seed))
    everywhere = len(table.keys)
    shape = (everywhere, len(ALL_EPOCHS), layout.NUM_REPEATS)
    cell_noise = rng.normal(0.0, 0.6, everywhere)
    final_noise = rng.normal(0.0, 0.01, everywhere)
    no_conv_final = 0.10 + rng.uniform(0.0, 0.45, everywhere)
    learn = np.clip(rng.normal(1.0, 0.15, everywhere), 0.5, 1.5)  # how fast the cell learns
    validation_noise = rng.normal(0, 0.004, shape)
    test_noise = rng.normal(-0.004, 0.004, shape)
    train_noise = rng.normal(0, 0.004, shape)
    halfway = np.clip(rng.normal(0.9, 0.03, shape), 0.7, 0.99)
    time_noise = np.clip(rng.normal(1, 0.02, shape), 0.9, 1.1)
    half_fraction = np.clip(rng.normal(0.497, 0.002, shape), 0.49, 0.499)
    overhead = 20.0 * np.clip(rng.normal(1, 0.05, shape), 0.8, 1.2)
    step0_draw = rng.normal(0.1, 0.01, (*shape, 3))

    vertices_all, _ = canonical.vertices_and_edges(table.keys)
    chosen = np.flatnonzero(vertices_all <= max_vertices)
    chosen = chosen[np.lexsort(table.hashes[chosen].T[::-1])]  # rows in sorted-hash order
    keys = table.keys[chosen]
    columns = [ALL_EPOCHS.index(e) for e in budgets]
    pick = np.ix_(chosen, columns)
    budget = np.array(budgets, dtype=np.float64)[None, :, None]

    conv3, conv1, edges, vertices = _features(keys)
    score = 0.55 * conv3 + 0.3 * conv1 + 0.25 * edges / config.MAX_EDGES + cell_noise[chosen]
    final108 = np.where(
        (conv3 + conv1) > 0,
        0.80 + 0.14 / (1.0 + np.exp(-(score - 1.5))) + final_noise[chosen],
        no_conv_final[chosen],
    )
    budget_factor = 1.0 - (1.0 - np.array([0.82, 0.91, 0.965, 1.0])[columns])[None, :] * learn[chosen][:, None]
    validation = np.clip(final108[:, None, None] * budget_factor[:, :, None] + validation_noise[pick], 0, 1)
    test = np.clip(validation + test_noise[pick], 0, 1)
    train = np.clip(validation + 0.02 + 0.06 * budget / 108.0 + train_noise[pick], 0, 1)
    parameters = np.array([trainable_parameters(int(key)) for key in keys.tolist()], dtype=np.int64)
    per_epoch = (9.0 + 1.25e-6 * parameters + 0.4 * vertices)[:, None, None]
    final_time = budget * per_epoch * time_noise[pick]

    metrics = np.empty((len(chosen), len(budgets), layout.NUM_REPEATS, len(layout.METRIC_FIELDS)))
    metrics[..., 0] = final_time * half_fraction[pick]
    metrics[..., 1] = quantize(train * halfway[pick])
    metrics[..., 2] = quantize(validation * halfway[pick])
    metrics[..., 3] = quantize(test * halfway[pick])
    metrics[..., 4] = final_time
    metrics[..., 5] = quantize(train)
    metrics[..., 6] = quantize(validation)
    metrics[..., 7] = quantize(test)
    dataset = layout.Dataset(
        hashes=table.hashes[chosen],
        keys=keys,
        representatives=keys,
        parameters=parameters.astype(np.int32),
        metrics=metrics,
        epochs=budgets,
        source={"name": f"synthetic(seed={seed})", "synthetic": True, "seed": seed, "max_vertices": max_vertices},
    )
    return SyntheticDataset(
        dataset=dataset,
        step0=quantize(np.clip(step0_draw[pick], 0, 1)),
        total_time=final_time * 1.03 + overhead[pick],
    )


def record_payloads(synthetic: SyntheticDataset, row: int) -> list[bytes]:
    """The payloads of one cell's records: budgets ascending, three repeats each."""
    data = synthetic.dataset
    key = int(data.keys[row])
    module_hash = data.hashes[row].tobytes().hex()
    adjacency, operations = canonical.adjacency_string(key), canonical.ops_string(key)
    parameters = int(data.parameters[row])
    mark = f"{records.SYNTHETIC_MARK} (seed {data.source.get('seed')})"
    payloads = []
    for budget_index, budget in enumerate(data.epochs):
        for repeat in range(layout.NUM_REPEATS):
            values = data.metrics[row, budget_index, repeat].tolist()
            step0 = synthetic.step0[row, budget_index, repeat].tolist()
            evaluations = (
                records.encode_evaluation(0.0, 0.0, *step0, ""),
                records.encode_evaluation(budget / 2, *values[0:4], ""),
                records.encode_evaluation(float(budget), *values[4:8], mark),
            )
            total_time = float(synthetic.total_time[row, budget_index, repeat])
            metrics = records.encode_metrics(evaluations, parameters, total_time)
            payloads.append(records.encode_payload(module_hash, budget, adjacency, operations, metrics))
    return payloads


def write_tfrecord(
    synthetic: SyntheticDataset, path: str | os.PathLike[str], progress: Callable[[int], None] | None = None
) -> int:
    """Write the dataset in the original file format, atomically; returns the number of records."""
    path = Path(path)
    temp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        with tfrecord.TFRecordWriter(temp) as writer:
            for row in range(synthetic.dataset.cells):
                writer.write_many(record_payloads(synthetic, row))
                if progress is not None and row % 4096 == 4095:
                    progress(writer.count)
            count = writer.count
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    if progress is not None:
        progress(count)
    return count
