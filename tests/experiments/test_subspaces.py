"""Subspaces: every subspace's cells against an enumeration written independently of the implementation (the
space's cells decoded one by one and filtered by a plain predicate; NAS-Bench-1Shot1's configurations built and
pruned by the API as its code builds them), the 1Shot1 sizes against the paper's Table 1, one-line errors for
malformed specs, and what a study on a subspace may propose."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from nasbench import api, canonical, space
from nasbench._cli import main
from nasbench.errors import ConfigurationError
from nasbench.lib import config
from nasbench_experiments.search import subspaces
from nasbench_experiments.search.problem import Problem, cell_id, optimize
from nasbench_experiments.search.registry import make_optimizer

Cell = tuple[int, np.ndarray, list[str]]  # canonical key, matrix, ops
SMALL = "vertices=2-5+ops=conv3x3/maxpool3x3"

PLAIN: dict[str, Callable[[np.ndarray, list[str]], bool]] = {
    "vertices=2-6": lambda matrix, ops: len(ops) <= 6,
    "vertices=5": lambda matrix, ops: len(ops) == 5,
    "edges=0-7": lambda matrix, ops: int(matrix.sum()) <= 7,
    "edges=9": lambda matrix, ops: int(matrix.sum()) == 9,
    "ops=conv3x3/maxpool3x3": lambda matrix, ops: set(ops[1:-1]) <= {api.CONV3X3, api.MAXPOOL3X3},
    "vertices=6-7+edges=8-9+ops=conv1x1-bn-relu/conv3x3": lambda matrix, ops: (
        len(ops) >= 6 and int(matrix.sum()) >= 8 and set(ops[1:-1]) <= {api.CONV1X1, api.CONV3X3}
    ),
}


@pytest.fixture(scope="module")
def every_cell() -> list[Cell]:
    """Every cell of NAS-Bench-101 as the space enumerates it, decoded to its matrix and ops."""
    return [(key, *canonical.decode(key)) for key in space.enumerate_cells().keys.tolist()]


@pytest.mark.parametrize("text", PLAIN)
def test_a_subspace_holds_exactly_the_cells_its_terms_describe(every_cell: list[Cell], text: str):
    expected = [key for key, matrix, ops in every_cell if PLAIN[text](matrix, ops)]
    found = subspaces.parse(text).keys()
    assert found.tolist() == expected
    assert 0 < len(found) < space.NUM_CELLS


def in_one_shot_space(matrix: np.ndarray, parents: tuple[int, ...]) -> bool:
    """Whether a pruned cell is a configuration of a 1Shot1 space, read off the cell: the output has as many
    parents as the space gives it, and the interior vertices, in some order that keeps every edge forward, have
    the parent counts of choice blocks taken in increasing block order (the blocks left out are the loose ends
    pruning removed; any parents of a block come before it)."""
    size = len(matrix)
    indegree = matrix.sum(axis=0).tolist()
    interior = sorted(indegree[1:-1])
    if indegree[-1] != parents[-1] or any(interior.count(n) > parents[:-1].count(n) for n in set(interior)):
        return False  # (a shortcut: no order can match then)
    edges = [(a, b) for a in range(1, size - 1) for b in range(1, size - 1) if matrix[a, b]]
    for order in itertools.permutations(range(1, size - 1)):
        position = {vertex: index for index, vertex in enumerate(order)}
        if any(position[a] > position[b] for a, b in edges):
            continue
        blocks = iter(parents[:-1])
        if all(any(count == indegree[vertex] for count in blocks) for vertex in order):
            return True
    return False


@pytest.mark.parametrize("number", [1, 2, 3])
def test_a_1shot1_space_holds_the_cells_that_match_its_parent_counts(every_cell: list[Cell], number: int):
    parents = subspaces.ONESHOT1[number].parents
    by_structure: dict[bytes, bool] = {}  # the ops play no part: each structure is decided once
    expected = []
    for key, matrix, _ in every_cell:
        structure = matrix.tobytes()
        if structure not in by_structure:
            by_structure[structure] = in_one_shot_space(matrix, parents)
        if by_structure[structure]:
            expected.append(key)
    assert subspaces.parse(f"1shot1-{number}").keys().tolist() == expected


@pytest.mark.parametrize("number", [1, 2])
def test_a_1shot1_space_holds_the_cells_its_configurations_become(space_table: space.SpaceTable, number: int):
    """The original way: every configuration as NAS-Bench-1Shot1's code builds it (a 7-vertex matrix; spaces 1 and 2
    pad their 4 blocks with an unconnected conv1x1 vertex), pruned by ModelSpec, named by its original hash."""
    oneshot = subspaces.ONESHOT1[number]
    pruned = set()
    for choice in oneshot.parent_choices():
        matrix = np.zeros((7, 7), dtype=np.int8)
        for vertex, chosen in enumerate(choice, 1):
            column = 6 if vertex == len(choice) else vertex
            matrix[list(chosen), column] = 1
        for labels in itertools.product(config.AVAILABLE_OPS, repeat=oneshot.blocks):
            padding = [api.CONV1X1] * (5 - oneshot.blocks)
            spec = api.ModelSpec(matrix, [api.INPUT, *labels, *padding, api.OUTPUT])
            assert spec.valid_spec
            pruned.add((spec.matrix.tobytes(), len(spec.ops), tuple(spec.ops)))
    hashes = set()
    for raw, size, ops in pruned:
        spec = api.ModelSpec(np.frombuffer(raw, dtype=np.int8).reshape(size, size), list(ops))
        hashes.add(spec.hash_spec(config.AVAILABLE_OPS))
    keys = subspaces.parse(f"1shot1-{number}").keys()
    assert {space_table.hash_of_key(int(key)) for key in keys} == hashes
    assert oneshot.configurations() == len(list(oneshot.parent_choices())) * 3**oneshot.blocks


def test_the_1shot1_sizes_are_the_papers():
    """Table 1 of Zela, Siems and Hutter (ICLR 2020): 6,240, 29,160 and 363,648 architectures. Spaces 1 and 3 are
    counted with loose ends, an op only for the blocks that feed a vertex; space 2's number is its configurations."""
    sizes = {number: oneshot.published_size for number, oneshot in subspaces.ONESHOT1.items()}
    assert sizes == {1: 6_240, 2: 29_160, 3: 363_648}
    assert subspaces.ONESHOT1[1].paper_count() == 6_240
    assert subspaces.ONESHOT1[3].paper_count() == 363_648
    assert subspaces.ONESHOT1[2].configurations() == 29_160
    assert subspaces.ONESHOT1[2].paper_count() != 29_160  # the table does not count space 2 as the others
    # the distinct NAS-Bench-101 cells are fewer: loose ends and isomorphic configurations collapse
    for oneshot in subspaces.ONESHOT1.values():
        assert len(oneshot.cell_keys()) < oneshot.published_size


@pytest.mark.parametrize(
    ("text", "canonical_text"),
    [
        ("all", "all"),
        ("vertices=2-7", "all"),
        (" Vertices = 2-6 ", "vertices=2-6"),
        ("ops=maxpool3x3/conv3x3-bn-relu+edges=5+1shot1-3", "1shot1-3+edges=5+ops=conv3x3/maxpool3x3"),
    ],
)
def test_a_subspace_has_one_canonical_spelling(text: str, canonical_text: str):
    assert subspaces.parse(text).text == canonical_text
    assert subspaces.parse(canonical_text) == subspaces.parse(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("vertices=8", "vertices=8 is not a range within 2-7"),
        ("vertices=6-3", "is not a range within 2-7 (low end first)"),
        ("edges=ten", "edges must be N or A-B (whole numbers), got 'ten'"),
        ("ops=conv5x5", "unknown op 'conv5x5' (ops are conv3x3, conv1x1, maxpool3x3"),
        ("1shot1-4", "NAS-Bench-1Shot1 has search spaces 1, 2 and 3, not '4'"),
        ("size=3", "unknown term 'size=3'"),
        ("vertices=3+vertices=4", "the term 'vertices' is given twice"),
        ("", "unknown term ''"),
    ],
)
def test_a_malformed_subspace_is_refused_in_one_line(text: str, message: str):
    with pytest.raises(ConfigurationError) as refused:
        subspaces.parse(text)
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)


def test_the_command_refuses_a_malformed_space_in_one_line(capsys, tmp_path: Path):
    out = tmp_path / "never"
    for flag in ("--space", "--bootstrap"):
        assert main(["compare", flag, "vertices=1-3", "--out", str(out), "--no-progress"]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert lines == [
            f"nasbench compare: error: {flag} 'vertices=1-3': vertices=1-3 is not a range within 2-7 (low end first)"
        ]
    assert main(["compare", "--space", "vertices=5", "--bootstrap", "vertices=5", "--out", str(out)]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["compare", "--bootstrap", "all", "--out", str(out)]) == 2
    assert "give a subspace, not 'all'" in capsys.readouterr().err
    assert not out.exists()


@pytest.fixture(scope="module")
def small_view(small_nasbench: api.NASBench) -> subspaces.SubspaceView:
    """The cells without 1x1 convolutions, of a store of the cells of 5 vertices at most."""
    return subspaces.restrict(small_nasbench, subspaces.parse(SMALL))


def admitted_keys(specs: list[api.ModelSpec]) -> set[int]:
    return {canonical.canonical_key(spec.matrix, spec.ops) for spec in specs}


def test_a_view_answers_only_for_its_cells(small_view: subspaces.SubspaceView, small_nasbench: api.NASBench):
    members = set(small_view.keys.tolist())
    assert members == set(subspaces.parse(SMALL).keys().tolist())  # the store holds every one
    drawn = small_view.sample(len(members) + 10, seed=1)
    assert admitted_keys(drawn) == members and len(drawn) == len(members)  # distinct, every one, no other
    assert len(small_view.hash_iterator()) == len(members)
    outside = next(spec for spec in small_nasbench.sample(100, seed=0) if api.CONV1X1 in spec.ops)
    assert not small_view.is_valid(outside) and small_nasbench.is_valid(outside)
    with pytest.raises(api.OutOfDomainError):
        small_view.query(outside, 108, repeat="all")
    inside = drawn[0]
    answer, direct = small_view.query(inside, 108, repeat="all"), small_nasbench.query(inside, 108, repeat="all")
    assert repr(answer) == repr(direct)  # the dataset's own answer (its adjacency is an array)
    for spec in drawn[:50]:
        neighbors = small_view.neighbors(spec)
        assert admitted_keys(neighbors) <= members
        assert admitted_keys(neighbors) == admitted_keys(small_nasbench.neighbors(spec)) & members


def test_the_optimum_of_a_view_is_its_best_cell(small_view: subspaces.SubspaceView):
    means = [
        (sum(data["test_accuracy"]) / 3, sum(data["validation_accuracy"]) / 3)
        for data in (small_view.query(spec, 108, repeat="all") for spec in small_view.sample(10_000, seed=0))
    ]
    assert small_view.optimum(108) == (max(test for test, _ in means), max(valid for _, valid in means))


@pytest.mark.parametrize(
    ("optimizer", "encoding"),
    [("rs", "cells"), ("re", "cells"), ("ls", "cells"), ("rl", "cells"), ("rs", "A"), ("re", "B"), ("ls", "C")],
)
def test_an_optimizer_on_a_subspace_evaluates_only_its_cells(
    small_view: subspaces.SubspaceView, optimizer: str, encoding: str
):
    """Every valid evaluation is a cell of the subspace; a configuration of another cell is invalid at no cost; on
    cells, random search, evolution and local search propose nothing else."""
    problem = Problem(small_view, encoding, seed=3, budget_s=1e5, max_evaluations=300)
    optimize(make_optimizer(optimizer, problem), problem)
    columns = problem.columns()
    valid = columns["valid"]
    assert valid.any()
    assert (columns["cost"][~valid] == 0).all()
    members = {cell_id(*canonical.decode(key)) for key in small_view.keys.tolist()}
    assert set(columns["cell"][valid].tolist()) <= members
    if encoding == "cells" and optimizer != "rl":  # REINFORCE proposes encoding A's configurations
        assert valid.all()
