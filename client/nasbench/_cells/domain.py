"""The search domain: the original ``_check_spec`` rules, and naming a spec's cell by canonical key or hash.

Both backends (local store, remote server) and the server itself check specs here, so every path raises the
same errors with the original messages (google-research/nasbench, ``nasbench/api.py``: ``_check_spec``).

Naming a cell: for an integer or bool matrix of 0/1 entries with the default op order, the canonical key names
exactly the cell whose original hash the spec has (hashes are isomorphism-invariant and tell the space's cells
apart). Anything else is named by its original hash, as in the original: float matrices and entries like 2 hash
differently from every stored cell (https://github.com/google-research/nasbench/issues/32) and are not found; a
reordered ``available_ops`` relabels the ops, so the hash names the cell with those ops swapped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nasbench._cells import codes, keytable
from nasbench.errors import OutOfDomainError, TooManyVerticesError
from nasbench.lib import config

_DEFAULT_OPS = list(config.AVAILABLE_OPS)


def check_spec(spec: Any, cfg: Mapping[str, Any]) -> int | None:
    """Apply the original rules, in the original order; return the canonical key when it names the cell.

    Args:
      spec: a pruned ``ModelSpec`` (or any object with ``valid_spec``, ``matrix`` and ``ops``).
      cfg: the configuration (``module_vertices``, ``max_edges``, ``available_ops`` are read from it).

    Returns:
      The canonical key, or None when only the original hash can name the cell (see the module docstring).

    Raises:
      OutOfDomainError: with the original messages.
      TooManyVerticesError: (an OutOfDomainError and a TypeError) for more than ``module_vertices`` vertices;
        the original raised a bare TypeError there (its ``config['module_vertices']`` indexes the module).
      TypeError: ``spec`` is not a ModelSpec.
    """
    try:
        valid, ops, matrix = spec.valid_spec, spec.ops, spec.matrix
    except AttributeError:
        raise TypeError(f"expected a ModelSpec, got {type(spec).__name__}") from None
    if not valid:
        raise OutOfDomainError("invalid spec, provided graph is disconnected.")
    num_vertices = len(ops)
    if num_vertices > cfg["module_vertices"]:
        raise TooManyVerticesError(
            "too many vertices, got %d (max vertices = %d)" % (num_vertices, cfg["module_vertices"])
        )
    if cfg["available_ops"] == _DEFAULT_OPS and type(matrix) is np.ndarray and num_vertices <= codes.MAX_VERTICES:
        if cfg["max_edges"] >= config.MAX_EDGES:
            key = keytable.key_of(matrix, ops)  # the common case: a labelled graph of the space passes every check
            if key is not None:
                return key
        lanes = codes.lanes01(matrix)  # None: not a bool/integer matrix of 0/1 entries
        if lanes is not None and matrix.shape == (num_vertices, num_vertices):
            # Not in the table: too many edges (entries are 0/1, so the original's sum is a count), or a matrix
            # that is not a full DAG (a spec changed by hand), or ops outside the space.
            num_edges = lanes.count(1)
            if num_edges > cfg["max_edges"]:
                raise OutOfDomainError("too many edges, got %d (max edges = %d)" % (num_edges, cfg["max_edges"]))
            labels = _labels(ops)
            if labels is not None and not int.from_bytes(lanes, "little") & codes.lower_lanes(num_vertices):
                return keytable.canonicalize(
                    codes.pack(num_vertices, codes.lanes_bits(lanes, num_vertices), labels)
                )
    # Anything else gets the original checks one by one and is then named by its original hash.
    num_edges = np.sum(matrix)
    if num_edges > cfg["max_edges"]:
        raise OutOfDomainError("too many edges, got %s (max edges = %d)" % (_as_count(num_edges), cfg["max_edges"]))
    available = cfg["available_ops"]
    if ops[0] != config.INPUT:
        raise OutOfDomainError("first operation should be 'input'")
    if ops[-1] != config.OUTPUT:
        raise OutOfDomainError("last operation should be 'output'")
    for op in ops[1:-1]:
        if op not in available:
            raise OutOfDomainError("unsupported op %s (available ops = %s)" % (op, available))
    return None


def _labels(ops: Sequence[Any]) -> tuple[int, ...] | None:
    try:
        return codes.interior_labels(ops)
    except TypeError:  # ops without a length
        return None


def epoch_set(epochs: Sequence[int]) -> set[int]:
    """The budgets as the original's ``valid_epochs``: a set filled in file order (its repr is in messages)."""
    valid: set[int] = set()
    for budget in epochs:
        valid.add(budget)
    return valid


def invalid_epochs(valid: set[int]) -> OutOfDomainError:
    return OutOfDomainError("invalid number of epochs, must be one of %s" % valid)


def _as_count(value: Any) -> str:
    """``'%d' % value`` as the original printed it, or the value itself where %d cannot (infinity)."""
    try:
        return "%d" % value
    except (OverflowError, ValueError, TypeError):
        return str(value)
