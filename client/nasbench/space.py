"""The NAS-Bench-101 search space: its cells in the original order, their original hashes, one-edit moves.

The original generator (google-research/nasbench, ``nasbench/scripts/generate_graphs.py``) visits, for V = 2..7,
every upper-triangle bit pattern in ascending order, keeps the full DAGs with at most 9 edges, labels their
interior vertices in ``itertools.product`` order and keeps the first labelled graph of each hash. Canonical keys
(``nasbench.canonical``) sort in that very order and their minimum is that first labelled graph, so the cells of
the space are exactly the labelled graphs that are their own canonical key, taken in ascending key order: no
hashing is needed to find them. The original MD5 hashes are then computed once per cell (the expensive part,
spread over processes) and kept in a small cache file.

Usage::

    from nasbench import space
    cells = space.enumerate_cells()                 # keys (uint64) in enumeration order, no hashes
    table = space.load_space()                      # keys + original hashes, cached on disk
    table.hash_of_key(int(table.keys[0]))
    space.neighbor_keys(key)                        # the cells one edit away (edge flip or op change)
    graph = space.neighbor_graph(cells.keys)        # the same for many cells at once (CSR over their rows)
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nasbench import files
from nasbench._cache import default_cache_dir
from nasbench._cells import codes as canonical
from nasbench._cells import keytable
from nasbench._cells.moves import NeighborGraph, OpSwaps, neighbor_graph, neighbor_keys, op_swaps
from nasbench.lib import config, graph_util

__all__ = [
    "NUM_CELLS",
    "NUM_LABELLED_GRAPHS",
    "Enumeration",
    "NeighborGraph",
    "OpSwaps",
    "SpaceTable",
    "compute_hashes",
    "enumerate_cells",
    "hex_digests",
    "labelled_graphs",
    "load_space",
    "neighbor_graph",
    "neighbor_keys",
    "op_swaps",
    "original_hash",
    "representatives_digest",
    "sorted_hashes_digest",
    "structures",
    "table_digests",
]

log = logging.getLogger(__name__)
NUM_CELLS = 423_624
NUM_LABELLED_GRAPHS = 1_293_208
SORTED_HASHES_SHA256 = "a7f10bf770c1b5b8a221e37824e42b3b1a237a5d21ccf545bbe8e23abd933403"
REPRESENTATIVES_SHA256 = "a4b03be715389467a9493a99f50528baef335fc17cbe9d7498d28e3aa278bca1"
# SHA-256 of the table's raw bytes, in enumeration order (keys little-endian uint64; hashes the 16-byte digests):
# a cache file is trusted only if it holds exactly these bytes. Both follow from the enumeration and the two
# reference digests above (tests/client/test_space.py checks all four on a freshly computed table).
KEYS_SHA256 = "45a91694182b2f0594fb89e5e797cbfbaf559c65c61b12fc1e1f6e1d2bdd5dd9"
HASHES_SHA256 = "1f4a7db984f8bb44da50e51b6c7e830bd26a761a39d60997ef500b7610ef0449"
_CACHE_FORMAT = 1


structures = canonical.structures


def labelled_graphs(num_vertices: int, max_edges: int = config.MAX_EDGES) -> tuple[np.ndarray, np.ndarray]:
    """Every labelled graph the original generator meets at ``num_vertices``, in its order, with canonical keys.

    Returns ``(codes, keys)``, two ``uint64`` arrays: the code of each labelled graph (full DAG, at most
    ``max_edges`` edges (at most 9), every interior labelling) and the canonical key of its cell, read from the key
    table.
    """
    if not 0 <= max_edges <= config.MAX_EDGES:
        raise ValueError(f"max_edges must be 0 to {config.MAX_EDGES}, got {max_edges}")
    table = keytable.table()
    structure = table.structures
    vertices = (structure >> np.uint64(keytable.STRUCTURE_SHIFT)).astype(np.int64)
    bits = structure & np.uint64((1 << keytable.STRUCTURE_SHIFT) - 1)
    chosen = np.flatnonzero((vertices == num_vertices) & (np.bitwise_count(bits) <= max_edges))
    if not len(chosen):
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.uint64)
    interior = num_vertices - 2
    labellings = 3**interior
    weights = 4 ** np.arange(interior - 1, -1, -1, dtype=np.int64)
    digits = np.array(list(itertools.product(range(len(config.AVAILABLE_OPS)), repeat=interior)), dtype=np.int64)
    own = (digits.reshape(labellings, interior) @ weights).astype(np.uint64)  # label codes in product order
    base = np.uint64(num_vertices) << np.uint64(canonical.VERTICES_SHIFT) | bits[chosen] << np.uint64(
        canonical.BITS_SHIFT
    )
    codes = (base[:, None] | own[None, :]).ravel()
    offsets = np.asarray(table.offsets, dtype=np.int64)[chosen]
    keys = table.keys[(offsets[:, None] + np.arange(labellings)[None, :]).ravel()]
    return codes, keys


@dataclass(frozen=True)
class Enumeration:
    """The cells of the space in enumeration order, with the counts the original generator logs."""

    keys: np.ndarray  # uint64[cells], ascending = original enumeration order of first representatives
    labelled_per_vertices: dict[int, int]  # V -> labelled graphs met at V ("without hashing")
    cells_per_vertices: dict[int, int]  # V -> new unique cells at V


def enumerate_cells(max_vertices: int = config.MODULE_VERTICES, max_edges: int = config.MAX_EDGES) -> Enumeration:
    """Enumerate every cell of the space up to ``max_vertices`` vertices, in the original order.

    A labelled graph is the first representative of its cell exactly when it is its own canonical key.
    """
    chunks = []
    labelled: dict[int, int] = {}
    cells: dict[int, int] = {}
    for num_vertices in range(canonical.MIN_VERTICES, max_vertices + 1):
        codes, keys = labelled_graphs(num_vertices, max_edges)
        firsts = codes[codes == keys]
        labelled[num_vertices] = len(codes)
        cells[num_vertices] = len(firsts)
        chunks.append(firsts)
    return Enumeration(keys=np.concatenate(chunks), labelled_per_vertices=labelled, cells_per_vertices=cells)


@functools.lru_cache(maxsize=8192)
def _topology(num_vertices: int, bits: int) -> tuple[tuple[tuple[int, ...], ...], tuple[tuple[int, ...], ...]]:
    """In- and out-neighbour tuples of every vertex of an upper-triangle code."""
    ins: list[list[int]] = [[] for _ in range(num_vertices)]
    outs: list[list[int]] = [[] for _ in range(num_vertices)]
    for src, dst in canonical.edges_of(num_vertices, bits):
        outs[src].append(dst)
        ins[dst].append(src)
    return tuple(map(tuple, ins)), tuple(map(tuple, outs))


@functools.lru_cache(maxsize=1024)
def _initial_hash(out_degree: int, in_degree: int, label: int) -> str:
    return graph_util.hash_module_initial(out_degree, in_degree, label)


def original_hash(code: int) -> str:
    """The original MD5 hash of the cell with this code: ``hash_module`` on its matrix, computed, not looked up."""
    num_vertices, bits, labels = canonical.unpack(code)
    ins, outs = _topology(num_vertices, bits)
    labeling = (-1, *labels, -2)
    initial = [_initial_hash(len(outs[v]), len(ins[v]), labeling[v]) for v in range(num_vertices)]
    return graph_util.refine(initial, ins, outs)


def _hash_chunk(keys: list[int]) -> bytes:
    return b"".join(bytes.fromhex(original_hash(key)) for key in keys)


def compute_hashes(keys: np.ndarray, processes: int | None = None, chunk: int = 4096) -> np.ndarray:
    """Original hashes (raw MD5 digests, ``uint8[n, 16]``) of many cells, spread over worker processes."""
    key_list = [int(k) for k in keys]
    pieces = [key_list[i : i + chunk] for i in range(0, len(key_list), chunk)]
    processes = processes or os.cpu_count() or 1
    if processes == 1 or len(pieces) <= 1:
        digests = b"".join(_hash_chunk(piece) for piece in pieces)
    else:
        import multiprocessing  # imported where needed: clients that never hash the space do without it

        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            digests = b"".join(pool.imap(_hash_chunk, pieces))
    hashes: np.ndarray = np.frombuffer(digests, dtype=np.uint8).reshape(-1, 16).copy()
    return hashes


@dataclass(frozen=True)
class SpaceTable:
    """Every cell of the space: canonical key and original hash, in enumeration order."""

    keys: np.ndarray  # uint64[cells], ascending
    hashes: np.ndarray  # uint8[cells, 16], the raw MD5 digests

    def digest_of_key(self, key: int) -> bytes | None:
        """The raw 16-byte original hash of a canonical key, or None when the key is not a cell of the space."""
        index = int(self.keys.searchsorted(np.uint64(key)))
        if index < len(self.keys) and self.keys[index] == key:
            digest: bytes = self.hashes[index].tobytes()
            return digest
        return None

    def hash_of_key(self, key: int) -> str | None:
        """The original hash (hex) of a canonical key, or None when the key is not a cell of the space."""
        digest = self.digest_of_key(key)
        return None if digest is None else digest.hex()

    def hex_hashes(self) -> list[str]:
        """The hashes as 32-character hex strings, in enumeration order."""
        return hex_digests(self.hashes)


def load_space(cache_dir: Path | None = None, processes: int | None = None) -> SpaceTable:
    """The whole space with its hashes, computed once (about a minute) and then read from a cache file."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cache_dir / f"space-v{_CACHE_FORMAT}.npz"
    table = _read_cache(path)
    if table is not None:
        return table
    keys = enumerate_cells().keys
    table = SpaceTable(keys=keys, hashes=compute_hashes(keys, processes=processes))
    try:
        _write_cache(path, table)
    except OSError as exc:  # the table is right all the same; the next process computes it again
        log.warning("cannot cache the search space in %s (%s): it will be computed again next time", path, exc)
    return table


def _read_cache(path: Path) -> SpaceTable | None:
    """The cached table, or None when it is absent or does not hold the whole space exactly."""
    try:
        with np.load(path, allow_pickle=False) as data:
            keys, hashes = data["keys"], data["hashes"]
    except (OSError, KeyError, ValueError):
        return None
    # Comparing raw bytes with pinned digests costs milliseconds; re-enumerating the space costs seconds.
    if keys.dtype != np.dtype("<u8") or keys.shape != (NUM_CELLS,) or hashes.dtype != np.uint8:
        return None
    if hashes.shape != (NUM_CELLS, 16) or table_digests(keys, hashes) != (KEYS_SHA256, HASHES_SHA256):
        return None
    return SpaceTable(keys=keys, hashes=hashes)


def table_digests(keys: np.ndarray, hashes: np.ndarray) -> tuple[str, str]:
    """SHA-256 of the keys' and of the hashes' raw bytes, in the table's order (see ``KEYS_SHA256``)."""
    return (
        hashlib.sha256(np.ascontiguousarray(keys, dtype="<u8").tobytes()).hexdigest(),
        hashlib.sha256(np.ascontiguousarray(hashes, dtype=np.uint8).tobytes()).hexdigest(),
    )


def _write_cache(path: Path, table: SpaceTable) -> None:
    files.write_atomically(path, lambda handle: np.savez(handle, keys=table.keys, hashes=table.hashes))


def hex_digests(digests: np.ndarray | bytes) -> list[str]:
    """Concatenated 16-byte digests (``uint8[n, 16]`` or raw bytes) as 32-character hex strings."""
    text = (digests if isinstance(digests, bytes) else digests.tobytes()).hex()
    return [text[i : i + 32] for i in range(0, len(text), 32)]


def sorted_hashes_digest(hashes: np.ndarray) -> str:
    """SHA-256 of the hex hashes sorted ascending and joined with newlines (a digest of the whole space that does not
    depend on any order)."""
    import hashlib  # here: a client that never checks digests does without OpenSSL

    return hashlib.sha256("\n".join(sorted(hex_digests(hashes))).encode()).hexdigest()


def representatives_digest(keys: np.ndarray, hashes: np.ndarray) -> str:
    """SHA-256 of ``hash<TAB>adjacency<TAB>ops`` lines of the first representatives, sorted by hash."""
    lines = sorted(
        f"{digest}\t{canonical.adjacency_string(key)}\t{canonical.ops_string(key)}"
        for key, digest in zip(keys.tolist(), hex_digests(hashes), strict=True)
    )
    import hashlib

    return hashlib.sha256("\n".join(lines).encode()).hexdigest()
