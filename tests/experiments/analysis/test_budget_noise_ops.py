"""Budget correlation, noise and ops against independent computations: scipy.stats.spearmanr on subsets chosen
directly from the store, numpy on the repeats, and op swaps found by decoding and re-encoding each cell."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from nasbench import canonical
from nasbench._store.reader import Store
from nasbench.errors import ConfigurationError
from nasbench.lib import config
from nasbench_experiments.analysis import budget_correlation, columns, noise, ops


def _store_accuracy(store: Store, budget: int, field: int = 6) -> np.ndarray:
    return store.metrics[:, store.epoch_index(budget), :, field].mean(axis=1)


def _top(store: Store, values: np.ndarray, fraction: float) -> np.ndarray:
    """Store rows of the top fraction, chosen independently: lexsort by (-value, key)."""
    order = np.lexsort((store.keys, -values))
    return order[: math.ceil(fraction * store.cells)] if fraction < 1 else order


@pytest.mark.parametrize("store_name", ["small_store", "full_store"])
def test_budget_correlation_equals_spearmanr_on_the_same_subsets(request, store_name: str) -> None:
    path = request.getfixturevalue(store_name)
    result = budget_correlation.budget_correlation(columns.load(path))
    store = Store.open(path)
    entries = [(i, j) for i in range(6) for j in range(5)]
    if store_name == "full_store":  # scipy on 423,624 cells is slow: a few entries, both ends of the table
        entries = [(0, 0), (2, 1), (5, 2), (3, 3), (1, 4)]
    for i, j in entries:
        small, large = result.pairs[i]
        rows = _top(store, _store_accuracy(store, large), result.fractions[j])
        expected = stats.spearmanr(_store_accuracy(store, small)[rows], _store_accuracy(store, large)[rows])
        assert result.spearman[i, j] == pytest.approx(expected.statistic, abs=1e-10), (small, large, j)
        assert result.cells[i, j] == len(rows)
    store.close()


def test_budget_correlation_by_test_accuracy(small_store) -> None:
    result = budget_correlation.budget_correlation(columns.load(small_store), metric="test")
    store = Store.open(small_store)
    rows = _top(store, _store_accuracy(store, 108, 7), 0.25)
    expected = stats.spearmanr(_store_accuracy(store, 36, 7)[rows], _store_accuracy(store, 108, 7)[rows])
    assert result.spearman[5, 2] == pytest.approx(expected.statistic, abs=1e-10)
    assert "final test accuracy" in result.rule
    store.close()


def test_a_budget_absent_from_the_data_is_a_clear_error(only108_store) -> None:
    data = columns.load(only108_store)
    with pytest.raises(ConfigurationError, match=r"budget 4 epochs is not in this dataset \(it holds: 108\)"):
        budget_correlation.budget_correlation(data)
    with pytest.raises(ConfigurationError, match="unknown metric 'loss'"):
        budget_correlation.budget_correlation(data, pairs=[(108, 108)], metric="loss")


def test_noise_against_numpy_and_scipy(small_store, small_columns) -> None:
    result = noise.noise(small_columns)
    store = Store.open(small_store)
    for budget in store.epochs:
        runs = store.metrics[:, store.epoch_index(budget), :, 6]
        values = result.budgets[budget]
        assert values["mean_std"] == pytest.approx(np.std(runs, axis=1, ddof=1).mean(), rel=1e-12)
        assert values["mean_range"] == pytest.approx(np.ptp(runs, axis=1).mean(), rel=1e-12)
        assert sum(b["cells"] for b in values["bins"]) == store.cells and len(values["bins"]) == 20
        best_bin = _top(store, runs.mean(axis=1), 1.0)[: values["bins"][0]["cells"]]
        assert values["bins"][0]["median_std"] == pytest.approx(np.median(np.std(runs[best_bin], axis=1, ddof=1)))
        top = _top(store, runs.mean(axis=1), 0.1)
        for a, b in ((0, 1), (0, 2), (1, 2)):
            assert values["repeat_spearman"]["all"][f"{a}-{b}"] == pytest.approx(
                stats.spearmanr(runs[:, a], runs[:, b]).statistic, abs=1e-10
            )
            assert values["repeat_spearman"]["top 10%"][f"{a}-{b}"] == pytest.approx(
                stats.spearmanr(runs[top, a], runs[top, b]).statistic, abs=1e-10
            )
    store.close()


def test_ops_against_swapping_each_op_by_hand(small_columns) -> None:
    result = ops.ops(small_columns)
    accuracy = small_columns.accuracy(108)
    time = small_columns.training_time(108)
    row_of = {key: row for row, key in enumerate(small_columns.keys.tolist())}
    names = list(config.AVAILABLE_OPS)
    changes: dict[tuple[int, int], list[float]] = {}
    time_changes: dict[tuple[int, int], list[float]] = {}
    for row, key in enumerate(small_columns.keys.tolist()):
        matrix, cell_ops = canonical.decode(key)
        for vertex in range(1, len(cell_ops) - 1):
            for op in names:
                if op == cell_ops[vertex]:
                    continue
                other = row_of[canonical.canonical_key(matrix, [*cell_ops[:vertex], op, *cell_ops[vertex + 1 :]])]
                pair = (names.index(cell_ops[vertex]), names.index(op))
                changes.setdefault(pair, []).append(accuracy[other] - accuracy[row])
                time_changes.setdefault(pair, []).append(time[other] - time[row])
    for (a, b), values in changes.items():
        assert result.swap_count[a, b] == len(values)
        assert result.swap_mean[a, b] == pytest.approx(np.mean(values), abs=1e-12)
        assert result.swap_std[a, b] == pytest.approx(np.std(values), abs=1e-6)
        assert result.swap_time_mean[a, b] == pytest.approx(np.mean(time_changes[(a, b)]), rel=1e-9)
    assert np.isnan(np.diag(result.swap_mean)).all()
    labels = canonical.label_slots(small_columns.keys)
    for op in range(3):
        count = (labels == op).sum(axis=1)
        for number in range(6):
            chosen = accuracy[count == number]
            assert result.count_cells[op, number] == len(chosen)
            if len(chosen):
                assert result.count_mean[op, number] == pytest.approx(chosen.mean())
