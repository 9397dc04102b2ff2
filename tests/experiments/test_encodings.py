"""The benchmark's encodings (automl/nas_benchmarks, tabular_benchmarks/nas_cifar10.py; docs/compare.md):
hand-checked configurations, and the benchmark's procedure written out literally."""

from __future__ import annotations

import numpy as np
import pytest

from nasbench import api
from nasbench.errors import ConfigurationError
from nasbench.lib import graph_util
from nasbench_experiments.search.encodings import ENCODINGS, OP_NAMES, POSITIONS
from nasbench_experiments.search.problem import Problem

C1, C3, MP = api.CONV1X1, api.CONV3X3, api.MAXPOOL3X3
OPS = {name: op for name, op in zip(OP_NAMES, [C3, C1, MP, C3, C1], strict=True)}


def edges_of(matrix: np.ndarray) -> set[tuple[int, int]]:
    return {(int(a), int(b)) for a, b in zip(*np.nonzero(matrix), strict=True)}


def config_a(edges: set[int]) -> dict:
    return {**OPS, **{f"edge_{i}": int(i in edges) for i in range(POSITIONS)}}


def test_a_sets_the_upper_triangle_row_major():
    # positions in np.triu_indices(7, 1) order: (0,1)=0, (1,2)=6, (2,3)=11, (3,4)=15, (4,5)=18, (5,6)=20
    spec = ENCODINGS["A"].to_spec(config_a({0, 6, 11, 15, 18, 20}))
    assert edges_of(spec.original_matrix) == {(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6)}
    assert spec.original_ops == ["input", C3, C1, MP, C3, C1, "output"]
    assert spec.valid_spec and spec.matrix.shape == (7, 7)


def test_a_with_more_than_nine_edges_is_invalid_before_pruning():
    # ten edges, although pruning would leave a valid chain 0 -> 6 plus dangling edges
    assert ENCODINGS["A"].to_spec(config_a({5, *range(6, 15)})) is None
    assert ENCODINGS["A"].to_spec(config_a({5, *range(6, 14)})) is not None  # nine edges: queried


def test_b_collapses_duplicates_and_keeps_the_benchmarks_bit_order():
    # position p is bit 20 - p of the integer; bit b is the edge x -> y with x + y(y-1)/2 = b:
    # position 20 -> bit 0 -> (0,1); position 4 -> bit 16 -> (1,6); position 5 -> bit 15 -> (0,6)
    config = {**OPS, **{f"edge_{i}": p for i, p in enumerate([20, 4, 5, 4, 4, 20, 5, 5, 4])}}
    spec = ENCODINGS["B"].to_spec(config)
    assert edges_of(spec.original_matrix) == {(0, 1), (1, 6), (0, 6)}
    assert spec.matrix.tolist() == [[0, 1, 1], [0, 0, 1], [0, 0, 0]]
    assert spec.ops == ["input", C3, "output"]


def test_b_equals_the_literal_reference_procedure():
    rng = np.random.default_rng(0)
    encoding = ENCODINGS["B"]
    for config in encoding.sample_many(rng, 200):
        bitlist = [0] * POSITIONS
        for i in range(9):
            bitlist[config[f"edge_{i}"]] = 1
        out = 0
        for bit in bitlist:
            out = (out << 1) | bit
        expected = np.fromfunction(graph_util.gen_is_edge_fn(out), (7, 7), dtype=np.int8)
        assert np.array_equal(encoding.matrix(config), expected)


def test_c_takes_the_top_k_weights():
    weights = {f"edge_{i}": 0.01 * (i + 1) for i in range(POSITIONS)}  # distinct, all below 0.3
    weights.update({"edge_0": 0.9, "edge_10": 0.8, "edge_5": 0.7})  # (0,1), (1,6), (0,6)
    encoding = ENCODINGS["C"]
    spec = encoding.to_spec({**OPS, **weights, "num_edges": 2})
    assert edges_of(spec.original_matrix) == {(0, 1), (1, 6)}
    assert spec.matrix.tolist() == [[0, 1, 0], [0, 0, 1], [0, 0, 0]]
    spec = encoding.to_spec({**OPS, **weights, "num_edges": 3})
    assert edges_of(spec.original_matrix) == {(0, 1), (1, 6), (0, 6)}
    assert not encoding.to_spec({**OPS, **weights, "num_edges": 0}).valid_spec


def test_c_equals_the_literal_reference_procedure():
    rng = np.random.default_rng(1)
    encoding = ENCODINGS["C"]
    rows, cols = np.triu_indices(7, k=1)
    for config in encoding.sample_many(rng, 200):
        weights = [config[f"edge_{i}"] for i in range(POSITIONS)]
        chosen = np.argsort(weights)[::-1][: config["num_edges"]]
        expected = np.zeros((7, 7), dtype=np.int8)
        for i in chosen:
            expected[rows[i], cols[i]] = 1
        assert np.array_equal(encoding.matrix(config), expected)


def test_configspace_has_the_benchmarks_hyperparameters():
    pytest.importorskip("ConfigSpace", reason="ConfigSpace comes with the experiments extra")
    space = ENCODINGS["B"].configspace(seed=0)
    names = set(space.keys())
    assert names == {*OP_NAMES, *(f"edge_{i}" for i in range(9))}
    assert list(space["edge_3"].choices) == list(range(21))
    assert list(space["op_node_0"].choices) == [C1, C3, MP]
    c_space = ENCODINGS["C"].configspace(seed=0)
    assert (c_space["num_edges"].lower, c_space["num_edges"].upper) == (0, 9)
    config = dict(c_space.sample_configuration())
    assert ENCODINGS["C"].to_spec(config) is not None


@pytest.mark.parametrize("encoding", ["A", "B", "C"])
def test_invalid_configurations_score_error_one_at_no_cost(encoding: str, small_nasbench: api.NASBench):
    problem = Problem(small_nasbench, encoding, seed=0, budget_s=1e9)
    disconnected = {**OPS, **{f"edge_{i}": 0 for i in range(POSITIONS)}}
    if encoding == "B":
        disconnected.update({f"edge_{i}": 20 for i in range(9)})  # only (0,1): not connected to the output
    if encoding == "C":
        disconnected.update({"num_edges": 0, **{f"edge_{i}": 0.5 + 0.01 * i for i in range(POSITIONS)}})
    evaluation = problem.evaluate(disconnected)
    assert evaluation == (1.0, 0.0, False)
    assert problem.elapsed == 0.0 and problem.columns()["cell"].tolist() == [-1]


def test_a_valid_configuration_scores_one_of_its_cells_runs(small_nasbench: api.NASBench):
    problem = Problem(small_nasbench, "A", seed=0, budget_s=1e9)
    config = config_a({0, 10, 5})  # (0,1), (1,6), (0,6): input -> op_node_0 -> output plus input -> output
    evaluation = problem.evaluate(config)
    _, computed = small_nasbench.get_metrics_from_spec(ENCODINGS["A"].to_spec(config))
    runs = computed[108]
    assert evaluation.valid
    assert (1 - evaluation.validation_error, evaluation.cost) in {
        (run["final_validation_accuracy"], run["final_training_time"]) for run in runs
    }
    columns = problem.columns()
    assert columns["mean_test_accuracy"][0] == np.mean([run["final_test_accuracy"] for run in runs])


def test_a_cell_missing_from_a_subset_store_is_named_not_a_bare_hash(small_nasbench: api.NASBench):
    """The benchmark's data holds every valid cell; a subset store (cells of up to 5 vertices here) lacks the
    7-vertex chain: one error naming the cell and what to do, not the UnknownCellError's bare hash."""
    problem = Problem(small_nasbench, "A", seed=0, budget_s=1e9)
    chain = config_a({0, 6, 11, 15, 18, 20})
    spec = ENCODINGS["A"].to_spec(chain)
    module_hash = spec.hash_spec(small_nasbench.config["available_ops"])
    with pytest.raises(ConfigurationError) as info:
        problem.evaluate(chain)
    assert str(info.value) == (
        f"the dataset has no cell {module_hash}, a valid cell of the space: encoding A needs a store of every cell "
        "(use the encoding 'cells' on a subset store)"
    )
