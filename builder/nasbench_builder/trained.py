"""Training results as dataset records: the original's ``.tfrecord`` format (google-research/nasbench,
``nasbench/api.py`` and ``lib/model_metrics.proto``), one record per budget and repeat, which ``nasbench build``
turns into a store like any official file.

A record is ``[hash, epochs, adjacency, ops, base64(ModelMetrics)]``, the adjacency and ops those of the cell's
first representative in the original enumeration (as the official files store them); its ``ModelMetrics`` holds
the step-0, halfway and final evaluations, the trainable parameters and the run's total time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nasbench import canonical, files
from nasbench._architecture import checked_cell
from nasbench.errors import InvalidSpecError, NasbenchError
from nasbench.lib import config
from nasbench_builder import records, tfrecord


def cell_fields(spec: Any) -> tuple[str, str, str]:
    """(hash, adjacency string, ops string) a record of this cell carries.

    Raises:
      InvalidSpecError: the cell is outside NAS-Bench-101's space (more than 7 vertices or 9 edges), where no
        store can hold it.
    """
    matrix, ops = checked_cell(spec)
    if len(matrix) > config.MODULE_VERTICES or int(matrix.sum()) > config.MAX_EDGES:
        raise InvalidSpecError(
            f"a cell of {len(matrix)} vertices and {int(matrix.sum())} edges is outside NAS-Bench-101's space "
            f"(at most {config.MODULE_VERTICES} and {config.MAX_EDGES}): it trains, but no store can hold it"
        )
    key = canonical.canonical_key(matrix, list(ops))
    return spec.hash_spec(list(config.AVAILABLE_OPS)), canonical.adjacency_string(key), canonical.ops_string(key)


def payload(spec: Any, epochs: int, run: dict[str, Any]) -> bytes:
    """The record of one training run (the metadata ``train_and_evaluate`` returns)."""
    module_hash, adjacency, operations = cell_fields(spec)
    evaluations = [
        records.encode_evaluation(
            float(result["epochs"]),
            float(result["training_time"]),
            float(result["train_accuracy"]),
            float(result["validation_accuracy"]),
            float(result["test_accuracy"]),
            str(result.get("checkpoint_path", "")),
        )
        for result in run["evaluation_results"]
    ]
    metrics = records.encode_metrics(evaluations, int(run["trainable_params"]), float(run["total_time"]))
    return records.encode_payload(module_hash, epochs, adjacency, operations, metrics)


def write_tfrecord(payloads: Sequence[bytes], path: Path) -> None:
    """Write framed records to ``path`` atomically: readers see the whole file or none."""
    with files.atomic_path(path) as partial, tfrecord.TFRecordWriter(partial) as writer:
        writer.write_many(list(payloads))


def read_log(path: Path) -> list[dict[str, Any]]:
    """The finished runs of an earlier, interrupted ``nasbench train`` (one JSON object per line); a last line
    cut short by a crash is ignored."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    runs = []
    for number, line in enumerate(lines, 1):
        try:
            runs.append(json.loads(line))
        except json.JSONDecodeError:
            if number != len(lines):
                raise NasbenchError(f"{path}:{number}: not a JSON run record; remove the file to start over") from None
            _rewrite(path, runs)  # the cut line goes before anything is appended
    return runs


def _rewrite(path: Path, runs: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps(run) + "\n" for run in runs).encode()
    files.write_atomically(path, lambda handle: handle.write(text))


def append_log(path: Path, run: dict[str, Any]) -> None:
    """Append one finished run and flush it to disk before the next run starts."""
    with open(path, "a") as handle:
        handle.write(json.dumps(run) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
