"""Search-space encodings: the paper's benchmark (NASCifar10A, B, C) and the plain cell space.

Usage::

    from nasbench_experiments.search.encodings import ENCODINGS
    encoding = ENCODINGS["A"]
    config = encoding.sample(np.random.default_rng(0))     # {'op_node_0': ..., 'edge_0': 0 or 1, ...}
    spec = encoding.to_spec(config)                        # api.ModelSpec, or None: invalid by the benchmark's rule
    encoding.configspace()                                 # the same space as a ConfigSpace object (for SMAC etc.)

The rules are those of the benchmark code (automl/nas_benchmarks, tabular_benchmarks/nas_cifar10.py), so that a script
written for the paper's benchmark gets the same objective values:

- every encoding has ``op_node_0`` … ``op_node_4`` (the ops of vertices 1–5 of a 7-vertex cell); the 21 upper-
  triangle positions of the 7×7 matrix are numbered in ``np.triu_indices(7, k=1)`` order (row-major);
- **A**: ``edge_0`` … ``edge_20`` in {0, 1}: the matrix itself; more than 9 edges (before pruning) is invalid;
- **B**: ``edge_0`` … ``edge_8`` in 0…20: the set of chosen positions (duplicates collapse). As the benchmark
  code does, the 21-position bit list becomes an integer with position 0 as the most significant bit, and the
  matrix is built from it with ``graph_util.gen_is_edge_fn`` (whose bit order differs from the positions: this
  quirk is part of the benchmark and is kept);
- **C**: ``num_edges`` in 0…9 and ``edge_0`` … ``edge_20`` in [0, 1]: the ``num_edges`` positions with the largest
  weights become edges (a reversed ascending argsort, as the benchmark code);
- a configuration whose spec is invalid (``to_spec`` returns None, or the query raises ``OutOfDomainError``,
  e.g. a disconnected graph) scores error 1 at cost 0 (see ``problem.Problem.evaluate``).

``cells`` is the plain cell space for optimizers that work on cells directly: points are ``ModelSpec`` objects
(random search draws the data's cells uniformly, evolution and local search move to edit-distance-1
neighbours). Optimizers that need a vector space (REINFORCE, TPE, SMAC, BOHB) use encoding A's parameterization
there, which *is* the matrix and ops of a 7-vertex cell.

Sampling and mutation are done here with numpy (the same uniform distributions as ConfigSpace, at a small
fraction of its per-configuration cost: ConfigSpace is only needed by the optimizers built on it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from nasbench import api
from nasbench.lib import config as nasbench_config

VERTICES = 7
POSITIONS = VERTICES * (VERTICES - 1) // 2  # 21 upper-triangle positions
MAX_EDGES = nasbench_config.MAX_EDGES
OPS: tuple[str, ...] = (api.CONV1X1, api.CONV3X3, api.MAXPOOL3X3)  # the benchmark's order of choices
OP_NAMES = tuple(f"op_node_{i}" for i in range(VERTICES - 2))
_ROWS, _COLS = np.triu_indices(VERTICES, k=1)
_UPPER = _ROWS * VERTICES + _COLS  # flat index of each position
_EDGE_NAMES = tuple(f"edge_{i}" for i in range(POSITIONS))
# position i of B's bit list is bit (POSITIONS - 1 - i) of the integer, and gen_is_edge_fn puts bit b on the edge
# (x, y) with x + y*(y-1)/2 == b: the flat index (x * VERTICES + y) each position of B lands on.
_B_TARGET = np.zeros(POSITIONS, dtype=np.int64)
for _y in range(1, VERTICES):
    for _x in range(_y):
        _B_TARGET[POSITIONS - 1 - (_x + _y * (_y - 1) // 2)] = _x * VERTICES + _y


@dataclass(frozen=True)
class Param:
    """One hyperparameter: categorical (``choices``), integer or float (``lower``..``upper`` inclusive)."""

    name: str
    choices: tuple[Any, ...] | None = None
    lower: float = 0.0
    upper: float = 1.0
    integer: bool = False

    @property
    def categorical(self) -> bool:
        return self.choices is not None

    def sample(self, rng: np.random.Generator) -> Any:
        if self.choices is not None:
            return self.choices[int(rng.integers(len(self.choices)))]
        if self.integer:
            return int(rng.integers(int(self.lower), int(self.upper) + 1))
        return float(rng.uniform(self.lower, self.upper))

    def other(self, value: Any, rng: np.random.Generator) -> Any:
        """Another value than ``value``, uniformly (floats: a fresh uniform draw)."""
        if self.choices is not None:
            others = [choice for choice in self.choices if choice != value]
            return others[int(rng.integers(len(others)))]
        if self.integer:
            others = [v for v in range(int(self.lower), int(self.upper) + 1) if v != value]
            return others[int(rng.integers(len(others)))]
        return float(rng.uniform(self.lower, self.upper))

    def neighbours(self, value: Any, rng: np.random.Generator, floats: int = 4) -> list[Any]:
        """The one-exchange neighbourhood of one value (as ConfigSpace's): every other choice; the adjacent
        integers; ``floats`` Gaussian steps (sd 0.2 of the range, clipped) for a float."""
        if self.choices is not None:
            return [choice for choice in self.choices if choice != value]
        if self.integer:
            return [v for v in (value - 1, value + 1) if self.lower <= v <= self.upper]
        span = self.upper - self.lower
        steps = rng.normal(0.0, 0.2 * span, floats)
        return [float(np.clip(value + step, self.lower, self.upper)) for step in steps]


class Encoding:
    """A vector encoding of the cell: its hyperparameters and the rule from a configuration to a spec."""

    name = ""
    params: tuple[Param, ...] = ()

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """A configuration drawn uniformly (each hyperparameter independently, as ConfigSpace samples)."""
        return {param.name: param.sample(rng) for param in self.params}

    def sample_many(self, rng: np.random.Generator, count: int) -> list[dict[str, Any]]:
        """``count`` configurations drawn as ``sample`` draws them, one hyperparameter column at a time."""
        columns = []
        for param in self.params:
            if param.choices is not None:
                choices = param.choices
                columns.append([choices[i] for i in rng.integers(len(choices), size=count).tolist()])
            elif param.integer:
                columns.append(rng.integers(int(param.lower), int(param.upper) + 1, size=count).tolist())
            else:
                columns.append(rng.uniform(param.lower, param.upper, size=count).tolist())
        names = [param.name for param in self.params]
        return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]

    def to_spec(self, config: Mapping[str, Any]) -> api.ModelSpec | None:
        """The spec of a configuration, or None when the benchmark calls it invalid before querying."""
        matrix = self.matrix(config)
        if int(matrix.sum()) > MAX_EDGES:
            return None
        return self._spec(matrix, config)

    @staticmethod
    def _spec(matrix: np.ndarray, config: Mapping[str, Any]) -> api.ModelSpec:
        ops = [api.INPUT, *(str(config[name]) for name in OP_NAMES), api.OUTPUT]
        return api.ModelSpec(matrix, ops)

    def matrix(self, config: Mapping[str, Any]) -> np.ndarray:
        raise NotImplementedError

    def configspace(self, seed: int | None = None) -> Any:
        """This encoding as a ``ConfigSpace.ConfigurationSpace`` (needs the ``ConfigSpace`` package)."""
        try:
            from ConfigSpace import Categorical, ConfigurationSpace, Float, Integer
        except ImportError:
            from nasbench.errors import ConfigurationError

            raise ConfigurationError("this needs ConfigSpace: pip install 'nasbench-server[experiments]'") from None
        space = ConfigurationSpace(seed=seed)
        for param in self.params:
            if param.choices is not None:
                space.add(Categorical(param.name, list(param.choices)))
            elif param.integer:
                space.add(Integer(param.name, (int(param.lower), int(param.upper))))
            else:
                space.add(Float(param.name, (param.lower, param.upper)))
        return space

    def __repr__(self) -> str:
        return f"<encoding {self.name}: {len(self.params)} hyperparameters>"


_OP_PARAMS = tuple(Param(name, OPS) for name in OP_NAMES)


class EncodingA(Encoding):
    """NASCifar10A: one {0, 1} hyperparameter per upper-triangle position."""

    name = "A"
    params = (*_OP_PARAMS, *(Param(f"edge_{i}", (0, 1)) for i in range(POSITIONS)))

    def matrix(self, config: Mapping[str, Any]) -> np.ndarray:
        return self._matrix([config[name] for name in _EDGE_NAMES])

    def to_spec(self, config: Mapping[str, Any]) -> api.ModelSpec | None:
        bits = [config[name] for name in _EDGE_NAMES]
        if sum(bits) > MAX_EDGES:  # counted before building anything: most random configurations stop here
            return None
        return self._spec(self._matrix(bits), config)

    @staticmethod
    def _matrix(bits: list[Any]) -> np.ndarray:
        flat = np.zeros(VERTICES * VERTICES, dtype=np.int8)
        flat[_UPPER] = bits
        return flat.reshape(VERTICES, VERTICES)


class EncodingB(Encoding):
    """NASCifar10B: nine hyperparameters naming positions 0…20 (the benchmark's bit order, see the module)."""

    name = "B"
    params = (*_OP_PARAMS, *(Param(f"edge_{i}", tuple(range(POSITIONS))) for i in range(MAX_EDGES)))

    def matrix(self, config: Mapping[str, Any]) -> np.ndarray:
        flat = np.zeros(VERTICES * VERTICES, dtype=np.int8)
        flat[_B_TARGET[[int(config[name]) for name in _EDGE_NAMES[:MAX_EDGES]]]] = 1
        return flat.reshape(VERTICES, VERTICES)


class EncodingC(Encoding):
    """NASCifar10C: a number of edges and one weight per position; the heaviest positions become edges."""

    name = "C"
    params = (
        *_OP_PARAMS,
        Param("num_edges", lower=0, upper=MAX_EDGES, integer=True),
        *(Param(f"edge_{i}", lower=0.0, upper=1.0) for i in range(POSITIONS)),
    )

    def matrix(self, config: Mapping[str, Any]) -> np.ndarray:
        weights = np.array([float(config[name]) for name in _EDGE_NAMES])
        chosen = np.argsort(weights)[::-1][: int(config["num_edges"])]
        bits = np.zeros(POSITIONS, dtype=np.int8)
        bits[chosen] = 1
        matrix = np.zeros((VERTICES, VERTICES), dtype=np.int8)
        matrix[_ROWS, _COLS] = bits
        return matrix


class CellEncoding:
    """The plain cell space: points are ModelSpecs (see the module docstring)."""

    name = "cells"
    vector = EncodingA()  # for optimizers that need hyperparameters

    def to_spec(self, config: Mapping[str, Any]) -> api.ModelSpec | None:
        """A configuration of the vector form (encoding A) as a spec."""
        return self.vector.to_spec(config)

    def __repr__(self) -> str:
        return "<encoding cells>"


ENCODINGS: dict[str, Encoding | CellEncoding] = {
    "A": EncodingA(),
    "B": EncodingB(),
    "C": EncodingC(),
    "cells": CellEncoding(),
}


def vector_encoding(name: str) -> Encoding:
    """The vector encoding an optimizer that needs hyperparameters uses for ``name`` (cells → A)."""
    encoding = ENCODINGS[name]
    return encoding.vector if isinstance(encoding, CellEncoding) else encoding
