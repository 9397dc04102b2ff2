"""The public surface of the drop-in modules, by behaviour: the original's names with the original's signatures
and defaults, the constants' values, the configuration's 25 values, and each ``lib`` function answering one of
the original's own test vectors (google-research/nasbench: nasbench/api.py, nasbench/lib/config.py, nasbench/tests)."""

from __future__ import annotations

import inspect
import pickle

import numpy as np
import pytest

from nasbench import api
from nasbench.lib import config, graph_util, model_spec

# build_config() of the original (google-research/nasbench nasbench/lib/config.py), in its order
ORIGINAL_CONFIG = {
    "module_vertices": 7,
    "max_edges": 9,
    "available_ops": ["conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"],
    "num_repeats": 3,
    "train_data_files": [],
    "valid_data_file": "",
    "test_data_file": "",
    "sample_data_file": "",
    "data_format": "channels_last",
    "num_labels": 10,
    "stem_filter_size": 128,
    "num_stacks": 3,
    "num_modules_per_stack": 3,
    "batch_size": 256,
    "train_epochs": 108,
    "train_seconds": 14400.0,
    "learning_rate": 0.1,
    "lr_decay_method": "COSINE_BY_STEP",
    "momentum": 0.9,
    "weight_decay": 0.0001,
    "max_attempts": 5,
    "intermediate_evaluations": ["0.5"],
    "use_tpu": True,
    "tpu_iterations_per_loop": 100,
    "tpu_num_shards": 2,
}

# google-research/nasbench nasbench/api.py: positional parameters and their defaults (extensions may add
# keyword-only ones)
ORIGINAL_SIGNATURES = {
    "__init__": [("dataset_file", inspect.Parameter.empty), ("seed", None)],
    "query": [("model_spec", inspect.Parameter.empty), ("epochs", 108), ("stop_halfway", False)],
    "is_valid": [("model_spec", inspect.Parameter.empty)],
    "get_budget_counters": [],
    "reset_budget_counters": [],
    "evaluate": [("model_spec", inspect.Parameter.empty), ("model_dir", inspect.Parameter.empty)],
    "hash_iterator": [],
    "get_metrics_from_hash": [("module_hash", inspect.Parameter.empty)],
    "get_metrics_from_spec": [("model_spec", inspect.Parameter.empty)],
    "_check_spec": [("model_spec", inspect.Parameter.empty)],
    "_hash_spec": [("model_spec", inspect.Parameter.empty)],
}


def test_api_names_and_constants() -> None:
    assert set(api.__all__) == {
        "NASBench",
        "ModelSpec",
        "OutOfDomainError",
        "INPUT",
        "OUTPUT",
        "CONV1X1",
        "CONV3X3",
        "MAXPOOL3X3",
    }
    assert api.ModelSpec is model_spec.ModelSpec and api.ModelSpec.__module__ == "nasbench.api"
    assert issubclass(api.OutOfDomainError, Exception) and api.OutOfDomainError.__module__ == "nasbench.api"
    assert (api.INPUT, api.OUTPUT) == ("input", "output")
    assert (api.CONV1X1, api.CONV3X3, api.MAXPOOL3X3) == ("conv1x1-bn-relu", "conv3x3-bn-relu", "maxpool3x3")
    assert api.model_metrics_pb2.ModelMetrics.DESCRIPTOR.full_name == "nasbench.ModelMetrics"
    fields = api.model_metrics_pb2.ModelMetrics.DESCRIPTOR.fields_by_name
    assert {name: field.number for name, field in fields.items()} == {
        "evaluation_data": 1,
        "trainable_parameters": 2,
        "total_time": 3,
    }
    assert {"query_batch", "sample", "neighbors", "optima", "close"} <= set(dir(api.NASBench))


@pytest.mark.parametrize("method", sorted(ORIGINAL_SIGNATURES))
def test_nasbench_methods_have_the_original_signatures(method: str) -> None:
    parameters = [
        (parameter.name, parameter.default)
        for parameter in list(inspect.signature(getattr(api.NASBench, method)).parameters.values())[1:]
        if parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    ]
    assert parameters == ORIGINAL_SIGNATURES[method]


def test_configuration_is_the_originals() -> None:
    built = config.build_config()
    assert built == ORIGINAL_CONFIG and list(built) == list(ORIGINAL_CONFIG)
    assert type(built["train_seconds"]) is float and type(built["use_tpu"]) is bool
    built["available_ops"].append("conv5x5")
    assert config.build_config()["available_ops"] == ORIGINAL_CONFIG["available_ops"], "a fresh dict each time"


def test_lib_functions_answer_the_original_vectors() -> None:
    """One vector of the original's own tests (nasbench/tests/graph_util_test.py, model_spec_test.py) per function."""
    matrix = np.fromfunction(graph_util.gen_is_edge_fn(35), (4, 4), dtype=np.int8)
    np.testing.assert_array_equal(matrix, _edges(4, [(0, 1), (0, 2), (2, 3)]))
    assert graph_util.is_full_dag(_edges(4, [(0, 1), (0, 2), (1, 3), (2, 3)])) is True
    assert graph_util.is_full_dag(np.array([[0, 0, 1], [0, 0, 1], [0, 0, 0]])) is False
    edges = graph_util.num_edges(np.array([[0, 2, 0], [0, 0, 1], [0, 0, 0]]))
    assert edges == 3 and isinstance(edges, np.integer)
    assert graph_util.hash_module(np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]]), [-1, 1, -2]) == (
        "d1269d9156ddc027c40473008192958a"
    )
    permuted, labels = graph_util.permute_graph(np.array([[1, 1, 0], [0, 0, 1], [1, 0, 1]]), ["a", "b", "c"], [2, 0, 1])
    np.testing.assert_array_equal(permuted, [[0, 1, 0], [0, 1, 1], [1, 0, 1]])
    assert labels == ["b", "c", "a"]
    diamond = _edges(4, [(0, 1), (0, 2), (1, 3), (2, 3)])
    assert graph_util.is_isomorphic((diamond, [-1, 1, 2, -2]), (diamond, [-1, 2, 1, -2])) is True
    assert model_spec.is_upper_triangular(np.array([[0]])) is True
    assert model_spec.is_upper_triangular(np.array([[1]])) is False
    pruned = model_spec.ModelSpec([[0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]], [1, 2, 3, 4])
    np.testing.assert_array_equal(pruned.matrix, [[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    assert pruned.ops == [1, 2, 4] and pruned.valid_spec


def _edges(size: int, edges: list[tuple[int, int]]) -> np.ndarray:
    matrix = np.zeros((size, size), dtype=np.int8)
    for src, dst in edges:
        matrix[src, dst] = 1
    return matrix


def test_out_of_domain_error_pickles() -> None:
    error = pickle.loads(pickle.dumps(api.OutOfDomainError("invalid spec, provided graph is disconnected.")))
    assert type(error) is api.OutOfDomainError and error.args == ("invalid spec, provided graph is disconnected.",)
