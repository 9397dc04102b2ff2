"""One dataset record: its JSON payload, its cell, its metrics (google-research/nasbench, ``nasbench/api.py`` and
``nasbench/lib/model_metrics.proto``). Pure functions.

A payload is UTF-8 JSON of ``[module_hash, epochs, adjacency, operations, base64(ModelMetrics)]``. Every
function here raises ``ValueError`` with a message naming what is wrong; the reader adds file and record index.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import re
import struct
import sys
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from google.protobuf.message import DecodeError

from nasbench import canonical
from nasbench._store.layout import METRIC_FIELDS
from nasbench.lib import config
from nasbench.lib.model_metrics_pb2 import ModelMetrics

_HEX = frozenset("0123456789abcdef")
_OP_LABELS = canonical.OP_LABELS


class Payload(NamedTuple):
    module_hash: str
    epochs: int
    adjacency: str
    operations: str
    metrics: str


# The layout ``json.dumps`` gives a record. A match cannot contain escapes, so its groups are exactly the
# strings JSON decoding would give; anything else takes the general path below, with its precise checks.
_FAST_PAYLOAD = re.compile(
    rb'\["([0-9a-f]{32})", ([1-9][0-9]{0,8}), "([01]{1,64})", "([a-z0-9,-]{1,256})", "([A-Za-z0-9+/]*={0,2})"\]'
)


def split_payload(payload: bytes) -> Payload:
    """The five fields of a record, type-checked."""
    match = _FAST_PAYLOAD.fullmatch(payload)
    if match is not None:
        module_hash, epochs, adjacency, operations, metrics = match.groups()
        return Payload(module_hash.decode(), int(epochs), adjacency.decode(), operations.decode(), metrics.decode())
    try:
        fields = json.loads(payload)
    except UnicodeDecodeError as exc:
        raise ValueError(f"payload is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"payload is not valid JSON ({exc.msg} at character {exc.pos})") from None
    except RecursionError:  # the decoder recurses per nesting level: no record nests more than one level
        raise ValueError("payload is not a record: its JSON nests too deeply to decode") from None
    if type(fields) is not list or len(fields) != 5:
        shape = f"a list of {len(fields)}" if type(fields) is list else type(fields).__name__
        raise ValueError(f"payload must be a JSON list of 5 fields, got {shape}")
    module_hash, epochs, adjacency, operations, metrics = fields
    if type(module_hash) is not str or len(module_hash) != 32 or not _HEX.issuperset(module_hash):
        raise ValueError(f"field 1 (module hash) must be 32 lowercase hex characters, got {module_hash!r}")
    if type(epochs) is not int or epochs <= 0:
        raise ValueError(f"field 2 (epochs) must be a positive integer, got {epochs!r}")
    for position, name, value in ((3, "adjacency", adjacency), (4, "operations", operations), (5, "metrics", metrics)):
        if type(value) is not str:
            raise ValueError(f"field {position} ({name}) must be a string, got {type(value).__name__}")
    return Payload(module_hash, epochs, adjacency, operations, metrics)


def cell_code(adjacency: str, operations: str) -> int:
    """The cell code (see ``nasbench.canonical``) of a record's adjacency and operations strings."""
    size, bits = _adjacency_bits(adjacency)
    return canonical.pack(size, bits, _operation_labels(operations, size))


@functools.lru_cache(maxsize=1 << 16)
def _adjacency_bits(adjacency: str) -> tuple[int, int]:
    size = math.isqrt(len(adjacency))
    if size * size != len(adjacency) or not set(adjacency) <= {"0", "1"}:
        raise ValueError(f"adjacency must be a square number of 0/1 characters, got {adjacency!r}")
    if not canonical.MIN_VERTICES <= size <= canonical.MAX_VERTICES:
        raise ValueError(f"adjacency has {size} vertices; cells of the space have 2 to 7")
    bits = 0
    for src in range(size):
        row = adjacency[src * size : (src + 1) * size]
        for dst, char in enumerate(row):
            if char == "1":
                if dst <= src:
                    raise ValueError(f"adjacency is not upper triangular (entry {src},{dst}): {adjacency!r}")
                bits |= 1 << canonical.edge_bit(src, dst)
    return size, bits


@functools.lru_cache(maxsize=1 << 12)
def _operation_labels(operations: str, size: int) -> tuple[int, ...]:
    ops = operations.split(",")
    if len(ops) != size:
        raise ValueError(f"operations name {len(ops)} ops for a {size}x{size} adjacency: {operations!r}")
    if ops[0] != config.INPUT or ops[-1] != config.OUTPUT:
        raise ValueError(f"operations must start with 'input' and end with 'output', got {operations!r}")
    unknown = [op for op in ops[1:-1] if op not in _OP_LABELS]
    if unknown:
        raise ValueError(f"unknown operation {unknown[0]!r} (available ops = {list(config.AVAILABLE_OPS)})")
    return tuple(_OP_LABELS[op] for op in ops[1:-1])


_STRICT_BASE64 = re.compile(  # what strict_mode accepts:
    r"(?:[A-Za-z0-9+/]{4})+=*"  # whole groups of 4 (and, as CPython does, any number of "=" after them)
    r"|(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)"  # a padded last group
    r"|"  # nothing
)


def _b64decode_by_pattern(encoded: str) -> bytes:
    """``a2b_base64(encoded, strict_mode=True)`` for Python 3.10, which has no strict_mode: the refusals of 3.11's
    and 3.12's (characters outside the alphabet, misplaced padding) by pattern. (3.13 also refuses "=" after a
    whole group.)"""
    if _STRICT_BASE64.fullmatch(encoded) is None:
        raise binascii.Error("only base64 data with padding at its end is allowed")
    return binascii.a2b_base64(encoded)


if sys.version_info >= (3, 11):

    def _strict_b64decode(encoded: str) -> bytes:
        return binascii.a2b_base64(encoded, strict_mode=True)

else:
    _strict_b64decode = _b64decode_by_pattern


def metrics_of(encoded: str) -> tuple[int, tuple[float, ...]]:
    """Trainable parameters and the eight kept values of a base64 ``ModelMetrics`` (finiteness is checked by
    ``check_finite`` on many records at once)."""
    try:
        raw = _strict_b64decode(encoded)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"field 5 (metrics) is not valid base64 ({exc})") from None
    try:
        metrics = ModelMetrics.FromString(raw)
    except DecodeError as exc:
        raise ValueError(f"field 5 (metrics) is not a ModelMetrics message ({exc})") from None
    points = metrics.evaluation_data
    if len(points) < 3:
        raise ValueError(f"metrics have {len(points)} evaluation points, need 3 (step 0, halfway, final)")
    half, final = points[1], points[2]
    return metrics.trainable_parameters, (
        half.training_time,
        half.train_accuracy,
        half.validation_accuracy,
        half.test_accuracy,
        final.training_time,
        final.train_accuracy,
        final.validation_accuracy,
        final.test_accuracy,
    )


SYNTHETIC_MARK = "nasbench-server synthetic data"  # the checkpoint path of every synthetic record's final point


def synthetic_mark(encoded: str) -> str | None:
    """The synthetic-data mark of a record's base64 ``ModelMetrics`` (its final checkpoint path), or None.

    Synthetic files written by ``nasbench synth`` carry it in every record, so a store built from one knows it
    holds synthetic data; the real files' checkpoint paths never start with it.
    """
    try:
        points = ModelMetrics.FromString(binascii.a2b_base64(encoded)).evaluation_data
    except (binascii.Error, ValueError, DecodeError):
        return None
    marks = [point.checkpoint_path for point in points if point.checkpoint_path.startswith(SYNTHETIC_MARK)]
    return marks[0] if marks else None


def first_non_finite(values: np.ndarray) -> tuple[int, str] | None:
    """(row, message) of the first row of ``float64[n, 8]`` metric values holding a NaN or an infinity."""
    bad = ~np.isfinite(values)
    rows = np.flatnonzero(bad.any(axis=1))
    if not rows.size:
        return None
    row = int(rows[0])
    column = int(np.flatnonzero(bad[row])[0])
    return row, f"metric {METRIC_FIELDS[column]} is not finite ({float(values[row, column])!r})"


# --- encoding, for synthetic datasets in the original format --------------------------------------------------

_DOUBLE = struct.Struct("<d")


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int32 negatives are sign-extended to 10 bytes on the wire
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_evaluation(
    current_epoch: float, training_time: float, train: float, validation: float, test: float, checkpoint: str
) -> bytes:
    """Wire bytes of an ``EvaluationData`` with every field set (what ``SerializeToString`` writes)."""
    path = checkpoint.encode()
    return b"".join(
        (
            b"\x09",
            _DOUBLE.pack(current_epoch),
            b"\x11",
            _DOUBLE.pack(training_time),
            b"\x19",
            _DOUBLE.pack(train),
            b"\x21",
            _DOUBLE.pack(validation),
            b"\x29",
            _DOUBLE.pack(test),
            b"\x32",
            _varint(len(path)),
            path,
        )
    )


def encode_metrics(evaluations: Sequence[bytes], trainable_parameters: int, total_time: float) -> bytes:
    """Wire bytes of a ``ModelMetrics`` from encoded evaluations (field order as ``SerializeToString``)."""
    parts: list[bytes] = []
    for evaluation in evaluations:
        parts += (b"\x0a", _varint(len(evaluation)), evaluation)
    parts += (b"\x10", _varint(trainable_parameters), b"\x19", _DOUBLE.pack(total_time))
    return b"".join(parts)


def encode_payload(module_hash: str, epochs: int, adjacency: str, operations: str, metrics: bytes) -> bytes:
    """A record payload as ``json.dumps`` writes it."""
    encoded = base64.b64encode(metrics).decode("ascii")
    return f'["{module_hash}", {epochs}, "{adjacency}", "{operations}", "{encoded}"]'.encode()
