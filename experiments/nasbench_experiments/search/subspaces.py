"""Subspaces of NAS-Bench-101: the cells a study may propose, and the dataset as a study on them sees it.

The seed paper checked that its optimizer comparison generalizes by running "similar algorithms on subset vs. whole
dataset" (the "generalization bootstrap" of the NAS-Bench-101 poster, Ying et al., 2019). A subspace is written as
terms joined by ``+`` (a cell must satisfy every term)::

    vertices=2-6          the pruned cell has 2 to 6 vertices (``vertices=6``: exactly 6)
    edges=0-7             the pruned cell has at most 7 edges
    ops=conv3x3/maxpool3x3  every interior op is one of these (conv3x3, conv1x1, maxpool3x3, or the full names)
    1shot1-1              search space 1, 2 or 3 of NAS-Bench-1Shot1 (Zela, Siems and Hutter, ICLR 2020)
    all                   the whole space

Membership is a property of the cell (its canonical key, ``nasbench.canonical``), so every representation of the
same cell is in or out together. The cells of a subspace come from the space's own enumeration
(``nasbench.space.enumerate_cells``), filtered by the terms; the 1Shot1 spaces are enumerated from their definition.

NAS-Bench-1Shot1 builds cells from *choice blocks*: block i (1…n) picks an op and a fixed number of parents among
the input and the blocks before it, and the output picks its parents likewise (the paper's Table 1; the
repository automl/nasbench-1shot1, ``nasbench1shot1/core/search_spaces/search_space_{1,2,3}.py``):

=========  =======================  =========================================
space      parents of blocks 1…n    parents of the output
=========  =======================  =========================================
1          1, 2, 2, 2 (4 blocks)    2   (a fifth, unconnected vertex pads the cell to 7)
2          1, 1, 2, 2 (4 blocks)    3   (padded the same way)
3          1, 1, 1, 2, 2 (5 blocks) 2
=========  =======================  =========================================

A block that feeds no path to the output is a *loose end*: NAS-Bench-101 prunes it when the cell is queried, so its
op does not matter. A 1Shot1 subspace is the set of NAS-Bench-101 cells its configurations become after pruning.
The paper's sizes (6,240, 29,160 and 363,648 architectures) count configurations, not distinct cells:
``OneShotSpace.paper_count`` reproduces them (see its docstring; the published number of space 2 follows another
rule than spaces 1 and 3), ``OneShotSpace.cell_keys`` gives the distinct cells.

Usage::

    from nasbench_experiments.search import subspaces
    subspace = subspaces.parse("vertices=2-6+ops=conv3x3/maxpool3x3")
    subspace.keys()                                   # uint64 canonical keys of its cells in the space, ascending
    view = subspaces.restrict(nasbench, subspace)     # what Problem and the optimizers query on it
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nasbench import api, canonical, space
from nasbench.errors import ConfigurationError, InvalidSpecError
from nasbench.lib import config

# The op names a term may use (short and full), by their label in canonical keys.
_OP_NAMES: dict[str, int] = {}
for _label, _op in enumerate(config.AVAILABLE_OPS):
    _OP_NAMES[_op] = _label
    _OP_NAMES[_op.removesuffix("-bn-relu")] = _label
_SHORT_OPS = tuple(op.removesuffix("-bn-relu") for op in config.AVAILABLE_OPS)
SYNTAX = "terms joined by '+': vertices=A-B, edges=A-B, ops=OP/OP (conv3x3, conv1x1, maxpool3x3), 1shot1-1..3, all"


@dataclass(frozen=True)
class OneShotSpace:
    """One search space of NAS-Bench-1Shot1: the number of parents of each choice block, then of the output."""

    number: int
    parents: tuple[int, ...]  # blocks 1…n, then the output
    published_size: int  # "No. of architectures", the paper's Table 1

    @property
    def blocks(self) -> int:
        return len(self.parents) - 1

    def parent_choices(self) -> Iterator[tuple[tuple[int, ...], ...]]:
        """Every choice of parents: for vertex i (blocks 1…n, the output n+1), ``parents[i-1]`` of 0…i-1."""
        return _parent_choices(self.parents)

    def configurations(self) -> int:
        """Configurations of the space's ConfigSpace: a parent choice per vertex, an op per block."""
        choices = math.prod(math.comb(vertex, count) for vertex, count in enumerate(self.parents, 1))
        return choices * int(len(config.AVAILABLE_OPS) ** self.blocks)

    def paper_count(self) -> int:
        """Architectures counted as the paper's Table 1 counts spaces 1 and 3 (6,240 and 363,648): every choice of
        parents, loose ends included, times an op for each block that feeds another vertex (the op of a block
        nothing reads is not a choice). Space 2's published 29,160 is its number of configurations instead (this
        rule gives 16,632 for it): the table does not count the three spaces the same way."""
        total = 0
        for choice in self.parent_choices():
            feeding = {parent for parents in choice for parent in parents if parent > 0}
            total += int(len(config.AVAILABLE_OPS) ** len(feeding))
        return total

    def cell_keys(self) -> np.ndarray:
        """The canonical keys (uint64, ascending, distinct) of the NAS-Bench-101 cells of the space: each
        configuration with its loose ends pruned (the blocks with no path to the output, and their edges)."""
        return _one_shot_keys(self.parents)


ONESHOT1: dict[int, OneShotSpace] = {
    space.number: space
    for space in (
        OneShotSpace(1, (1, 2, 2, 2, 2), 6_240),
        OneShotSpace(2, (1, 1, 2, 2, 3), 29_160),
        OneShotSpace(3, (1, 1, 1, 2, 2, 2), 363_648),
    )
}


def _parent_choices(parents: tuple[int, ...]) -> Iterator[tuple[tuple[int, ...], ...]]:
    per_vertex = [list(itertools.combinations(range(vertex), count)) for vertex, count in enumerate(parents, 1)]
    return itertools.product(*per_vertex)


@functools.lru_cache(maxsize=4)
def _one_shot_keys(parents: tuple[int, ...]) -> np.ndarray:
    output = len(parents)
    pruned = set()
    for choice in _parent_choices(parents):
        used, stack = set(), [output]
        while stack:  # the blocks on a path to the output (every block has a path from the input)
            for parent in choice[stack.pop() - 1]:
                if parent > 0 and parent not in used:
                    used.add(parent)
                    stack.append(parent)
        kept = [0, *sorted(used), output]  # in order: parents come before their children
        position = {vertex: index for index, vertex in enumerate(kept)}
        bits = 0
        for vertex in kept[1:]:
            for parent in choice[vertex - 1]:
                bits |= 1 << canonical.edge_bit(position[parent], position[vertex])
        pruned.add((len(kept), bits))
    keys = {
        canonical.canonicalize(canonical.pack(size, bits, labels))
        for size, bits in pruned
        for labels in itertools.product(range(len(config.AVAILABLE_OPS)), repeat=size - 2)
    }
    return np.array(sorted(keys), dtype=np.uint64)


@functools.lru_cache(maxsize=1)
def space_keys() -> np.ndarray:
    """The canonical keys of every cell of NAS-Bench-101 (423,624), ascending."""
    keys: np.ndarray = space.enumerate_cells().keys
    return keys


@dataclass(frozen=True)
class Subspace:
    """A subspace: the conjunction of its terms (``parse`` builds it; ``text`` is its canonical spelling)."""

    vertices: tuple[int, int] = (canonical.MIN_VERTICES, canonical.MAX_VERTICES)
    edges: tuple[int, int] = (0, config.MAX_EDGES)
    ops: frozenset[int] = frozenset(range(len(config.AVAILABLE_OPS)))  # allowed interior op labels
    oneshot: int | None = None  # a NAS-Bench-1Shot1 search space

    @property
    def text(self) -> str:
        """The canonical spelling (``parse(subspace.text) == subspace``): default terms left out."""
        terms = []
        if self.oneshot is not None:
            terms.append(f"1shot1-{self.oneshot}")
        if self.vertices != Subspace.vertices:
            terms.append(f"vertices={_range_text(self.vertices)}")
        if self.edges != Subspace.edges:
            terms.append(f"edges={_range_text(self.edges)}")
        if self.ops != Subspace.ops:
            terms.append("ops=" + "/".join(_SHORT_OPS[label] for label in sorted(self.ops)))
        return "+".join(terms) or "all"

    @property
    def whole(self) -> bool:
        return self.text == "all"

    def keys(self) -> np.ndarray:
        """The canonical keys (uint64, ascending) of the cells of NAS-Bench-101 in this subspace."""
        return _keys(self)

    def admits_keys(self, keys: np.ndarray) -> np.ndarray:
        """bool[n]: which of these canonical keys satisfy the vertex, edge and op terms (not the 1Shot1 term)."""
        keys = np.asarray(keys, dtype=np.uint64)
        vertices, edges = canonical.vertices_and_edges(keys)
        keep = (vertices >= self.vertices[0]) & (vertices <= self.vertices[1])
        keep &= (edges >= self.edges[0]) & (edges <= self.edges[1])
        labels = canonical.label_slots(keys)  # -1 past the interior
        allowed = np.isin(labels, sorted(self.ops)) | (labels < 0)
        keep &= allowed.all(axis=1)
        return keep


@functools.lru_cache(maxsize=8)
def _keys(subspace: Subspace) -> np.ndarray:
    keys = space_keys() if subspace.oneshot is None else ONESHOT1[subspace.oneshot].cell_keys()
    kept: np.ndarray = keys[subspace.admits_keys(keys)]
    return kept


def _range_text(bounds: tuple[int, int]) -> str:
    low, high = bounds
    return str(low) if low == high else f"{low}-{high}"


def parse(text: str) -> Subspace:
    """The subspace ``text`` names (see the module docstring).

    Raises:
      ConfigurationError: one line naming the term that is wrong and the syntax.
    """
    fields: dict[str, Any] = {}
    for term in text.strip().split("+"):
        name, _, value = term.strip().partition("=")
        name = name.strip().lower()
        if name in fields or (name.startswith("1shot1-") and "oneshot" in fields):
            raise ConfigurationError(f"{text!r}: the term {name!r} is given twice ({SYNTAX})")
        if name == "all" and not value:
            continue
        if name.startswith("1shot1-") and not value:
            number = name.removeprefix("1shot1-")
            if number not in ("1", "2", "3"):
                raise ConfigurationError(
                    f"{text!r}: NAS-Bench-1Shot1 has search spaces 1, 2 and 3, not {number!r}"
                )
            fields["oneshot"] = int(number)
        elif name == "vertices":
            fields[name] = _parse_range(text, name, value, canonical.MIN_VERTICES, canonical.MAX_VERTICES)
        elif name == "edges":
            fields[name] = _parse_range(text, name, value, 0, config.MAX_EDGES)
        elif name == "ops":
            fields[name] = _parse_ops(text, value)
        else:
            raise ConfigurationError(f"{text!r}: unknown term {term.strip()!r} ({SYNTAX})")
    return Subspace(**fields)


def _parse_range(text: str, name: str, value: str, lowest: int, highest: int) -> tuple[int, int]:
    low, dash, high = value.strip().partition("-")
    try:
        bounds = (int(low), int(high) if dash else int(low))
    except ValueError:
        raise ConfigurationError(f"{text!r}: {name} must be N or A-B (whole numbers), got {value!r}") from None
    if not lowest <= bounds[0] <= bounds[1] <= highest:
        raise ConfigurationError(
            f"{text!r}: {name}={value} is not a range within {lowest}-{highest} (low end first)"
        )
    return bounds


def _parse_ops(text: str, value: str) -> frozenset[int]:
    labels = set()
    for name in value.split("/"):
        label = _OP_NAMES.get(name.strip().lower())
        if label is None:
            raise ConfigurationError(
                f"{text!r}: unknown op {name.strip()!r} (ops are {', '.join(_SHORT_OPS)}, joined with /)"
            )
        labels.add(label)
    return frozenset(labels)


class SubspaceView:
    """A dataset as a study on a subspace sees it: the methods ``Problem`` and the optimizers call, restricted.

    A cell outside the subspace is out of the domain: ``query`` raises ``OutOfDomainError`` (so a configuration of
    encoding A, B or C that becomes one scores as invalid: error 1 at cost 0, as the benchmark scores invalid
    configurations), ``is_valid`` is False (evolution on cells redraws the mutation), ``neighbors`` leaves it out
    (local search never proposes it), and ``sample`` draws only the subspace's cells held by the data, uniformly.
    """

    def __init__(self, nasbench: api.NASBench, subspace: Subspace, keys: np.ndarray) -> None:
        self.nasbench = nasbench
        self.subspace = subspace
        self.keys = keys  # the subspace's cells held by the data (uint64, ascending)
        self.valid_epochs = nasbench.valid_epochs
        self._members = frozenset(keys.tolist())
        self._optima: dict[int, tuple[float, float]] = {}

    def optimum(self, epochs: int, chunk: int = 4096) -> tuple[float, float]:
        """The best mean test and mean validation accuracy at ``epochs`` among the subspace's cells (each mean over
        the three runs, summed in order as ``Problem`` sums them, so the best cell's regret is exactly 0): what a
        subspace study's regrets are measured against. Queried in batches (a server answers each in one call)."""
        found = self._optima.get(epochs)
        if found is None:
            best_test = best_validation = -math.inf
            for start in range(0, len(self.keys), chunk):
                specs = [api.ModelSpec(*canonical.decode(key)) for key in self.keys[start : start + chunk].tolist()]
                for data in self.nasbench.query_batch(specs, epochs, repeat="all"):
                    best_test = max(best_test, sum(data["test_accuracy"]) / 3)
                    best_validation = max(best_validation, sum(data["validation_accuracy"]) / 3)
            found = self._optima[epochs] = (best_test, best_validation)
        return found

    def admits(self, model_spec: api.ModelSpec) -> bool:
        """True iff the spec (once pruned) is a cell of the subspace held by the data."""
        if not model_spec.valid_spec or model_spec.matrix is None or model_spec.ops is None:
            return False
        try:
            return canonical.canonical_key(model_spec.matrix, model_spec.ops) in self._members
        except InvalidSpecError:
            return False

    def query(self, model_spec: api.ModelSpec, epochs: int = 108, *, repeat: Any) -> dict[str, Any]:
        """``NASBench.query`` with a repeat policy, for the subspace's cells only (OutOfDomainError otherwise)."""
        if model_spec.valid_spec and not self.admits(model_spec):
            raise api.OutOfDomainError(f"the cell is not in the subspace {self.subspace.text}")
        return self.nasbench.query(model_spec, epochs, repeat=repeat)

    def is_valid(self, model_spec: api.ModelSpec) -> bool:
        return self.nasbench.is_valid(model_spec) and self.admits(model_spec)

    def neighbors(self, model_spec: api.ModelSpec) -> list[api.ModelSpec]:
        return [neighbor for neighbor in self.nasbench.neighbors(model_spec) if self.admits(neighbor)]

    def sample(self, k: int = 1, *, seed: int | None = None) -> list[api.ModelSpec]:
        """``k`` distinct cells of the subspace (at most all of them), uniformly, from this seed's generator."""
        rows = np.random.default_rng(seed).choice(len(self.keys), size=min(k, len(self.keys)), replace=False)
        return [api.ModelSpec(*canonical.decode(int(self.keys[row]))) for row in rows.tolist()]

    def hash_iterator(self) -> Sequence[str]:
        """The original hashes of the subspace's cells (computed when iterated; ``len`` is free)."""
        return _Hashes(self.keys)


Dataset = api.NASBench | SubspaceView  # what a run queries: the whole dataset, or a subspace of it


class _Hashes(Sequence[str]):
    def __init__(self, keys: np.ndarray) -> None:
        self._keys = keys

    def __len__(self) -> int:
        return len(self._keys)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [space.original_hash(int(key)) for key in self._keys[index]]
        return space.original_hash(int(self._keys[index]))


def held_keys(nasbench: api.NASBench, keys: np.ndarray) -> np.ndarray:
    """Those of ``keys`` whose cells the dataset holds (all of them for a store of the whole space; otherwise
    looked up by their original hashes, from the space's cached table)."""
    hashes = nasbench.hash_iterator()
    if len(hashes) >= space.NUM_CELLS:
        return keys
    table = space.load_space()
    digests = space.hex_digests(table.hashes[np.searchsorted(table.keys, keys)])
    held: np.ndarray = keys[np.array([digest in hashes for digest in digests], dtype=bool)]
    return held


_views: dict[tuple[int, Subspace], SubspaceView] = {}


def restrict(nasbench: api.NASBench, subspace: Subspace) -> SubspaceView:
    """The view of ``nasbench`` restricted to ``subspace`` (one per dataset object and subspace in a process: the
    answers ``Problem`` memoizes per view are shared by the runs of the process).

    Raises:
      ConfigurationError: the data holds no cell of the subspace.
    """
    key = (id(nasbench), subspace)
    view = _views.get(key)
    if view is None or view.nasbench is not nasbench:
        held = held_keys(nasbench, subspace.keys())
        if not len(held):
            raise ConfigurationError(f"the dataset holds no cell of the subspace {subspace.text}")
        view = _views[key] = SubspaceView(nasbench, subspace, held)
    return view
