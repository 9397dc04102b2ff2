"""Synthetic NAS-Bench-101 datasets: every cell of the space with deterministic metrics whose analyses resemble
the real dataset's published statistics.

The real files cannot be downloaded here, so tests, benchmarks and the embedded default store use these, written
in the exact original format (the JSON rows of google-research/nasbench's ``nasbench/api.py``, metrics as
``nasbench/lib/model_metrics.proto``): per hash, budgets ascending, three repeats each; hashes
in sorted order (the order the original evaluation assigned work); stored adjacency/ops = the first
representative of the original enumeration (= the canonical key).

They are SYNTHETIC, and say so: the source metadata carries ``synthetic: True`` and ``synthetic_version``
(``SYNTHETIC_VERSION``, bumped whenever the model changes, so cached stores rebuild). The generative model and
the statistics it was fitted to are documented in docs/synthetic-data.md; in short:

- a latent *quality* per cell, smooth in the cell's structure (op counts, depth, edges, parameters, plus a
  random effect shared by every labelling of a graph and a small per-cell residual): cells one edit apart get
  similar accuracy (locality), as in the real space;
- a latent *learning speed* (shallow, small cells learn early), which weighs on the short budgets only;
- per budget, a score = quality + speed share + a budget-specific effect (shared between 4 and 12 epochs, and
  between 36 and 108), plus at 108 epochs a share of the number of operations (with full training, cells with
  more operations pay off), mapped through a saturating curve (a Gumbel CDF between chance, 0.1, and a
  ceiling). The saturation compresses the top cells' true accuracies while their noise stays, so among the top
  cells the budgets disagree (the poster's low top-1% correlations) while over all cells they agree;
- at 108 epochs the top of the scores is compressed further: the best cells crowd just under a top accuracy
  (dozens within 0.001 of the best mean test accuracy, thousands within 0.005), so a search can end within
  0.001 of the optimum in about half of its runs, as the best optimizers do on the real data (Ying et al., 2019,
  benchmarking section: the ECDF of the final test regret over 500 runs);
- repeats add noise whose scale grows with the distance below the top; at the top it is small, fitted so that
  the best single runs lie where the real ones do (validation 0.9518, test 0.9466, against best means of 0.9506
  and 0.9432): a lucky repeat then cannot lure a search far from the best cells;
- test accuracy = validation accuracy of the same run, minus a small offset, plus its own noise, on the run's
  noise scale.

Values are plausible, not real: accuracies are ``float32(k / 9984)`` widened to double (evaluation ran on 9,984
images) and times are float32-exact, as in the real files; the halfway point trained less than the final one;
longer budgets train longer; the three repeats differ. Trainable parameters are computed from the network the
original model builder makes (stem, 3 stacks of 3 modules, the channel rule of ``compute_vertex_channels`` in
google-research/nasbench's ``nasbench/lib/model_builder.py``): they match the real counts of the Inception cell
(2,694,282) and of the real data's best cell by mean test accuracy, hash 02e5a024… (32,426,634). Training time follows
parameters and vertex count, in the real range (about 280 s to 5,400 s at 108 epochs).

Every random draw covers the whole space in key order (one independent stream per part of the model), so a
cell has the same metrics in every file written with the same seed (the 108-epoch file agrees with the full
one, a 5-vertex file with both).
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nasbench import canonical, files, space
from nasbench._store import layout
from nasbench.lib import config
from nasbench_builder import records, tfrecord

ALL_EPOCHS = (4, 12, 36, 108)
EVALUATION_IMAGES = 9984
SYNTHETIC_VERSION = 3  # the generative model's version: recorded in the data, part of cached stores' names
_STEM_CHANNELS = 128
_STACKS = 3
_MODULES_PER_STACK = 3
_NUM_LABELS = 10


@functools.cache
def generator_digest() -> str:
    """The first 12 hex digits of this module's SHA-256. Cached stores are named by it as well as by
    ``SYNTHETIC_VERSION``: a store written by any other revision of the generator (a changed parameter, even one
    that forgot the version) is never served in place of this one's."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]


@dataclass
class SyntheticDataset:
    """A synthetic Dataset plus the record fields a store does not keep (for writing the original format)."""

    dataset: layout.Dataset
    step0: np.ndarray  # float64[cells, epochs, 3, 3]: train/validation/test accuracy at step 0
    total_time: np.ndarray  # float64[cells, epochs, 3]: wall time of the run, evaluations included


def vertex_channels(input_channels: int, output_channels: int, matrix: np.ndarray) -> list[int]:
    """Channels per vertex: the output's channels split among the vertices feeding it, others take the max of
    their successors (the rule of ``compute_vertex_channels`` in google-research/nasbench's
    ``nasbench/lib/model_builder.py``)."""
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


def parameters_of(keys: np.ndarray) -> np.ndarray:
    """int64 trainable parameters of many cells (``trainable_parameters``, one structure solved at a time)."""
    keys = np.asarray(keys, dtype=np.uint64)
    structures, inverse = np.unique(keys >> np.uint64(canonical.BITS_SHIFT), return_inverse=True)
    base = np.zeros(len(structures), dtype=np.int64)
    squares = np.zeros((len(structures), canonical.MAX_VERTICES - 2), dtype=np.int64)
    norms = np.zeros_like(squares)
    for index, structure in enumerate(structures.tolist()):
        num_vertices = structure >> (canonical.VERTICES_SHIFT - canonical.BITS_SHIFT)
        bits = structure & ((1 << (canonical.VERTICES_SHIFT - canonical.BITS_SHIFT)) - 1)
        base[index], square, norm = _structure_parameters(num_vertices, bits)
        squares[index, : len(square)] = square
        norms[index, : len(norm)] = norm
    slots = canonical.label_slots(keys)  # last interior vertex first, -1 past the interior
    interior = (slots >= 0).sum(axis=1, keepdims=True)
    vertex = np.arange(slots.shape[1])[None, :]  # interior vertex 1 first
    labels = np.where(vertex < interior, np.take_along_axis(slots, np.maximum(interior - 1 - vertex, 0), 1), -1)
    kernel = np.where(labels >= 0, np.asarray(_KERNEL)[np.maximum(labels, 0)], 0)
    parameters: np.ndarray = (
        base[inverse] + (kernel * squares[inverse]).sum(axis=1) + ((kernel > 0) * norms[inverse]).sum(axis=1)
    )
    return parameters


def quantize(accuracy: np.ndarray) -> np.ndarray:
    """Accuracies as float32(k / 9984), widened to float64, k an integer in [0, 9984]."""
    k = np.clip(np.rint(np.asarray(accuracy) * EVALUATION_IMAGES), 0, EVALUATION_IMAGES)
    quantized: np.ndarray = (k / EVALUATION_IMAGES).astype(np.float32).astype(np.float64)
    return quantized


def _float32(values: np.ndarray) -> np.ndarray:
    """Times as the real files hold them: float32 values widened to double."""
    return np.asarray(values).astype(np.float32).astype(np.float64)


# --- the generative model and the real statistics it was fitted to: docs/synthetic-data.md ------------------

_CHANCE = 0.1  # accuracy of a network that learned nothing (10 classes)
_BELOW_CHANCE = 0.1  # how far below chance a run may fall, relative to its noise
# Latent quality: weights of the structure's features (standardized afterwards).
_QUALITY = {"conv3x3": 0.5, "conv1x1": 0.3, "maxpool": -0.3, "depth": 0.3, "log_parameters": 0.2, "edges": 0.05}
_DEPTH_CAP = 4  # depth helps up to 4 edges on the longest input→output path
_QUALITY_STRUCTURE, _QUALITY_CELL = 0.4, 0.5  # random effects: per graph (all labellings), per cell
# Latent learning speed: deep and large cells learn late.
_SPEED = {"depth": 1.0, "log_parameters": 0.5, "structure": 0.3, "cell": 0.5}
# Per budget (4, 12, 36, 108 epochs): speed share, budget-specific share and its part shared with the
# neighbouring budget (4 with 12, 36 with 108), operations share, and the saturating map: median, ceiling,
# steepness.
_SPEED_SHARE = (1.010, 0.669, 0.245, 0.0)
_OWN_SHARE = (0.593, 0.306, 0.00259, 0.129)
_OWN_SHARED = (0.971, 0.965, 0.771, 0.931)
_OPS_SHARE = (0.0, 0.0, 0.0, 0.2)  # of the number of operations (interior vertices), standardized
_MEDIAN = (0.2957, 0.5825, 0.8650, 0.9152)
_CEILING = (0.5565, 0.7965, 0.9016, 0.9700)
_STEEPNESS = (0.626, 1.551, 1.012, 0.415)
# Top compression: past ``_TOP_START`` (a score; infinite: none) the score grows at ``_TOP_SLOPE`` only (a softplus
# bend of width ``_TOP_SOFTNESS``), so the best cells crowd just under the accuracy the map gives there, their
# ``top``; for budgets without one, ``top`` is the ceiling.
_TOP_START = (float("inf"), float("inf"), float("inf"), 2.45)
_TOP_SLOPE, _TOP_SOFTNESS = 0.1, 0.3
# Repeat noise (standard deviation): a floor plus ``slope * (top - accuracy) ** power``.
_NOISE_FLOOR = (0.0570, 0.0371, 0.00433, 0.00045)
_NOISE_SLOPE = (0.0140, 0.217, 0.00417, 0.015)
_NOISE_POWER = (1.0, 1.0, 1.0, 0.5)
# Test accuracy = the run's validation accuracy - offset + noise of ``_TEST_NOISE`` times the run's noise scale.
_TEST_OFFSET, _TEST_NOISE = 0.0078, 1.0
_TRAIN_CLOSING = (0.1, 0.35, 0.75, 0.97)  # share of the gap to 1.0 the training accuracy closes
# Training time at 108 epochs: seconds = base + per million parameters + per interior vertex, times noise.
_TIME_BASE, _TIME_PER_MILLION, _TIME_PER_VERTEX, _TIME_SPREAD = 258.0, 70.6, 185.0, 0.04
_STREAMS = {"structure": 1, "cell": 2, "time": 3, "budget": 10}  # independent random streams of the model


def _floor(accuracy: np.ndarray) -> np.ndarray:
    """Accuracies below chance squeezed towards it (a network that learned nothing scores about 0.1), order kept;
    then clipped to [0, 1]."""
    squeezed = np.where(accuracy < _CHANCE, _CHANCE - _BELOW_CHANCE * (_CHANCE - accuracy), accuracy)
    return np.clip(squeezed, 0, 1)


def _stream(seed: int, part: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, part])))


def _standard(values: np.ndarray) -> np.ndarray:
    standard: np.ndarray = (values - values.mean()) / values.std()
    return standard


def _depths(keys: np.ndarray) -> np.ndarray:
    """Longest input→output path (edges) of each cell, solved once per graph."""
    structures, inverse = np.unique(keys >> np.uint64(canonical.BITS_SHIFT), return_inverse=True)
    depth = np.zeros(len(structures), dtype=np.int64)
    for index, structure in enumerate(structures.tolist()):
        num_vertices = structure >> (canonical.VERTICES_SHIFT - canonical.BITS_SHIFT)
        bits = structure & ((1 << (canonical.VERTICES_SHIFT - canonical.BITS_SHIFT)) - 1)
        longest = [0] * num_vertices
        for src, dst in canonical.edges_of(num_vertices, bits):  # by destination: longest[src] is final
            longest[dst] = max(longest[dst], longest[src] + 1)
        depth[index] = longest[-1]
    return depth[inverse]


@dataclass(frozen=True)
class _Latent:
    """The whole space's latent variables, in key order."""

    quality: np.ndarray  # float64[cells], standardized
    speed: np.ndarray  # float64[cells], standardized
    early: np.ndarray  # float64[cells]: budget effect shared by 4 and 12 epochs
    late: np.ndarray  # float64[cells]: budget effect shared by 36 and 108 epochs
    parameters: np.ndarray  # int64[cells]
    interior: np.ndarray  # int64[cells]: interior vertices
    operations: np.ndarray  # float64[cells]: interior vertices, standardized


def _latent(keys: np.ndarray, seed: int) -> _Latent:
    labels = canonical.label_slots(keys)
    vertices, edges = canonical.vertices_and_edges(keys)
    depth = _depths(keys)
    parameters = parameters_of(keys)
    log_parameters = _standard(np.log(parameters.astype(np.float64)))
    _, structure = np.unique(keys >> np.uint64(canonical.BITS_SHIFT), return_inverse=True)
    shared = _stream(seed, _STREAMS["structure"]).standard_normal((2, structure.max() + 1))
    own = _stream(seed, _STREAMS["cell"]).standard_normal((4, len(keys)))
    count = {
        name: (labels == canonical.OP_LABELS[op]).sum(axis=1)
        for name, op in (("conv3x3", config.CONV3X3), ("conv1x1", config.CONV1X1), ("maxpool", config.MAXPOOL3X3))
    }
    quality = (
        sum(_QUALITY[name] * count[name] for name in count)
        + _QUALITY["depth"] * np.minimum(depth, _DEPTH_CAP)
        + _QUALITY["log_parameters"] * log_parameters
        + _QUALITY["edges"] * edges
        + _QUALITY_STRUCTURE * shared[0][structure]
        + _QUALITY_CELL * own[0]
    )
    speed = (
        -_SPEED["depth"] * depth
        - _SPEED["log_parameters"] * log_parameters
        + _SPEED["structure"] * shared[1][structure]
        + _SPEED["cell"] * own[1]
    )
    interior = vertices - 2
    operations = _standard(interior.astype(np.float64))
    return _Latent(_standard(quality), _standard(speed), own[2], own[3], parameters, interior, operations)


def _accuracy(score: np.ndarray, budget_index: int) -> np.ndarray:
    """The saturating map of a budget: a Gumbel CDF between chance and the ceiling, the median at score 0."""
    ceiling, median = _CEILING[budget_index], _MEDIAN[budget_index]
    scale = -np.log((median - _CHANCE) / (ceiling - _CHANCE))
    accuracy: np.ndarray = _CHANCE + (ceiling - _CHANCE) * np.exp(-scale * np.exp(-_STEEPNESS[budget_index] * score))
    return accuracy


def _compressed(score: np.ndarray, start: float) -> np.ndarray:
    """Scores past ``start`` grow at ``_TOP_SLOPE`` only (a softplus bend of width ``_TOP_SOFTNESS``); an infinite
    start leaves them as they are."""
    bent: np.ndarray = score - (1 - _TOP_SLOPE) * _TOP_SOFTNESS * np.logaddexp(0, (score - start) / _TOP_SOFTNESS)
    return bent


def _budget_runs(latent: _Latent, budget_index: int, seed: int, rows: np.ndarray) -> dict[str, np.ndarray]:
    """One budget's validation, test and train accuracy (float64[rows, 3 repeats], unquantized) and draws for
    the other fields; every draw covers the whole space, then ``rows`` are taken."""
    rng = _stream(seed, _STREAMS["budget"] + budget_index)
    everywhere = len(latent.quality)
    repeats = (everywhere, layout.NUM_REPEATS)
    own = rng.standard_normal(everywhere)
    noise, test_noise, train_noise = (rng.standard_normal(repeats) for _ in range(3))
    shared = latent.early if budget_index < 2 else latent.late
    rho = _OWN_SHARED[budget_index]
    score = _standard(
        latent.quality
        + _SPEED_SHARE[budget_index] * latent.speed
        + _OPS_SHARE[budget_index] * latent.operations
        + _OWN_SHARE[budget_index] * (rho * shared + np.sqrt(1 - rho**2) * own)
    )[rows]
    start = _TOP_START[budget_index]
    true = _accuracy(_compressed(score, start), budget_index)
    gap = np.maximum(float(_accuracy(np.array(start), budget_index)) - true, 0)  # below the top (the ceiling if none)
    sigma = (_NOISE_FLOOR[budget_index] + _NOISE_SLOPE[budget_index] * gap ** _NOISE_POWER[budget_index])[:, None]
    validation = _floor(true[:, None] + sigma * noise[rows])
    test = _floor(validation - _TEST_OFFSET + _TEST_NOISE * sigma * test_noise[rows])
    train = np.clip(validation + (1 - validation) * _TRAIN_CLOSING[budget_index] + 0.002 * train_noise[rows], 0, 1)
    return {
        "validation": validation,
        "test": test,
        "train": train,
        "halfway": np.clip(rng.normal(0.9, 0.03, repeats), 0.7, 0.99)[rows],
        "time_noise": np.clip(rng.normal(1, 0.01, repeats), 0.95, 1.05)[rows],
        "half_fraction": np.clip(rng.normal(0.497, 0.002, repeats), 0.49, 0.499)[rows],
        "overhead": 20.0 * np.clip(rng.normal(1, 0.05, repeats), 0.8, 1.2)[rows],
        "step0": rng.normal(0.1, 0.01, (*repeats, 3))[rows],
    }


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
    latent = _latent(table.keys, seed)  # the whole space, so a cell's values never depend on the subset
    vertices_all, _ = canonical.vertices_and_edges(table.keys)
    chosen = np.flatnonzero(vertices_all <= max_vertices)
    chosen = chosen[np.lexsort(table.hashes[chosen].T[::-1])]  # rows in sorted-hash order
    keys = table.keys[chosen]
    parameters = latent.parameters[chosen]
    time_factor = np.exp(_stream(seed, _STREAMS["time"]).normal(0.0, _TIME_SPREAD, len(table.keys)))[chosen]
    time_108 = (
        _TIME_BASE + _TIME_PER_MILLION * parameters / 1e6 + _TIME_PER_VERTEX * latent.interior[chosen]
    ) * time_factor
    shape = (len(chosen), len(budgets), layout.NUM_REPEATS)
    metrics = np.empty((*shape, len(layout.METRIC_FIELDS)))
    step0 = np.empty((*shape, 3))
    total_time = np.empty(shape)
    for column, budget in enumerate(budgets):
        runs = _budget_runs(latent, ALL_EPOCHS.index(budget), seed, chosen)
        final_time = _float32(time_108[:, None] * (budget / 108) * runs["time_noise"])
        metrics[:, column, :, 0] = _float32(final_time * runs["half_fraction"])
        metrics[:, column, :, 1] = quantize(runs["train"] * runs["halfway"])
        metrics[:, column, :, 2] = quantize(runs["validation"] * runs["halfway"])
        metrics[:, column, :, 3] = quantize(runs["test"] * runs["halfway"])
        metrics[:, column, :, 4] = final_time
        metrics[:, column, :, 5] = quantize(runs["train"])
        metrics[:, column, :, 6] = quantize(runs["validation"])
        metrics[:, column, :, 7] = quantize(runs["test"])
        step0[:, column] = quantize(np.clip(runs["step0"], 0, 1))
        total_time[:, column] = _float32(final_time * 1.03 + runs["overhead"])
    dataset = layout.Dataset(
        hashes=table.hashes[chosen],
        keys=keys,
        representatives=keys,
        parameters=parameters.astype(np.int32),
        metrics=metrics,
        epochs=budgets,
        source={
            "name": f"synthetic-v{SYNTHETIC_VERSION}(seed={seed})",
            "synthetic": True,
            "synthetic_version": SYNTHETIC_VERSION,
            "generator": generator_digest(),
            "seed": seed,
            "max_vertices": max_vertices,
        },
    )
    return SyntheticDataset(dataset=dataset, step0=step0, total_time=total_time)


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
                records.encode_evaluation(0.0, 0.0, step0[0], step0[1], step0[2], ""),
                records.encode_evaluation(budget / 2, values[0], values[1], values[2], values[3], ""),
                records.encode_evaluation(float(budget), values[4], values[5], values[6], values[7], mark),
            )
            total_time = float(synthetic.total_time[row, budget_index, repeat])
            metrics = records.encode_metrics(evaluations, parameters, total_time)
            payloads.append(records.encode_payload(module_hash, budget, adjacency, operations, metrics))
    return payloads


def write_tfrecord(
    synthetic: SyntheticDataset, path: str | os.PathLike[str], progress: Callable[[int], None] | None = None
) -> int:
    """Write the dataset in the original file format, atomically; returns the number of records."""
    with files.atomic_path(path) as temp, tfrecord.TFRecordWriter(temp) as writer:
        for row in range(synthetic.dataset.cells):
            writer.write_many(record_payloads(synthetic, row))
            if progress is not None and row % 4096 == 4095:
                progress(writer.count)
        count = writer.count
    if progress is not None:
        progress(count)
    return count
