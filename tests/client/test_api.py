"""The drop-in API: the original's answers, errors, randomness and budget, scenario by scenario.

Every test here runs against each backend in ``conftest.BACKENDS`` (the local store; the remote server adds
itself), so both must behave identically.
"""

from __future__ import annotations

import copy
import math
import random
import sys

import numpy as np
import pytest

from nasbench import api, canonical
from nasbench._store.reader import Store
from nasbench.errors import ConfigurationError, InvalidSpecError, TooManyVerticesError, UnknownCellError
from tests.client.scenarios import (
    AVAILABLE,
    C1,
    C3,
    INCEPTION,
    INCEPTION_HASH,
    ISSUE_32,
    MP,
    SEED_0_REPEATS,
    I,
    O,
    repeat_index,
    spec,
)


@pytest.fixture(scope="module")
def store(full_store):
    opened = Store.open(full_store)
    yield opened
    opened.close()


def _row_of(store: Store, module_hash: str) -> int:
    return store.row_of_hash(bytes.fromhex(module_hash))


# --- construction and attributes -------------------------------------------------------------------------------


def test_attributes_after_construction(open_nasbench) -> None:
    nasbench = open_nasbench(seed=0)
    public = {name for name in vars(nasbench) if not name.startswith("_")}
    assert public == {
        "computed_statistics",
        "config",
        "fixed_statistics",
        "history",
        "total_epochs_spent",
        "training_time_spent",
        "valid_epochs",
    }
    assert nasbench.valid_epochs == {4, 12, 36, 108} and type(nasbench.valid_epochs) is set
    assert repr(nasbench.valid_epochs) == "{108, 4, 12, 36}"
    assert nasbench.history == {} and nasbench.get_budget_counters() == (0.0, 0)
    assert len(nasbench.config) == 25 and nasbench.config["available_ops"] == AVAILABLE


def test_constructor_seeds_the_global_random(open_nasbench) -> None:
    open_nasbench(seed=5)
    first = random.random()
    random.seed(5)
    assert random.random() == first


# --- query ---------------------------------------------------------------------------------------------------


def test_query_returns_the_original_shape_and_the_stored_values(open_nasbench, store: Store) -> None:
    nasbench = open_nasbench(seed=0)
    data = nasbench.query(spec(*INCEPTION))
    assert list(data) == [
        "module_adjacency",
        "module_operations",
        "trainable_parameters",
        "training_time",
        "train_accuracy",
        "validation_accuracy",
        "test_accuracy",
    ]
    assert data["module_adjacency"].dtype == np.int8
    assert type(data["module_operations"]) is list and all(type(op) is str for op in data["module_operations"])
    assert type(data["trainable_parameters"]) is int and data["trainable_parameters"] == 2_694_282
    assert all(type(data[k]) is float for k in ("training_time", "train_accuracy", "validation_accuracy"))
    row = _row_of(store, INCEPTION_HASH)
    stored = store.metrics[row, store.epoch_index(108), SEED_0_REPEATS[0], 4:8].tolist()
    assert [data[k] for k in ("training_time", "train_accuracy", "validation_accuracy", "test_accuracy")] == stored
    matrix, ops = canonical.decode(int(store.representatives[row]))
    np.testing.assert_array_equal(data["module_adjacency"], matrix)
    assert data["module_operations"] == ops


def test_seeded_repeats_follow_the_original_sequence(open_nasbench) -> None:
    """seed=0 gives repeats 1,1,0,1,2,1,1,1,1,1,2,0 (random.randint(0, 2) in google-research/nasbench
    nasbench/api.py)."""
    nasbench = open_nasbench(seed=0)
    model_spec = spec(*INCEPTION)
    seen = [repeat_index(nasbench, model_spec, nasbench.query(model_spec), 108, False) for _ in range(12)]
    assert seen == SEED_0_REPEATS


def test_each_successful_query_draws_exactly_one_randint(open_nasbench) -> None:
    nasbench = open_nasbench(seed=3)
    model_spec = spec(*INCEPTION)
    for epochs, halfway in [(108, False), (4, True), (36, False), (12, True)]:
        state = random.getstate()
        result = nasbench.query(model_spec, epochs=epochs, stop_halfway=halfway)
        random.setstate(state)
        assert repeat_index(nasbench, model_spec, result, epochs, halfway) == random.randint(0, 2)


def test_budget_counters_after_mixed_queries_and_failures(open_nasbench) -> None:
    nasbench = open_nasbench(seed=1)
    model_spec = spec(*INCEPTION)
    a = nasbench.query(model_spec, epochs=108)
    b = nasbench.query(model_spec, epochs=4, stop_halfway=True)
    state = random.getstate()
    for bad in (spec([[0, 0], [0, 0]], [I, O]), spec(*INCEPTION[:1], [I, C1, C3, C3, C3, "conv5x5", O])):
        with pytest.raises(api.OutOfDomainError):
            nasbench.query(bad)
    with pytest.raises(api.OutOfDomainError):
        nasbench.query(model_spec, epochs=5)
    with pytest.raises(KeyError):
        nasbench.query(spec(np.array(ISSUE_32[0], dtype=float), ISSUE_32[1]))
    assert random.getstate() == state, "failed queries must not consume the random stream"
    c = nasbench.query(model_spec, epochs=108, stop_halfway=True)
    assert nasbench.get_budget_counters() == (
        a["training_time"] + b["training_time"] + c["training_time"],
        108 + 2 + 54,
    )
    nasbench.reset_budget_counters()
    assert nasbench.get_budget_counters() == (0.0, 0)


def test_stop_halfway_returns_the_halfway_point_of_the_same_run(open_nasbench) -> None:
    nasbench = open_nasbench(seed=2)
    model_spec = spec(*INCEPTION)
    state = random.getstate()
    half = nasbench.query(model_spec, epochs=36, stop_halfway=True)
    random.setstate(state)
    full = nasbench.query(model_spec, epochs=36)
    assert half["training_time"] < full["training_time"]
    _, computed = nasbench.get_metrics_from_spec(model_spec)
    run = computed[36][repeat_index(nasbench, model_spec, full, 36, False)]
    assert half["validation_accuracy"] == run["halfway_validation_accuracy"]


def test_isomorphic_and_unpruned_variants_return_the_stored_representative(open_nasbench) -> None:
    nasbench = open_nasbench(seed=0)
    reference = nasbench.query(spec(*INCEPTION), repeat=0)
    # the same cell with vertices 1 and 5 swapped (still upper triangular), and with a dangling vertex added
    order = [0, 5, 2, 3, 4, 1, 6]
    swapped = spec(INCEPTION[0][np.ix_(order, order)], [INCEPTION[1][v] for v in order])
    padded_matrix = np.zeros((8, 8), dtype=int)  # a new vertex 6 fed by the input but feeding nothing
    padded_matrix[:6, :6] = INCEPTION[0][:6, :6]
    padded_matrix[:6, 7] = INCEPTION[0][:6, 6]
    padded_matrix[0, 6] = 1
    padded = spec(padded_matrix, [I, C1, C3, C3, C3, MP, C3, O])
    assert padded.matrix.shape == (7, 7)
    for variant in (swapped, padded, spec(INCEPTION[0].astype(bool), INCEPTION[1])):
        data = nasbench.query(variant, repeat=0)
        np.testing.assert_array_equal(data["module_adjacency"], reference["module_adjacency"])
        assert data["module_operations"] == reference["module_operations"]
        assert data["validation_accuracy"] == reference["validation_accuracy"]
        assert nasbench.get_metrics_from_spec(variant)[0]["trainable_parameters"] == 2_694_282


def test_results_are_fresh_copies(open_nasbench) -> None:
    nasbench = open_nasbench(seed=0)
    model_spec = spec(*INCEPTION)
    data = nasbench.query(model_spec, repeat=1)
    data["module_adjacency"][0, 1] = 9
    data["module_operations"].append("x")
    fixed, computed = nasbench.get_metrics_from_hash(INCEPTION_HASH)
    fixed["module_adjacency"][:] = 7
    computed[108][0]["final_validation_accuracy"] = -1.0
    nasbench.fixed_statistics[INCEPTION_HASH]["module_operations"].clear()
    again = nasbench.query(model_spec, repeat=1)
    assert again["module_adjacency"].max() == 1 and len(again["module_operations"]) == 7
    assert nasbench.get_metrics_from_hash(INCEPTION_HASH)[1][108][0]["final_validation_accuracy"] >= 0


# --- errors (google-research/nasbench nasbench/api.py, _check_spec) -----------------------------------------


@pytest.mark.parametrize(
    ("matrix", "ops", "message"),
    [
        pytest.param([[0, 0], [0, 0]], [I, O], r"^invalid spec, provided graph is disconnected\.$", id="disconnected"),
        pytest.param(
            np.triu(np.ones((7, 7), dtype=int), 1),
            [I, C3, C3, C3, C3, C3, O],
            r"^too many edges, got 21 \(max edges = 9\)$",
            id="21-edges",
        ),
        pytest.param(
            [[0, 1, 0], [0, 0, 1], [0, 0, 0]], [C3, C3, O], r"^first operation should be 'input'$", id="first-op"
        ),
        pytest.param(
            [[0, 1, 0], [0, 0, 1], [0, 0, 0]], [I, C3, C3], r"^last operation should be 'output'$", id="last-op"
        ),
        pytest.param(
            [[0, 1, 0], [0, 0, 1], [0, 0, 0]],
            [I, "conv5x5", O],
            r"^unsupported op conv5x5 \(available ops = \['conv3x3-bn-relu', 'conv1x1-bn-relu', "
            r"'maxpool3x3'\]\)$",
            id="unknown-op",
        ),
    ],
)
def test_out_of_domain_specs(open_nasbench, matrix, ops, message: str) -> None:
    nasbench = open_nasbench(seed=0)
    model_spec = spec(matrix, ops)
    assert nasbench.is_valid(model_spec) is False
    for call in (nasbench.query, nasbench.get_metrics_from_spec, nasbench._check_spec):
        with pytest.raises(api.OutOfDomainError, match=message):
            call(model_spec)


def test_more_than_seven_vertices_is_out_of_domain_and_a_type_error(open_nasbench) -> None:
    """The original raised TypeError from a formatting bug; ours is both TypeError and OutOfDomainError."""
    nasbench = open_nasbench(seed=0)
    chain = spec(np.eye(8, k=1, dtype=int), [I] + [C3] * 6 + [O])
    assert nasbench.is_valid(chain) is False
    with pytest.raises(TypeError, match=r"too many vertices, got 8 \(max vertices = 7\)") as info:
        nasbench.query(chain)
    assert isinstance(info.value, api.OutOfDomainError) and isinstance(info.value, TooManyVerticesError)


@pytest.mark.parametrize("epochs", ["108", 107, None, 0, -108, [108], 108.5, True])
def test_invalid_epochs(open_nasbench, epochs) -> None:
    nasbench = open_nasbench(seed=0)
    with pytest.raises(api.OutOfDomainError, match=r"^invalid number of epochs, must be one of \{108, 4, 12, 36\}$"):
        nasbench.query(spec(*INCEPTION), epochs=epochs)
    assert nasbench.get_budget_counters() == (0.0, 0)


def test_float_and_numpy_epochs_pass_like_the_original(open_nasbench) -> None:
    """108.0 and np.int64(108) equal 108: the original accepted them, and total_epochs_spent follows their type."""
    nasbench = open_nasbench(seed=0)
    nasbench.query(spec(*INCEPTION), epochs=108.0)
    nasbench.query(spec(*INCEPTION), epochs=np.int64(12), stop_halfway=True)
    epochs_spent = nasbench.get_budget_counters()[1]
    assert epochs_spent == 114 and isinstance(epochs_spent, float)


@pytest.mark.parametrize(
    ("matrix", "expected_hash"),
    [
        pytest.param(np.array(ISSUE_32[0], dtype=float), "926a133285cb34c1a38eefe60e7586d4", id="float-issue-32"),
        pytest.param([[0, 2, 0], [0, 0, 1], [0, 0, 0]], "89057bb6261f456b0e64fbc4bee18d68", id="entry-2"),
    ],
)
def test_valid_specs_absent_from_the_data_raise_key_error(open_nasbench, matrix, expected_hash: str) -> None:
    nasbench = open_nasbench(seed=0)
    ops = ISSUE_32[1] if len(matrix) == 7 else [I, C3, O]
    model_spec = spec(matrix, ops)
    assert nasbench.is_valid(model_spec) is True
    state = random.getstate()
    with pytest.raises(KeyError) as info:
        nasbench.query(model_spec)
    assert info.value.args == (expected_hash,) and isinstance(info.value, UnknownCellError)
    assert random.getstate() == state


def test_int_version_of_issue_32_is_found(open_nasbench) -> None:
    nasbench = open_nasbench(seed=0)
    fixed, _ = nasbench.get_metrics_from_spec(spec(*ISSUE_32))
    assert (
        nasbench.get_metrics_from_hash("edb7648dd596405eddc9a5c607b494a6")[0]["trainable_parameters"]
        == (fixed["trainable_parameters"])
    )


@pytest.mark.parametrize(
    "matrix",
    [
        pytest.param([[0, math.nan, 0], [0, 0, 1], [0, 0, 0]], id="nan"),
        pytest.param([[0, -1, 0], [0, 0, 1], [0, 0, 0]], id="negative"),
        pytest.param([[0, 0.5, 0], [0, 0, 1], [0, 0, 0]], id="half"),
    ],
)
def test_odd_numbers_pass_the_checks_but_name_no_cell(open_nasbench, matrix) -> None:
    """The original's outcome: is_valid True (no check looks at values), query KeyError (the hash is absent)."""
    nasbench = open_nasbench(seed=0)
    model_spec = spec(matrix, [I, C3, O])
    assert nasbench.is_valid(model_spec)
    with pytest.raises(KeyError):
        nasbench.query(model_spec)


def test_unknown_hash(open_nasbench) -> None:
    nasbench = open_nasbench(seed=0)
    for bad in ("0" * 32, INCEPTION_HASH.upper(), "xyz", 12345, None):
        with pytest.raises(KeyError) as info:
            nasbench.get_metrics_from_hash(bad)
        assert info.value.args == (bad,)
        assert bad not in nasbench.fixed_statistics


@pytest.mark.parametrize("bad", [None, "spec", {"matrix": [[0, 1], [0, 0]]}, 3])
def test_non_spec_objects(open_nasbench, bad) -> None:
    nasbench = open_nasbench(seed=0)
    with pytest.raises(TypeError, match="expected a ModelSpec"):
        nasbench.query(bad)
    with pytest.raises(TypeError, match="expected a ModelSpec"):
        nasbench.is_valid(bad)


def test_evaluate_checks_the_spec_before_anything(open_nasbench, tmp_path) -> None:
    """evaluate trains (nasbench.model, tests/client/model/test_training.py); a spec without an input→output
    path is refused first, before torch or CIFAR-10 are looked for, and nothing is written."""
    broken = spec([[0, 0, 0], [0, 0, 1], [0, 0, 0]], ["input", "conv3x3-bn-relu", "output"])
    with pytest.raises(InvalidSpecError, match="not valid"):
        open_nasbench().evaluate(broken, str(tmp_path / "model"))
    assert not (tmp_path / "model").exists()


def test_evaluate_without_the_train_extra_names_it(open_nasbench, tmp_path, monkeypatch) -> None:
    """When the network's package cannot be imported (no PyTorch), evaluate says what needed it and the pip line
    that installs it, and writes nothing."""
    monkeypatch.setitem(sys.modules, "nasbench.model._evaluate", None)  # importing it fails, as without torch
    with pytest.raises(ConfigurationError) as info:
        open_nasbench().evaluate(spec(*INCEPTION), str(tmp_path / "model"))
    assert str(info.value) == (
        "NASBench.evaluate trains the cell's network, which needs the 'train' extra: "
        "pip install 'nasbench-server[train]'"
    )
    assert not (tmp_path / "model").exists()


def test_network_stats_of_the_inception_cell(open_nasbench) -> None:
    """Computed, not stored: the same from a store and from a server; parameters as the dataset's."""
    stats = open_nasbench().network_stats(spec(*INCEPTION))
    assert (stats.trainable_parameters, stats.macs, stats.flops) == (2_694_282, 402_002_944, 804_005_888)


# --- hashes and mapping views ----------------------------------------------------------------------------------


def test_hash_iterator_follows_the_store_order(open_nasbench, store: Store) -> None:
    nasbench = open_nasbench()
    hashes = list(nasbench.hash_iterator())
    assert len(hashes) == len(nasbench.hash_iterator()) == store.cells
    assert hashes == [digest.hex() for digest in np.ascontiguousarray(store.hashes).view("V16").ravel().tolist()]
    assert INCEPTION_HASH in nasbench.hash_iterator()


def test_mapping_views(open_nasbench) -> None:
    nasbench = open_nasbench()
    fixed = nasbench.fixed_statistics[INCEPTION_HASH]
    assert list(fixed) == ["module_adjacency", "module_operations", "trainable_parameters"]
    assert fixed["module_adjacency"].dtype == np.int8
    computed = nasbench.computed_statistics[INCEPTION_HASH]
    assert list(computed) == [4, 12, 36, 108]
    assert [len(runs) for runs in computed.values()] == [3, 3, 3, 3]
    assert list(computed[108][0]) == [
        "halfway_training_time",
        "halfway_train_accuracy",
        "halfway_validation_accuracy",
        "halfway_test_accuracy",
        "final_training_time",
        "final_train_accuracy",
        "final_validation_accuracy",
        "final_test_accuracy",
    ]
    assert len(nasbench.fixed_statistics) == len(nasbench.computed_statistics)
    assert next(iter(nasbench.computed_statistics)) == next(iter(nasbench.hash_iterator()))
    with pytest.raises(TypeError):
        nasbench.fixed_statistics[INCEPTION_HASH] = {}  # type: ignore[index]
    with pytest.raises(KeyError):
        nasbench.computed_statistics["0" * 32]


def test_get_metrics_from_hash_and_spec_agree(open_nasbench, store: Store) -> None:
    nasbench = open_nasbench()
    by_hash = nasbench.get_metrics_from_hash(INCEPTION_HASH)
    by_spec = nasbench.get_metrics_from_spec(spec(*INCEPTION))
    np.testing.assert_array_equal(by_hash[0]["module_adjacency"], by_spec[0]["module_adjacency"])
    assert by_hash[1] == by_spec[1]
    row = _row_of(store, INCEPTION_HASH)
    assert by_hash[1][12][2]["final_test_accuracy"] == store.metrics[row, 1, 2, 7]


# --- extensions --------------------------------------------------------------------------------------------------


def test_repeat_policies(open_nasbench, store: Store) -> None:
    nasbench = open_nasbench(seed=0)
    model_spec = spec(*INCEPTION)
    runs = store.metrics[_row_of(store, INCEPTION_HASH), store.epoch_index(108)]
    state = random.getstate()
    assert nasbench.query(model_spec, repeat=2)["validation_accuracy"] == runs[2, 6]
    mean = nasbench.query(model_spec, repeat="mean")
    assert mean["validation_accuracy"] == runs[:, 6].mean()
    every = nasbench.query(model_spec, repeat="all")
    assert every["validation_accuracy"] == runs[:, 6].tolist()
    hashed = [nasbench.query(model_spec, repeat="hashed")["training_time"] for _ in range(3)]
    assert len(set(hashed)) == 1 and hashed[0] in runs[:, 4].tolist()
    assert random.getstate() == state, "no policy but the default touches the global random"
    assert nasbench.get_budget_counters()[1] == 108 * 6
    # each query charged its own run; 'mean' and 'all' one run at the mean time of the three
    mean_time = (runs[0, 4] + runs[1, 4] + runs[2, 4]) / 3
    assert nasbench.get_budget_counters()[0] == pytest.approx(runs[2, 4] + 2 * mean_time + 3 * hashed[0], abs=1e-9)
    with pytest.raises(ValueError, match="repeat must be"):
        nasbench.query(model_spec, repeat=3)
    with pytest.raises(ValueError, match="repeat must be"):
        open_nasbench(repeat="median")


def test_hashed_policy_is_order_independent_and_seeded(open_nasbench) -> None:
    one, two, other = open_nasbench(seed=4, repeat="hashed"), open_nasbench(seed=4), open_nasbench(seed=5)
    specs = one.sample(30, seed=0)
    forward = [one.query(s)["training_time"] for s in specs]
    backward = [two.query(s, repeat="hashed")["training_time"] for s in reversed(specs)]
    assert forward == backward[::-1]
    # another seed picks other repeats somewhere among 30 cells (all equal would have odds of 3**-30)
    assert [other.query(s, repeat="hashed")["training_time"] for s in specs] != forward


def test_query_batch_equals_queries_and_is_all_or_nothing(open_nasbench) -> None:
    specs = [spec(*INCEPTION), spec(*ISSUE_32), spec([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [I, MP, O])]
    batch_nb, loop_nb = open_nasbench(seed=9), open_nasbench(seed=9)
    batch = batch_nb.query_batch(specs, epochs=36, stop_halfway=True)
    random.seed(9)
    loop = [loop_nb.query(s, epochs=36, stop_halfway=True) for s in specs]
    assert [r["training_time"] for r in batch] == [r["training_time"] for r in loop]
    assert batch_nb.get_budget_counters() == loop_nb.get_budget_counters()
    before, state = batch_nb.get_budget_counters(), random.getstate()
    with pytest.raises(api.OutOfDomainError):
        batch_nb.query_batch([specs[0], spec([[0, 0], [0, 0]], [I, O])])
    assert batch_nb.get_budget_counters() == before and random.getstate() == state


def test_sample(open_nasbench) -> None:
    nasbench = open_nasbench(seed=0)
    state = random.getstate()
    specs = nasbench.sample(50, seed=3)
    assert random.getstate() == state, "sampling never touches the global random"
    assert len({s.hash_spec(AVAILABLE) for s in specs}) == 50
    assert [s.hash_spec(AVAILABLE) for s in nasbench.sample(50, seed=3)] == [s.hash_spec(AVAILABLE) for s in specs]
    for s in specs:
        nasbench.query(s)
    filtered = nasbench.sample(30, seed=1, num_vertices=6, num_edges=[5, 6], ops=[C3, MP])
    for s in filtered:
        assert len(s.ops) == 6 and int(s.matrix.sum()) in (5, 6) and C1 not in s.ops
    few = nasbench.sample(5, seed=2, min_parameters=2_000_000, max_parameters=2_100_000)
    assert all(2_000_000 <= nasbench.get_metrics_from_spec(s)[0]["trainable_parameters"] <= 2_100_000 for s in few)
    assert len(nasbench.sample(1, num_vertices=2)) == 1
    with pytest.raises(ValueError, match="only 1 pass the filters"):
        nasbench.sample(2, num_vertices=2)
    with pytest.raises(ValueError, match="unknown op 'conv5x5'"):
        nasbench.sample(1, ops=["conv5x5"])
    seeded_a, seeded_b = open_nasbench(seed=8), open_nasbench(seed=8)
    assert [s.hash_spec(AVAILABLE) for s in seeded_a.sample(5)] == [s.hash_spec(AVAILABLE) for s in seeded_b.sample(5)]


def test_neighbors(open_nasbench) -> None:
    nasbench = open_nasbench(seed=0)
    model_spec = spec(*INCEPTION)
    neighbors = nasbench.neighbors(model_spec)
    hashes = {n.hash_spec(AVAILABLE) for n in neighbors}
    assert len(hashes) == len(neighbors) > 0 and INCEPTION_HASH not in hashes
    own_key = canonical.canonical_key(*INCEPTION)
    for neighbor in neighbors:
        assert nasbench.is_valid(neighbor)
        nasbench.query(neighbor)
        assert canonical.canonical_key(neighbor.matrix, neighbor.ops) != own_key
    # an op change is one edit away
    changed = spec(INCEPTION[0], [I, C3, C3, C3, C3, MP, O])
    assert changed.hash_spec(AVAILABLE) in hashes


def test_deepcopy_shares_the_data_not_the_counters(open_nasbench) -> None:
    nasbench = open_nasbench(seed=0)
    nasbench.query(spec(*INCEPTION))
    clone = copy.deepcopy(nasbench)
    clone.query(spec(*INCEPTION))
    assert clone.get_budget_counters()[1] == 216 and nasbench.get_budget_counters()[1] == 108


# --- the smaller promises of the surface, by value ---------------------------------------------------------------


@pytest.mark.parametrize("bad", [True, False, -1, 3, 1.0, "median", "RANDOM"])
def test_repeat_values_refused(open_nasbench, bad) -> None:
    nasbench = open_nasbench(seed=0)
    with pytest.raises(ValueError) as info:
        nasbench.query(spec(*INCEPTION), repeat=bad)
    assert str(info.value) == (
        "repeat must be None or 'random' (the original random draw), an index 0-2, 'mean', 'all' or 'hashed'; "
        f"got {bad!r}"
    )


def test_repeat_index_of_any_integer_type_and_random(open_nasbench, store: Store) -> None:
    nasbench = open_nasbench(seed=0)
    runs = store.metrics[_row_of(store, INCEPTION_HASH), store.epoch_index(108)]
    assert nasbench.query(spec(*INCEPTION), repeat=np.int64(2))["training_time"] == runs[2, 4]
    assert nasbench.query(spec(*INCEPTION), repeat=0)["training_time"] == runs[0, 4]
    state = random.getstate()
    drawn = nasbench.query(spec(*INCEPTION), repeat="random")["training_time"]
    random.setstate(state)
    assert drawn == runs[random.randint(0, 2), 4], "'random' is the original draw"


def test_hashed_policy_without_a_seed_uses_seed_zero(open_nasbench) -> None:
    unseeded, zero = open_nasbench(seed=None, repeat="hashed"), open_nasbench(seed=0, repeat="hashed")
    specs = zero.sample(12, seed=5)
    assert [unseeded.query(s)["training_time"] for s in specs] == [zero.query(s)["training_time"] for s in specs]


def test_budget_of_halfway_queries(open_nasbench) -> None:
    nasbench = open_nasbench(seed=0)
    for epochs in (4, 12, 36, 108):
        nasbench.query(spec(*INCEPTION), epochs=epochs, stop_halfway=True, repeat=0)
    assert nasbench.get_budget_counters()[1] == 2 + 6 + 18 + 54


@pytest.mark.parametrize("name", ["num_vertices", "num_edges", "ops"])
def test_empty_sample_filters_are_refused(open_nasbench, name: str) -> None:
    nasbench = open_nasbench(seed=0)
    with pytest.raises(ValueError) as info:
        nasbench.sample(3, **{name: []})
    assert str(info.value) == f"{name} is empty: pass None to allow any"


def test_neighbors_of_a_cell_only_a_hash_names(open_nasbench) -> None:
    nasbench = open_nasbench(seed=0)
    with pytest.raises(KeyError) as info:
        nasbench.neighbors(spec(np.array(ISSUE_32[0], dtype=float), ISSUE_32[1]))
    assert info.value.args == ("926a133285cb34c1a38eefe60e7586d4",)


def test_reprs(open_nasbench) -> None:
    nasbench = open_nasbench(seed=0)
    assert repr(nasbench) == "NASBench(423624 cells, valid_epochs={108, 4, 12, 36})"
    assert repr(nasbench.fixed_statistics) == "<FixedStatistics of 423624 cells>"
    assert repr(nasbench.computed_statistics) == "<ComputedStatistics of 423624 cells>"


@pytest.mark.parametrize("bad", ["g" * 32, "0" * 31, "0" * 33, b"0" * 32, ("0" * 32,)])
def test_malformed_hashes_are_absent(open_nasbench, bad) -> None:
    nasbench = open_nasbench(seed=0)
    assert bad not in nasbench.fixed_statistics and bad not in nasbench.computed_statistics
    with pytest.raises(KeyError) as info:
        nasbench.get_metrics_from_hash(bad)
    assert info.value.args == (bad,)


def test_deepcopy_copies_the_history(open_nasbench) -> None:
    nasbench = open_nasbench(seed=0)
    nasbench.history["note"] = ["a"]
    clone = copy.deepcopy(nasbench)
    clone.history["note"].append("b")
    assert nasbench.history == {"note": ["a"]} and clone.history == {"note": ["a", "b"]}
    assert clone.config == nasbench.config


def test_reordered_available_ops_relabel_the_cell(open_nasbench) -> None:
    """As in the original, the configuration's op order gives the labels of the hash: with the order reversed,
    a spec is looked up by the hash of its relabelled self, i.e. the cell with conv3x3 and maxpool swapped."""
    nasbench = open_nasbench(seed=0)
    nasbench.config["available_ops"] = list(reversed(nasbench.config["available_ops"]))
    model_spec = spec(*INCEPTION)
    relabelled = model_spec.hash_spec(nasbench.config["available_ops"])
    swapped_ops = [{C3: MP, MP: C3}.get(op, op) for op in INCEPTION[1]]
    assert relabelled == spec(INCEPTION[0], swapped_ops).hash_spec(AVAILABLE) != INCEPTION_HASH
    answer = nasbench.query(model_spec, repeat=1)
    fixed, computed = nasbench.get_metrics_from_hash(relabelled)
    assert answer["module_operations"] == fixed["module_operations"] != INCEPTION[1]
    assert answer["trainable_parameters"] == fixed["trainable_parameters"]
    assert answer["training_time"] == computed[108][1]["final_training_time"]


@pytest.mark.parametrize(
    ("matrix", "ops", "message"),
    [
        pytest.param(
            [
                [0, 1, 1, 1, 1, 1, 1],
                [0, 0, 1, 0, 0, 0, 0],
                [0, 0, 0, 1, 0, 0, 0],
                [0, 0, 0, 0, 1, 0, 0],
                [0, 0, 0, 0, 0, 1, 0],
                [0, 0, 0, 0, 0, 0, 1],
                [0] * 7,
            ],
            [I, C3, C3, C3, C3, C3, O],
            "too many edges, got 11 (max edges = 9)",
            id="11-edges",
        ),
        pytest.param(
            np.array(
                [
                    [0, 1, 1, 1, 1, 1, 1],
                    [0, 0, 0, 1, 0, 0, 0],
                    [0, 0, 0, 0, 1, 0, 0],
                    [0, 0, 0, 0, 0, 1, 0],
                    [0, 0, 0, 0, 0, 0, 1],
                    [0, 0, 0, 0, 0, 0, 1],
                    [0] * 7,
                ],
                dtype=float,
            ),
            [I, C3, C3, C3, C3, C3, O],
            "too many edges, got 11 (max edges = 9)",
            id="11-edges-float",
        ),
        pytest.param([[0, math.inf], [0, 0]], [I, O], "too many edges, got inf (max edges = 9)", id="infinite"),
        pytest.param(
            [[0, 1, 0], [0, 0, 1], [0, 0, 0]],
            [I, ["x"], O],
            "unsupported op ['x'] (available ops = ['conv3x3-bn-relu', 'conv1x1-bn-relu', 'maxpool3x3'])",
            id="unhashable-op",
        ),
    ],
)
def test_out_of_domain_messages_on_every_path(open_nasbench, matrix, ops, message: str) -> None:
    nasbench = open_nasbench(seed=0)
    with pytest.raises(api.OutOfDomainError) as info:
        nasbench.query(spec(matrix, ops))
    assert str(info.value) == message
    assert nasbench.is_valid(spec(matrix, ops)) is False


def test_nine_edges_are_allowed(open_nasbench) -> None:
    nasbench = open_nasbench(seed=0)
    matrix = np.zeros((7, 7), dtype=int)
    for src, dst in [(0, 1), (0, 2), (0, 3), (0, 4), (1, 6), (2, 6), (3, 6), (4, 5), (5, 6)]:
        matrix[src, dst] = 1
    nine = spec(matrix, [I, C3, C3, C1, MP, C3, O])
    assert int(nine.matrix.sum()) == 9 and nine.matrix.shape == (7, 7)
    assert nasbench.is_valid(nine) and nasbench.query(nine)["trainable_parameters"] > 0


def test_type_errors_name_the_type(open_nasbench) -> None:
    nasbench = open_nasbench(seed=0)
    for bad, name in ((None, "NoneType"), ("spec", "str"), ({}, "dict")):
        with pytest.raises(TypeError) as info:
            nasbench.query(bad)
        assert str(info.value) == f"expected a ModelSpec, got {name}"


def test_copies_draw_unseeded_samples_from_one_generator(open_nasbench) -> None:
    """The sampling generator (seeded by the constructor) is shared by deep copies, made before or after the
    first draw: an original and its copy drawing in turn get what one object drawing twice gets."""
    hashes = lambda specs: [s.hash_spec(AVAILABLE) for s in specs]  # noqa: E731
    alone = open_nasbench(seed=5)
    expected = [hashes(alone.sample(4)) for _ in range(3)]
    nasbench = open_nasbench(seed=5)
    clone = copy.deepcopy(nasbench)  # before any draw
    assert [hashes(nasbench.sample(4)), hashes(clone.sample(4))] == expected[:2]
    later = copy.deepcopy(clone)
    assert hashes(later.sample(4)) == expected[2]


def test_unknown_module_attributes_are_attribute_errors() -> None:
    with pytest.raises(AttributeError) as info:
        api.no_such_thing  # noqa: B018
    assert str(info.value) == "module 'nasbench.api' has no attribute 'no_such_thing'"
    assert api.model_metrics_pb2 is api.model_metrics_pb2 and "model_metrics_pb2" in vars(api)


def test_query_batch_defaults_and_policies_follow_query(open_nasbench) -> None:
    """query_batch's defaults (108 epochs, the constructor's policy) and each explicit policy answer what query
    answers; a cell only a hash names, absent from the data, is the KeyError query raises."""

    def plain(results: list[dict]) -> list[dict]:
        return [{**r, "module_adjacency": r["module_adjacency"].tolist()} for r in results]

    specs = [spec(*INCEPTION), spec([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [I, MP, O])]
    nasbench = open_nasbench(seed=4, repeat=2)
    assert plain(nasbench.query_batch(specs)) == plain([nasbench.query(s) for s in specs])
    for policy in ("mean", "all", 1, "hashed"):
        assert plain(nasbench.query_batch(specs, epochs=12, repeat=policy)) == plain(
            [nasbench.query(s, epochs=12, repeat=policy) for s in specs]
        )
    float_matrix = spec(np.array(INCEPTION[0], dtype=float), INCEPTION[1])  # another hash (google-research/nasbench#32)
    with pytest.raises(KeyError) as info:
        nasbench.query_batch([specs[0], float_matrix])
    assert info.value.args[0] == float_matrix.hash_spec(AVAILABLE)
    with pytest.raises(KeyError):
        nasbench.get_metrics_from_spec(float_matrix)


def test_halfway_epochs_are_counted_as_integers(open_nasbench) -> None:
    nasbench = open_nasbench(seed=0)
    nasbench.query(spec(*INCEPTION), epochs=108, stop_halfway=True)
    nasbench.query_batch([spec(*INCEPTION)], epochs=12, stop_halfway=True)
    spent = nasbench.get_budget_counters()[1]
    assert spent == 60 and type(spent) is int


def test_sample_draws_one_cell_by_default(open_nasbench) -> None:
    assert len(open_nasbench(seed=3).sample()) == 1
