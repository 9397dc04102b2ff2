"""The public surface of the drop-in modules: the original's names, plus documented extensions."""

from __future__ import annotations

import pickle

from nasbench import api
from nasbench.lib import config, graph_util, model_spec


def test_api_names() -> None:
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
    assert api.ModelSpec is model_spec.ModelSpec
    assert issubclass(api.OutOfDomainError, Exception)
    assert api.OutOfDomainError.__module__ == "nasbench.api"
    assert (api.INPUT, api.OUTPUT) == ("input", "output")
    assert (api.CONV1X1, api.CONV3X3, api.MAXPOOL3X3) == ("conv1x1-bn-relu", "conv3x3-bn-relu", "maxpool3x3")
    assert api.model_metrics_pb2.ModelMetrics.DESCRIPTOR.full_name == "nasbench.ModelMetrics"


def test_nasbench_methods_match_the_original() -> None:
    original = {
        "query",
        "is_valid",
        "get_budget_counters",
        "reset_budget_counters",
        "evaluate",
        "hash_iterator",
        "get_metrics_from_hash",
        "get_metrics_from_spec",
        "_check_spec",
        "_hash_spec",
    }
    assert original <= set(dir(api.NASBench))
    assert {"query_batch", "sample", "neighbors", "optima", "close"} <= set(dir(api.NASBench))


def test_lib_modules() -> None:
    for name in ("gen_is_edge_fn", "is_full_dag", "num_edges", "hash_module", "permute_graph", "is_isomorphic"):
        assert callable(getattr(graph_util, name))
    assert callable(model_spec.is_upper_triangular)
    assert len(config.build_config()) == 25


def test_out_of_domain_error_pickles() -> None:
    error = pickle.loads(pickle.dumps(api.OutOfDomainError("invalid spec, provided graph is disconnected.")))
    assert type(error) is api.OutOfDomainError and str(error).startswith("invalid spec")
