"""Graph helpers of the original ``nasbench.lib.graph_util``, with the original semantics.

``hash_module`` is the public cell identifier of NAS-Bench-101 (the keys of ``hash_iterator``); it must stay
bit-identical to the original for every input the original accepts, because the strings fed to MD5 (Python
``str`` of degrees and labels) decide the result (google-research/nasbench, ``nasbench/lib/graph_util.py``).

Usage::

    import numpy as np
    from nasbench.lib import graph_util
    graph_util.hash_module(np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]]), [-1, 0, -2])
    # 'b49ac8c578b4561d79ac7087988f1c61'
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # _md5 has no stubs; it has hashlib.md5's interface
    from hashlib import md5 as _md5
else:
    try:  # CPython's own MD5 is about twice as fast as OpenSSL's on these short strings; same digests.
        from _md5 import md5 as _md5
    except ImportError:  # pragma: no cover - interpreters built without it
        from hashlib import md5 as _md5


def gen_is_edge_fn(bits: int) -> Callable[..., np.ndarray]:
    """Vectorized ``is_edge(x, y)``: bit ``x + y*(y-1)//2`` of ``bits`` for ``x < y``, else 0.

    Used as ``np.fromfunction(gen_is_edge_fn(bits), (V, V), dtype=np.int8)`` to enumerate the strict upper
    triangle column by column from the least significant bit (bit 0 = 0→1, bit 1 = 0→2, bit 2 = 1→2, ...).
    """

    def is_edge(x: Any, y: Any) -> int:
        i, j = int(x), int(y)
        if i >= j:
            return 0
        return (bits >> (i + j * (j - 1) // 2)) & 1

    return np.vectorize(is_edge)


def is_full_dag(matrix: np.ndarray) -> bool:
    """True iff every non-output vertex has an out-edge and every non-input vertex has an in-edge."""
    matrix = np.asarray(matrix)
    num_vertices = matrix.shape[0]
    rows_ok = np.any(matrix[: num_vertices - 1, :] != 0, axis=1).all()
    cols_ok = np.any(matrix[:, 1:] != 0, axis=0).all()
    return bool(rows_ok and cols_ok)


def num_edges(matrix: np.ndarray) -> Any:
    """Sum of the matrix entries (a numpy scalar, as in the original; a weight-2 entry counts twice)."""
    return np.sum(matrix)


def _neighbours(rows: list[list[Any]], num_vertices: int) -> tuple[list[list[int]], list[list[int]]]:
    """In- and out-neighbour lists, ascending, of a matrix given as nested Python lists (truthy = edge)."""
    ins: list[list[int]] = [[] for _ in range(num_vertices)]
    outs: list[list[int]] = [[] for _ in range(num_vertices)]
    for src, row in enumerate(rows):
        for dst, entry in enumerate(row):
            if entry:
                outs[src].append(dst)
                ins[dst].append(src)
    return ins, outs


def hash_module(matrix: np.ndarray, labeling: Sequence[Any]) -> str:
    """MD5 fingerprint of a labelled directed graph, invariant under relabelling of its vertices.

    Args:
      matrix: square adjacency matrix (entries are truthy for an edge; degrees are the row/column sums).
      labeling: one label per vertex; the original uses -1 for input, -2 for output, 0..2 for the ops.

    Returns:
      The 32-character lowercase MD5 hex digest of the original algorithm.

    Raises:
      ValueError: the matrix is not square or the labeling has a different length.
    """
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"matrix must be square, got shape {matrix.shape}")
    num_vertices = matrix.shape[0]
    in_degrees = np.sum(matrix, axis=0).tolist()
    out_degrees = np.sum(matrix, axis=1).tolist()
    if len(labeling) != num_vertices:
        raise ValueError(f"labeling has {len(labeling)} labels for a {num_vertices}-vertex matrix")
    ins, outs = _neighbours(matrix.tolist(), num_vertices)
    hashes = [hash_module_initial(out_degrees[v], in_degrees[v], labeling[v]) for v in range(num_vertices)]
    return refine(hashes, ins, outs)


def hash_module_initial(out_degree: Any, in_degree: Any, label: Any) -> str:
    """A vertex's starting hash: MD5 of the ``str`` of the tuple (out-degree, in-degree, label)."""
    return _md5(str((out_degree, in_degree, label)).encode("utf-8")).hexdigest()


def refine(hashes: list[str], ins: Sequence[Sequence[int]], outs: Sequence[Sequence[int]]) -> str:
    """The rounds and the fingerprint of ``hash_module``, from the initial per-vertex hashes.

    One round per vertex; each vertex hashes its in-neighbours' hashes (sorted, concatenated), ``|``, its
    out-neighbours' hashes, ``|``, its own hash. The fingerprint is the MD5 of the ``str`` of the sorted list.
    """
    join = "".join
    for _ in range(len(hashes)):
        get = hashes.__getitem__
        hashes = [
            _md5(f"{join(sorted(map(get, i)))}|{join(sorted(map(get, o)))}|{own}".encode()).hexdigest()
            for i, o, own in zip(ins, outs, hashes, strict=True)
        ]
    return _md5(str(sorted(hashes)).encode("utf-8")).hexdigest()


def permute_graph(graph: np.ndarray, label: Sequence[Any], permutation: Sequence[int]) -> tuple[np.ndarray, list[Any]]:
    """Relabel a graph: vertex ``permutation[v]`` of the result is vertex ``v`` of ``graph``.

    Returns the new matrix as a bool array (an entry is True where the old entry equals 1) and the permuted
    labels as a list, as the original does. Works for any directed graph, self-loops included.
    """
    graph = np.asarray(graph)
    forward = np.argsort(np.asarray(permutation))
    new_matrix = graph[np.ix_(forward, forward)] == 1
    new_label = [label[int(i)] for i in forward]
    return new_matrix, new_label


def is_isomorphic(graph1: tuple[np.ndarray, Sequence[Any]], graph2: tuple[np.ndarray, Sequence[Any]]) -> bool:
    """Brute-force isomorphism test of two labelled graphs ``(matrix, labels)`` over all vertex permutations.

    Graphs of different sizes are not isomorphic (the original asserted equal shapes instead).
    """
    matrix1, label1 = np.asarray(graph1[0]), list(graph1[1])
    matrix2, label2 = np.asarray(graph2[0]), list(graph2[1])
    if matrix1.shape != matrix2.shape or len(label1) != len(label2):
        return False
    for perm in itertools.permutations(range(matrix1.shape[0])):
        permuted_matrix, permuted_label = permute_graph(matrix1, label1, perm)
        if permuted_label == label2 and np.array_equal(permuted_matrix, matrix2):
            return True
    return False
