"""A faithful in-process model of the original API's lookup path, built from the same data, for comparison.

Reproduces what the original ``NASBench.query`` does per call (google-research/nasbench, ``nasbench/api.py`` and
``nasbench/lib/model_spec.py``, ``graph_util.py``): build a ``ModelSpec`` (deep copies, Python loops for the
upper-triangle check and pruning), check it, compute the MD5 hash with plain ``hashlib`` loops, look the hash up
in dicts of per-hash dicts, deep-copy both statistics, draw ``random.randint(0, 2)``, build the result. Not the
original code: a model of its costs.
"""

from __future__ import annotations

import copy
import hashlib
import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from nasbench import canonical
from nasbench.lib import config
from nasbench.types import METRIC_FIELDS, DatasetColumns


class OriginalModelSpec:
    """The original ModelSpec's construction: deep copies, loop checks, DFS pruning, np.delete."""

    def __init__(self, matrix: Any, ops: list[Any]) -> None:
        if not isinstance(matrix, np.ndarray):
            matrix = np.array(matrix)
        shape = np.shape(matrix)
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError("matrix must be square")
        if shape[0] != len(ops):
            raise ValueError("length of ops must match matrix dimensions")
        for src in range(shape[0]):
            for dst in range(src + 1):
                if matrix[src, dst] != 0:
                    raise ValueError("matrix must be upper triangular")
        self.original_matrix = copy.deepcopy(matrix)
        self.original_ops = copy.deepcopy(ops)
        self.matrix: Any = copy.deepcopy(matrix)  # None once pruned away, as in the untyped original
        self.ops: Any = copy.deepcopy(ops)
        self.valid_spec = True
        self._prune()

    def _prune(self) -> None:
        size = np.shape(self.original_matrix)[0]
        forward, frontier = {0}, [0]
        while frontier:
            top = frontier.pop()
            for v in range(top + 1, size):
                if self.original_matrix[top, v] and v not in forward:
                    forward.add(v)
                    frontier.append(v)
        backward, frontier = {size - 1}, [size - 1]
        while frontier:
            top = frontier.pop()
            for v in range(top):
                if self.original_matrix[v, top] and v not in backward:
                    backward.add(v)
                    frontier.append(v)
        extraneous = set(range(size)).difference(forward.intersection(backward))
        if len(extraneous) > size - 2:
            self.matrix, self.ops, self.valid_spec = None, None, False
            return
        self.matrix = np.delete(self.matrix, list(extraneous), axis=0)
        self.matrix = np.delete(self.matrix, list(extraneous), axis=1)
        for index in sorted(extraneous, reverse=True):
            del self.ops[index]

    def hash_spec(self, canonical_ops: list[str]) -> str:
        labeling = [-1] + [canonical_ops.index(op) for op in self.ops[1:-1]] + [-2]
        return original_hash_module(self.matrix, labeling)


def original_hash_module(matrix: np.ndarray, labeling: list[int]) -> str:
    """The hash as the original computes it: numpy sums, numpy element reads, hashlib MD5."""
    vertices = np.shape(matrix)[0]
    in_edges = np.sum(matrix, axis=0).tolist()
    out_edges = np.sum(matrix, axis=1).tolist()
    hashes = [hashlib.md5(str(h).encode("utf-8")).hexdigest() for h in zip(out_edges, in_edges, labeling, strict=True)]
    for _ in range(vertices):
        new_hashes = []
        for v in range(vertices):
            in_neighbors = [hashes[w] for w in range(vertices) if matrix[w, v]]
            out_neighbors = [hashes[w] for w in range(vertices) if matrix[v, w]]
            new_hashes.append(
                hashlib.md5(
                    ("".join(sorted(in_neighbors)) + "|" + "".join(sorted(out_neighbors)) + "|" + hashes[v]).encode(
                        "utf-8"
                    )
                ).hexdigest()
            )
        hashes = new_hashes
    return hashlib.md5(str(sorted(hashes)).encode("utf-8")).hexdigest()


class OriginalNASBench:
    """The original in-memory layout (dicts of per-hash dicts) and query path, loaded from a dataset's columns."""

    def __init__(
        self, data: DatasetColumns, seed: int | None = None, limit: int | None = None, rows: Sequence[int] | None = None
    ) -> None:
        """Load the first ``limit`` rows of the columns (all by default), or exactly ``rows``."""
        self.config = config.build_config()
        random.seed(seed)
        self.fixed_statistics: dict[str, dict[str, Any]] = {}
        self.computed_statistics: dict[str, dict[int, list[dict[str, float]]]] = {}
        self.valid_epochs = set(data.epochs)
        if rows is None:
            rows = range(data.cells if limit is None else min(limit, data.cells))
        for row in rows:
            module_hash = data.hashes[row].tobytes().hex()
            metrics = data.metrics[row].tolist()
            matrix, ops = canonical.decode(data.representatives.item(row))
            self.fixed_statistics[module_hash] = {
                "module_adjacency": matrix,
                "module_operations": ops,
                "trainable_parameters": data.parameters.item(row),
            }
            self.computed_statistics[module_hash] = {
                epochs: [dict(zip(METRIC_FIELDS, run, strict=True)) for run in metrics[index]]
                for index, epochs in enumerate(data.epochs)
            }
        self.training_time_spent = 0.0
        self.total_epochs_spent = 0

    def query(self, model_spec: OriginalModelSpec, epochs: int = 108, stop_halfway: bool = False) -> dict[str, Any]:
        if epochs not in self.valid_epochs:
            raise ValueError("invalid number of epochs")
        fixed_stat, computed_stat = self.get_metrics_from_spec(model_spec)
        sampled_index = random.randint(0, self.config["num_repeats"] - 1)
        run = computed_stat[epochs][sampled_index]
        data = {
            "module_adjacency": fixed_stat["module_adjacency"],
            "module_operations": fixed_stat["module_operations"],
            "trainable_parameters": fixed_stat["trainable_parameters"],
        }
        prefix = "halfway_" if stop_halfway else "final_"
        for name in ("training_time", "train_accuracy", "validation_accuracy", "test_accuracy"):
            data[name] = run[prefix + name]
        self.training_time_spent += data["training_time"]
        self.total_epochs_spent += epochs // 2 if stop_halfway else epochs
        return data

    def is_valid(self, model_spec: OriginalModelSpec) -> bool:
        """The original catches the domain error of ``_check_spec`` (modelled here as ValueError)."""
        try:
            self._check_spec(model_spec)
        except ValueError:
            return False
        return True

    def get_budget_counters(self) -> tuple[float, int]:
        return self.training_time_spent, self.total_epochs_spent

    def reset_budget_counters(self) -> None:
        self.training_time_spent = 0.0
        self.total_epochs_spent = 0

    def get_metrics_from_spec(
        self, model_spec: OriginalModelSpec
    ) -> tuple[dict[str, Any], dict[int, list[dict[str, float]]]]:
        self._check_spec(model_spec)
        module_hash = model_spec.hash_spec(self.config["available_ops"])
        return copy.deepcopy(self.fixed_statistics[module_hash]), copy.deepcopy(self.computed_statistics[module_hash])

    def _check_spec(self, model_spec: OriginalModelSpec) -> None:
        if not model_spec.valid_spec:
            raise ValueError("invalid spec, provided graph is disconnected.")
        if len(model_spec.ops) > self.config["module_vertices"]:
            raise TypeError("too many vertices")
        if np.sum(model_spec.matrix) > self.config["max_edges"]:
            raise ValueError("too many edges")
        if model_spec.ops[0] != "input" or model_spec.ops[-1] != "output":
            raise ValueError("first/last operation")
        for op in model_spec.ops[1:-1]:
            if op not in self.config["available_ops"]:
                raise ValueError("unsupported op")
