"""Exact canonical keys of pruned cells: equal for isomorphic cells, different for different cells.

A cell of V vertices (2..7) is coded as one integer, its *code*::

    code = V << 31 | bits << 10 | labels

``bits`` is the strict upper triangle in the bit order of the original enumeration (bit ``x + y*(y-1)//2`` is the
edge x→y, as ``graph_util.gen_is_edge_fn``), and ``labels`` packs the interior ops in base 4 (0 = conv3x3-bn-relu,
1 = conv1x1-bn-relu, 2 = maxpool3x3), vertex 1 most significant. Codes sort exactly as the original enumeration
visits labelled graphs. The *canonical key* of a cell is the smallest code over the relabellings of its interior
vertices that keep the matrix upper triangular: it is the same for isomorphic cells, decodes back to the cell, and
is the very representative the dataset stores (the first labelled graph of the cell the original enumeration met).

Usage::

    from nasbench import canonical
    key = canonical.canonical_key([[0, 1, 1], [0, 0, 1], [0, 0, 0]],
                                  ['input', 'conv3x3-bn-relu', 'output'])
    matrix, ops = canonical.decode(key)

Keys of the space's labelled graphs come from a precomputed, memory-mapped table (two dictionary lookups and an
array read, the first call as every call); codes outside it (more than 9 edges, or not full DAGs) are solved by
the search over interior orders.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nasbench._cells import keytable
from nasbench._cells.codes import (
    BITS_SHIFT,
    MAX_VERTICES,
    MIN_VERTICES,
    OP_LABELS,
    VERTICES_SHIFT,
    adjacency_string,
    canonical_structure,
    cell_code,
    decode,
    edge_bit,
    edges_of,
    label_slots,
    matrix_bits,
    ops_string,
    pack,
    solve,
    unpack,
    vertices_and_edges,
)

__all__ = [
    "BITS_SHIFT",
    "MAX_VERTICES",
    "MIN_VERTICES",
    "OP_LABELS",
    "VERTICES_SHIFT",
    "adjacency_string",
    "canonical_key",
    "canonical_structure",
    "canonicalize",
    "cell_code",
    "decode",
    "edge_bit",
    "edges_of",
    "label_slots",
    "matrix_bits",
    "ops_string",
    "pack",
    "solve",
    "unpack",
    "vertices_and_edges",
]

canonicalize = keytable.canonicalize


def canonical_key(matrix: Any, ops: Sequence[Any]) -> int:
    """The canonical key of a pruned cell (see the module docstring).

    Raises:
      InvalidSpecError: not a cell of the space's shape: 2 to 7 vertices, an upper-triangular integer or bool matrix
        of 0/1 entries, ops 'input', ops of the space, 'output'.
    """
    if type(matrix) is np.ndarray:
        key = keytable.key_of(matrix, ops)
        if key is not None:
            return key
    return canonicalize(cell_code(matrix, ops))
