"""Pareto frontier and summary: a hand-built store where the frontier and the optima are known, and a
brute-force dominance check on random data with ties."""

from __future__ import annotations

import numpy as np
import pytest

from nasbench import api, canonical, model
from nasbench._engine.optima import optima
from nasbench_experiments.analysis import columns, pareto, summary
from tests.experiments.analysis.conftest import HAND_CELLS, hand_keys


def _names_of(data: columns.Columns, rows) -> list[str]:
    by_key = {key: name for name, key in hand_keys().items()}
    return [by_key[int(data.keys[row])] for row in rows]


def test_frontier_of_the_hand_built_store(hand_store) -> None:
    data = columns.load(hand_store)
    result = pareto.pareto(data)
    by_parameters = result.frontiers["parameters"]
    assert _names_of(data, by_parameters.rows) == ["A", "B", "E", "F", "H"]  # C, ResNet, Inception dominated
    np.testing.assert_allclose(by_parameters.cost, [100, 200, 400, 400, 600])
    by_time = result.frontiers["training_time"]
    # times: Inception 600 (0.89), ResNet 700 (0.85), C 800 (0.84), B 900, A 1000, E 2000 (0.90), F 2500, H 3000
    assert _names_of(data, by_time.rows) == ["Inception-like", "E", "H"]
    references = {ref["name"]: ref for ref in by_parameters.references}
    assert references["ResNet-like"]["gap"] == pytest.approx(0.0) and references["ResNet-like"]["cost_ratio"] == (
        pytest.approx(200 / 300)
    )
    assert references["Inception-like"]["gap"] == pytest.approx(0.01)
    assert references["Inception-like"]["cost_ratio"] == pytest.approx(400 / 500)
    on_time = {ref["name"]: ref for ref in by_time.references}
    assert on_time["Inception-like"]["gap"] == pytest.approx(0.0) and on_time["Inception-like"]["cost_ratio"] == 1.0
    assert by_parameters.best_cost_quantile == pytest.approx(7 / 8)  # H is the most expensive here


def test_frontier_against_flops_uses_the_networks_flops(hand_store) -> None:
    """The third cost: FLOPs of each cell's network for one 32x32x3 image (nasbench.model's arithmetic); the
    frontier is the dominance rule applied to them."""
    data = columns.load(hand_store)
    result = pareto.pareto(data)
    by_flops = result.frontiers["flops"]
    flops = [float(model.network_stats(api.ModelSpec(*canonical.decode(int(key)))).flops) for key in data.keys.tolist()]
    accuracy = data.accuracy(108, "validation")
    np.testing.assert_array_equal(by_flops.rows, pareto.frontier_rows(np.array(flops), accuracy))
    np.testing.assert_array_equal(by_flops.cost, np.array(flops)[by_flops.rows])
    inception = {ref["name"]: ref for ref in by_flops.references}["Inception-like"]
    assert inception["cost"] == 804_005_888


def test_summary_of_the_hand_built_store_names_the_known_optima(hand_store) -> None:
    data = columns.load(hand_store)
    result = summary.summarize(data)
    best = {(cell["budget"], cell["by"]): cell for cell in result.best}
    assert _names_of(data, [best[(108, "validation")]["row"]]) == ["H"]
    assert _names_of(data, [best[(108, "test")]["row"]]) == ["Inception-like"]
    assert result.optima[108]["validation_accuracy"] == pytest.approx(0.95)
    assert result.optima[108]["test_accuracy"] == pytest.approx(0.97)
    assert best[(108, "validation")]["parameters"] == HAND_CELLS["H"][0]
    assert best[(108, "validation")]["training_time"] == pytest.approx(3000.0)
    assert result.by_vertices[4] == 1 and result.by_vertices[7] == 1 and result.by_vertices[5] == 6


def test_frontier_rows_against_brute_force_dominance() -> None:
    rng = np.random.default_rng(4)
    cost = rng.integers(0, 40, 400).astype(float)
    accuracy = (cost + rng.integers(0, 15, 400)) / 60  # correlated with cost, ties on both axes
    found = set(pareto.frontier_rows(cost, accuracy).tolist())
    expected = {
        i
        for i in range(len(cost))
        if not any(
            cost[j] <= cost[i] and accuracy[j] >= accuracy[i] and (cost[j] < cost[i] or accuracy[j] > accuracy[i])
            for j in range(len(cost))
        )
    }
    assert found == expected and len(expected) > 3


def test_summary_against_direct_computation(small_store, small_columns) -> None:
    result = summary.summarize(small_columns)
    from nasbench._store.reader import Store

    store = Store.open(small_store)
    assert {str(k): v for k, v in result.by_vertices.items()} == store.manifest["cells_per_vertices"]
    for budget_index, budget in enumerate(store.epochs):
        validation = store.metrics[:, budget_index, :, 6].mean(axis=1)
        values = result.distributions[budget]["validation"]
        assert sum(values["histogram"]) == store.cells
        assert values["quantiles"]["0.5"] == np.median(validation)
        assert values["quantiles"]["1"] == validation.max()
        keys = store.keys.astype(np.int64)
        row = max(range(store.cells), key=lambda r: (validation[r], -keys[r]))  # ties: lowest key
        best = next(cell for cell in result.best if cell["budget"] == budget and cell["by"] == "validation")
        assert best["key"] == int(store.keys[row]) and best["hash"] == store.hash_of_row(row)
    found = optima(small_columns.metrics, small_columns.epochs)
    assert result.optima[108]["test_accuracy"] == found[108].test_accuracy
    store.close()
