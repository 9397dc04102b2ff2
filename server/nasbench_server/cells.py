"""Naming cells from the wire: a CellRef (key, hash, or spec) to a row of the store, with the original checks.

Specs are rebuilt as ModelSpecs, pruned and checked by ``nasbench._cells.domain`` exactly as the drop-in client does,
so a raw client gets the original messages. Every malformed field is an InvalidSpecError naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from nasbench._backends.wire import NAME_OF_OP
from nasbench._cells import codes as canonical
from nasbench._cells import domain
from nasbench._engine.engine import Engine
from nasbench.errors import InvalidSpecError, UnknownCellError
from nasbench.lib import config
from nasbench.lib.model_spec import ModelSpec
from nasbench.v1 import nasbench_pb2 as pb

MAX_MATRIX_VERTICES = 64
_HEX = frozenset("0123456789abcdef")


def row_of_ref(ref: pb.CellRef, engine: Engine, cfg: Mapping[str, Any], field: str = "cell") -> int:
    """The store row a CellRef names.

    Raises:
      InvalidSpecError: an empty or malformed reference (the message names the field).
      OutOfDomainError: a spec outside the search space (the original messages).
      UnknownCellError: a cell absent from the data; ``args[0]`` is its hash (hex), or its key.
    """
    kind = ref.WhichOneof("ref")
    if kind is None:
        raise InvalidSpecError(f"{field} is required: set one of key, hash, hash_hex, packed, matrix")
    if kind == "key":
        row = engine.row_of_key(ref.key)
        if row < 0:
            raise UnknownCellError(ref.key)
        return row
    if kind in ("hash", "hash_hex"):
        digest = _digest(ref, field)
        row = engine.row_of_hash(digest)
        if row < 0:
            raise UnknownCellError(digest.hex())
        return row
    spec = spec_of_packed(ref.packed, field) if kind == "packed" else spec_of_matrix(ref.matrix, field)
    key = domain.check_spec(spec, cfg)
    row = -1 if key is None else engine.row_of_key(key)
    if row < 0:
        module_hash = spec.hash_spec(cfg["available_ops"])
        row = engine.row_of_hash(bytes.fromhex(module_hash)) if key is None else -1
        if row < 0:
            raise UnknownCellError(module_hash)
    return row


def _digest(ref: pb.CellRef, field: str) -> bytes:
    if ref.WhichOneof("ref") == "hash":
        if len(ref.hash) != 16:
            raise InvalidSpecError(f"{field}.hash must be 16 bytes (an MD5 digest), got {len(ref.hash)}")
        return ref.hash
    text = ref.hash_hex
    if len(text) != 32 or not _HEX.issuperset(text):
        raise InvalidSpecError(f"{field}.hash_hex must be 32 lowercase hex characters, got {text[:40]!r}")
    return bytes.fromhex(text)


def spec_of_packed(packed: pb.PackedSpec, field: str = "cell") -> ModelSpec:
    """The ModelSpec of a compact spec."""
    size = packed.num_vertices
    if not canonical.MIN_VERTICES <= size <= canonical.MAX_VERTICES:
        raise InvalidSpecError(f"{field}.packed.num_vertices must be 2 to 7, got {size}")
    if packed.edges >> (size * (size - 1) // 2):
        raise InvalidSpecError(f"{field}.packed.edges has bits beyond a {size}-vertex upper triangle")
    if len(packed.ops) != size - 2:
        raise InvalidSpecError(f"{field}.packed.ops must list {size - 2} interior ops, got {len(packed.ops)}")
    names = []
    for op in packed.ops:
        if op not in NAME_OF_OP:
            raise InvalidSpecError(f"{field}.packed.ops has an unknown op value {op}")
        names.append(NAME_OF_OP[op])
    matrix = np.zeros((size, size), dtype=np.int8)
    for src, dst in canonical.edges_of(size, packed.edges):
        matrix[src, dst] = 1
    return ModelSpec(matrix, [config.INPUT, *names, config.OUTPUT])


def spec_of_matrix(message: pb.MatrixSpec, field: str = "cell") -> ModelSpec:
    """The ModelSpec of a full-matrix spec (the ModelSpec rules apply, with their ValueError messages)."""
    size = message.num_vertices
    if not 1 <= size <= MAX_MATRIX_VERTICES:
        raise InvalidSpecError(f"{field}.matrix.num_vertices must be 1 to {MAX_MATRIX_VERTICES}, got {size}")
    if len(message.adjacency) != size * size:
        raise InvalidSpecError(
            f"{field}.matrix.adjacency must hold {size * size} bytes for {size} vertices, got {len(message.adjacency)}"
        )
    matrix = np.frombuffer(message.adjacency, dtype=np.uint8).reshape(size, size).astype(np.int64)
    return ModelSpec(matrix, list(message.ops))
