"""Sampling: uniform over the cells passing the filters (a chi-square test), distinct, seeded, and filtered
exactly as an independent count of the store's cells says.

The uniformity test has a fixed seed, so it is deterministic; its threshold is the chi-square quantile that a
uniform sampler exceeds with probability 0.1 % (counts of draws without replacement vary slightly less than
multinomial counts, which only lowers that rate). A sampler biased toward some cells exceeds it by far: returning
the first k rows gives a statistic over 100 times the threshold.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from nasbench import api, canonical
from nasbench._engine.engine import Engine
from nasbench._engine.filters import SampleFilter
from nasbench.errors import InvalidSpecError

FALSE_ALARM_RATE = 1e-3


@pytest.fixture(scope="module")
def engine(small_store: Path):
    opened = Engine.open(small_store)
    yield opened
    opened.close()


def _cells(engine: Engine) -> list[tuple[int, int, set[str], int]]:
    """Per row, computed from the cell itself: (vertices, edges, interior ops, parameters)."""
    found = []
    for row, key in enumerate(engine.store.keys.tolist()):
        matrix, ops = canonical.decode(key)
        found.append((len(ops), int(matrix.sum()), set(ops[1:-1]), int(engine.store.parameters[row])))
    return found


@pytest.mark.parametrize(
    ("filters", "population"),
    [
        pytest.param({"num_vertices": [4]}, 84, id="4-vertices"),
        pytest.param({}, 2532, id="everything"),
        pytest.param(
            {"num_vertices": [5], "num_edges": [4, 6], "ops": ["maxpool3x3", "conv3x3-bn-relu"]}, None, id="mix"
        ),
    ],
)
def test_draws_are_uniform(engine: Engine, filters: dict, population: int | None) -> None:
    eligible = np.flatnonzero(engine.filter_mask(SampleFilter.of(**filters)))
    if population is not None:
        assert len(eligible) == population
    k = 10
    draws = max(100, 100 * len(eligible) // k)  # about 100 expected picks per cell
    rng = np.random.default_rng(20240611)
    counts = np.zeros(engine.cells, dtype=np.int64)
    for _ in range(draws):
        rows = engine.sample(k, rng, SampleFilter.of(**filters))
        assert len(set(rows.tolist())) == k, "a sample never repeats a cell"
        counts[rows] += 1
    assert counts[np.setdiff1d(np.arange(engine.cells), eligible)].sum() == 0, "only cells passing the filters"
    observed = counts[eligible]
    expected = draws * k / len(eligible)
    statistic = float(((observed - expected) ** 2 / expected).sum())
    assert statistic < stats.chi2.ppf(1 - FALSE_ALARM_RATE, len(eligible) - 1), (
        statistic,
        observed.min(),
        observed.max(),
    )


def test_order_within_a_sample_is_uniform_too(engine: Engine) -> None:
    """The first cell of a sample is itself a uniform draw (a sampler that sorts its picks fails this)."""
    rng = np.random.default_rng(7)
    four = SampleFilter.of(num_vertices=[4])
    firsts = np.bincount([int(engine.sample(5, rng, four)[0]) for _ in range(8400)], minlength=engine.cells)
    eligible = np.flatnonzero(engine.filter_mask(SampleFilter.of(num_vertices=[4])))
    statistic = float(((firsts[eligible] - 100) ** 2 / 100).sum())
    assert statistic < stats.chi2.ppf(1 - FALSE_ALARM_RATE, len(eligible) - 1)


def test_seed_decides_the_sample(engine: Engine) -> None:
    samples = [tuple(engine.sample(8, np.random.default_rng(seed)).tolist()) for seed in range(20)]
    assert len(set(samples)) == 20, "different seeds draw different samples"
    assert samples == [tuple(engine.sample(8, np.random.default_rng(seed)).tolist()) for seed in range(20)]


def test_a_full_sample_is_a_permutation_of_the_eligible_cells(engine: Engine) -> None:
    eligible = np.flatnonzero(engine.filter_mask(SampleFilter.of(num_vertices=[4])))
    rows = engine.sample(84, np.random.default_rng(3), SampleFilter.of(num_vertices=[4]))
    assert sorted(rows.tolist()) == eligible.tolist() and rows.tolist() != eligible.tolist()


FILTERS = [
    pytest.param({"num_vertices": [3, 5]}, id="vertices"),
    pytest.param({"num_edges": [2]}, id="edges"),
    pytest.param({"ops": ["conv1x1-bn-relu"]}, id="one-op"),
    pytest.param({"ops": ["conv3x3-bn-relu", "maxpool3x3"], "num_vertices": [5]}, id="two-ops"),
    pytest.param({"min_parameters": 3_000_000}, id="min-parameters"),
    pytest.param({"max_parameters": 1_000_000}, id="max-parameters"),
    pytest.param({"min_parameters": 1_500_000, "max_parameters": 2_000_000, "num_edges": [4, 5]}, id="range"),
    pytest.param({"num_vertices": [6]}, id="none"),
]


def _passes(cell: tuple[int, int, set[str], int], filters: dict) -> bool:
    vertices, edges, ops, parameters = cell
    return (
        vertices in filters.get("num_vertices", [vertices])
        and edges in filters.get("num_edges", [edges])
        and ops <= set(filters.get("ops", ops))
        and filters.get("min_parameters", parameters) <= parameters <= filters.get("max_parameters", parameters)
    )


@pytest.mark.parametrize("filters", FILTERS)
def test_filters_select_exactly_the_matching_cells(engine: Engine, filters: dict) -> None:
    expected = [row for row, cell in enumerate(_cells(engine)) if _passes(cell, filters)]
    where = SampleFilter.of(**filters)
    assert sorted(engine.sample(len(expected), np.random.default_rng(0), where).tolist()) == expected
    with pytest.raises(InvalidSpecError, match=f"^asked for {len(expected) + 1} cells but only {len(expected)} pass"):
        engine.sample(len(expected) + 1, np.random.default_rng(0), SampleFilter.of(**filters))


def test_bad_arguments(engine: Engine) -> None:
    with pytest.raises(InvalidSpecError, match=r"^k must be at least 0, got -1$"):
        engine.sample(-1, np.random.default_rng(0))
    with pytest.raises(InvalidSpecError, match=r"^unknown op 'conv5x5' \(available ops = \["):
        SampleFilter.of(ops=["conv5x5", "maxpool3x3"])
    assert engine.sample(0, np.random.default_rng(0)).tolist() == []


@pytest.mark.parametrize("bad", [-1, [3, -2], [2.5], ["5"], np.int64(-3)], ids=["int", "list", "float", "str", "numpy"])
def test_counts_are_integers_of_at_least_0(bad) -> None:
    """A single count is checked as one in a collection (a negative count was once kept and matched nothing)."""
    named = bad[-1] if isinstance(bad, list) else bad
    for name in ("num_vertices", "num_edges"):
        message = rf"^{name} must hold counts \(integers of at least 0\), got {re.escape(repr(named))}$"
        with pytest.raises(InvalidSpecError, match=message):
            SampleFilter.of(**{name: bad})


def test_a_count_of_0_and_a_single_count_are_counts(engine: Engine) -> None:
    assert SampleFilter.of(num_edges=[0], num_vertices=np.int64(4)) == SampleFilter(num_vertices=(4,), num_edges=(0,))
    assert not engine.filter_mask(SampleFilter.of(num_edges=0)).any()  # every cell has an edge
    assert engine.filter_mask(SampleFilter.of(num_vertices=4)).sum() == 84


def test_an_op_named_twice_is_allowed_once(engine: Engine) -> None:
    twice = SampleFilter.of(ops=["conv1x1-bn-relu", "conv1x1-bn-relu"])
    np.testing.assert_array_equal(
        engine.filter_mask(twice), engine.filter_mask(SampleFilter.of(ops=["conv1x1-bn-relu"]))
    )
    assert 0 < engine.filter_mask(twice).sum() < engine.cells


def test_the_api_draws_from_its_own_seeded_generator(small_store: Path) -> None:
    """Unseeded calls continue one generator seeded by the constructor: successive samples differ, and two
    objects built with the same seed draw the same sequence; an explicit seed is the engine's draw."""
    one, two = api.NASBench(small_store, seed=5), api.NASBench(small_store, seed=5)
    first = [[s.hash_spec(one.config["available_ops"]) for s in one.sample(6)] for _ in range(3)]
    second = [[s.hash_spec(two.config["available_ops"]) for s in two.sample(6)] for _ in range(3)]
    assert first == second and len({tuple(sample) for sample in first}) == 3
    engine = Engine.open(small_store)
    seeded = [engine.store.hash_of_row(row) for row in engine.sample(6, np.random.default_rng(99))]
    assert [s.hash_spec(one.config["available_ops"]) for s in one.sample(6, seed=99)] == seeded
    engine.close()


def test_unseeded_samples_draw_their_seeds_from_the_whole_range(small_store: Path) -> None:
    """Each unseeded call draws a 63-bit seed from the object's generator: 300 calls give 300 different samples
    (seeds from a small range would repeat samples; any range under 300 seeds must)."""
    nasbench = api.NASBench(small_store, seed=1)
    samples = {tuple(s.hash_spec(nasbench.config["available_ops"]) for s in nasbench.sample(3)) for _ in range(300)}
    assert len(samples) == 300
    nasbench.close()


def test_parameter_bounds_are_inclusive(engine: Engine) -> None:
    """Bounds equal to stored parameter counts: the cells at the bound pass (both ends inclusive)."""
    cells = _cells(engine)
    counts = sorted({cell[3] for cell in cells})
    for low, high in ((counts[5], counts[5]), (counts[10], counts[40]), (counts[0], counts[0]), (counts[-1], None)):
        filters = {"min_parameters": low} if high is None else {"min_parameters": low, "max_parameters": high}
        expected = [row for row, cell in enumerate(cells) if _passes(cell, filters)]
        assert expected and any(cells[row][3] == low for row in expected)
        where = SampleFilter.of(**filters)
        assert sorted(engine.sample(len(expected), np.random.default_rng(0), where).tolist()) == expected
        assert engine.filter_mask(where).nonzero()[0].tolist() == expected
    at_the_minimum = engine.filter_mask(SampleFilter.of(max_parameters=counts[0])).nonzero()[0].tolist()
    assert at_the_minimum == [row for row, cell in enumerate(cells) if cell[3] == counts[0]]


def test_cells_at_the_first_and_last_rows(engine: Engine) -> None:
    store = engine.store
    for row in (0, 1, engine.cells - 1):
        key = store.keys.item(row)
        by_key = engine.cell_by_key(key)
        by_hash = engine.cell_by_hash(store.hashes[row].tobytes())
        assert by_key is not None and by_hash is not None
        assert by_key.key == by_hash.key == key and by_key.parameters == store.parameters.item(row)
        np.testing.assert_array_equal(by_key.metrics, store.metrics[row])
        np.testing.assert_array_equal(by_hash.metrics, store.metrics[row])
    assert engine.cell_by_key(0) is None
    assert engine.cell_by_hash(b"\xff" * 16) is None
    assert engine.rows_of_keys(store.keys[[0, engine.cells - 1]]).tolist() == [0, engine.cells - 1]
