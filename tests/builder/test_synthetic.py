"""Synthetic datasets: plausible, deterministic, consistent across subsets, labelled and versioned, in the original
record layout. (Their resemblance to the real dataset's statistics is tested with the analyses, in
tests/experiments/analysis/test_calibration.py.)"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from nasbench import canonical
from nasbench.lib.model_metrics_pb2 import ModelMetrics
from nasbench.lib.model_spec import ModelSpec
from nasbench_builder import synthetic, tfrecord
from tests.client.scenarios import INCEPTION, ISSUE_23


def test_accuracies_are_float32_multiples_of_1_over_9984(small_synthetic) -> None:
    accuracies = small_synthetic.dataset.metrics[..., [1, 2, 3, 5, 6, 7]]
    k = np.rint(accuracies * 9984)
    np.testing.assert_array_equal(accuracies, (k / 9984).astype(np.float32).astype(np.float64))
    assert accuracies.min() >= 0 and accuracies.max() <= 1


def test_times_are_plausible(small_synthetic) -> None:
    metrics = small_synthetic.dataset.metrics
    assert (metrics[..., 0] < metrics[..., 4]).all(), "halfway trains less than the final point"
    assert (np.diff(metrics[..., 4], axis=1) > 0).all(), "longer budgets train longer"
    assert (small_synthetic.total_time > metrics[..., 4]).all()
    times = np.concatenate([metrics[..., [0, 4]].ravel(), small_synthetic.total_time.ravel()])
    np.testing.assert_array_equal(times, times.astype(np.float32).astype(np.float64))  # float32-exact, as real


def test_halfway_accuracy_is_below_the_final_one(small_synthetic) -> None:
    metrics = small_synthetic.dataset.metrics
    for halfway, final in ((1, 5), (2, 6), (3, 7)):
        assert (metrics[..., halfway] <= metrics[..., final]).all()


def test_training_time_at_108_epochs_spans_the_real_range(full_synthetic) -> None:
    """The real data's range: 284 s to 5,411 s, median about 1,555 s (docs/synthetic-data.md, "Calibration")."""
    data = full_synthetic.dataset
    seconds = data.metrics[:, data.epochs.index(108), :, 4].mean(axis=1)
    assert 200 < seconds.min() < 400 and 4500 < seconds.max() < 6500 and 1400 < np.median(seconds) < 1700


def test_repeats_differ(small_synthetic) -> None:
    final_time = small_synthetic.dataset.metrics[..., 4]
    assert (final_time[:, :, 0] != final_time[:, :, 1]).all() and (final_time[:, :, 1] != final_time[:, :, 2]).all()


def test_deterministic_by_seed_and_consistent_across_subsets(space_table, small_synthetic) -> None:
    again = synthetic.synthesize(max_vertices=5, seed=3, table=space_table)
    assert again.dataset.metrics.tobytes() == small_synthetic.dataset.metrics.tobytes()
    assert again.step0.tobytes() == small_synthetic.step0.tobytes()
    assert again.total_time.tobytes() == small_synthetic.total_time.tobytes()
    other = synthetic.synthesize(max_vertices=5, seed=4, table=space_table)
    assert not np.array_equal(other.dataset.metrics, small_synthetic.dataset.metrics)
    only108_of_4 = synthetic.synthesize(epochs=(108,), max_vertices=4, seed=3, table=space_table)
    rows = {k: r for r, k in enumerate(small_synthetic.dataset.keys.tolist())}
    for row, key in enumerate(only108_of_4.dataset.keys.tolist()):
        np.testing.assert_array_equal(
            only108_of_4.dataset.metrics[row, 0], small_synthetic.dataset.metrics[rows[key], 3]
        )
        np.testing.assert_array_equal(only108_of_4.total_time[row, 0], small_synthetic.total_time[rows[key], 3])
    budgets_4_36 = synthetic.synthesize(epochs=(36, 4), max_vertices=5, seed=3, table=space_table)
    np.testing.assert_array_equal(budgets_4_36.dataset.metrics, small_synthetic.dataset.metrics[:, [0, 2]])


def test_consistent_with_the_whole_space(space_table, full_synthetic) -> None:
    """A cell of a 5-vertex file has its values of the full-space file drawn with the same seed (the session's
    full-space dataset, built once: only the 5-vertex subset is drawn here)."""
    full = full_synthetic.dataset
    subset = synthetic.synthesize(max_vertices=5, seed=full.source["seed"], table=space_table)
    rows = {k: r for r, k in enumerate(full.keys.tolist())}
    picked = [rows[k] for k in subset.dataset.keys.tolist()]
    assert full.metrics[picked].tobytes() == subset.dataset.metrics.tobytes()
    assert full_synthetic.total_time[picked].tobytes() == subset.total_time.tobytes()


def test_labelled_synthetic_and_versioned(small_synthetic) -> None:
    source = small_synthetic.dataset.source
    assert source["synthetic"] is True and source["synthetic_version"] == synthetic.SYNTHETIC_VERSION
    assert source["seed"] == 3 and source["max_vertices"] == 5 and source["generator"] == synthetic.generator_digest()
    assert source["name"] == f"synthetic-v{synthetic.SYNTHETIC_VERSION}(seed=3)"


def test_a_changed_generator_gets_a_new_cached_store(tmp_path, monkeypatch) -> None:
    """The embedded store's cache name carries the model version and the generator's digest: another revision of
    the generator (here: one parameter changed) never finds the store of this one."""
    from nasbench_builder import prepare

    path = prepare.dataset_store_path("synthetic", tmp_path)
    assert f"synthetic-v{synthetic.SYNTHETIC_VERSION}-{synthetic.generator_digest()}-" in path.name
    source = Path(synthetic.__file__).read_text()
    changed = tmp_path / "synthetic.py"
    changed.write_text(source.replace("_TEST_OFFSET, _TEST_NOISE = ", "_TEST_OFFSET, _TEST_NOISE = 0.001 + ", 1))
    monkeypatch.setattr(synthetic, "__file__", str(changed))
    synthetic.generator_digest.cache_clear()
    try:
        assert prepare.dataset_store_path("synthetic", tmp_path) != path
    finally:
        monkeypatch.undo()
        synthetic.generator_digest.cache_clear()
    assert prepare.dataset_store_path("synthetic", tmp_path) == path


def test_the_embedded_store_is_served_while_its_manifest_names_this_generator(full_store: Path, tmp_path) -> None:
    """The session's full store is the embedded one (its seed, this generator): copied to the embedded store's
    cache path, it is served as is, not built again; its manifest names the version and the generator's digest."""
    from nasbench._store.reader import Store
    from nasbench_builder import prepare

    target = prepare.dataset_store_path("synthetic", tmp_path)
    target.parent.mkdir(parents=True)
    shutil.copyfile(full_store, target)
    before = target.stat().st_mtime_ns
    assert prepare.store_for_dataset("synthetic", tmp_path) == target and target.stat().st_mtime_ns == before
    store = Store.open(target)
    try:
        source = store.manifest["source"]
    finally:
        store.close()
    assert source["generator"] == synthetic.generator_digest() and source["seed"] == prepare.SYNTHETIC_SEED
    assert source["synthetic_version"] == synthetic.SYNTHETIC_VERSION


def test_rows_in_sorted_hash_order_with_first_representatives(small_synthetic) -> None:
    data = small_synthetic.dataset
    hexes = [d.tobytes().hex() for d in data.hashes]
    assert hexes == sorted(hexes)
    np.testing.assert_array_equal(data.representatives, data.keys)


def test_parameters_match_known_real_cells() -> None:
    """The parameter model reproduces the real counts of the Inception cell of google-research/nasbench's README
    and of the real data's best cell by mean test accuracy (hash 02e5a024…)."""
    keys = [canonical.canonical_key(*INCEPTION), canonical.canonical_key(*ISSUE_23)]
    assert synthetic.trainable_parameters(keys[0]) == 2_694_282
    assert synthetic.trainable_parameters(keys[1]) == 32_426_634
    assert synthetic.parameters_of(np.array(keys, dtype=np.uint64)).tolist() == [2_694_282, 32_426_634]


def test_vectorized_parameters_equal_the_per_cell_count(small_synthetic) -> None:
    keys = small_synthetic.dataset.keys
    expected = [synthetic.trainable_parameters(key) for key in keys.tolist()]
    assert synthetic.parameters_of(keys).tolist() == expected == small_synthetic.dataset.parameters.tolist()


def test_record_layout(tiny_tfrecord, tiny_synthetic) -> None:
    """Per hash: budgets ascending, three repeats each; every record decodes with the original proto."""
    payloads = [p for _, _, p in tfrecord.read_records(tiny_tfrecord)]
    data = tiny_synthetic.dataset
    assert len(payloads) == data.cells * 4 * 3
    for index in (0, 5, 13, len(payloads) - 1):
        module_hash, epochs, adjacency, operations, encoded = json.loads(payloads[index])
        row, rest = divmod(index, 12)
        budget, repeat = divmod(rest, 3)
        assert module_hash == data.hashes[row].tobytes().hex()
        assert epochs == data.epochs[budget]
        size = int(len(adjacency) ** 0.5)
        matrix = np.array([int(c) for c in adjacency]).reshape(size, size)
        spec = ModelSpec(matrix, operations.split(","))
        assert spec.hash_spec(["conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"]) == module_hash
        message = ModelMetrics.FromString(base64.b64decode(encoded))
        assert len(message.evaluation_data) == 3
        assert message.evaluation_data[0].current_epoch == 0.0
        assert message.evaluation_data[1].current_epoch == epochs / 2
        assert message.evaluation_data[2].current_epoch == epochs
        final = message.evaluation_data[2]
        assert final.validation_accuracy == data.metrics[row, budget, repeat, 6]
        assert message.trainable_parameters == data.parameters[row]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"epochs": (50,)}, "subset of", id="bad-epochs"),
        pytest.param({"epochs": ()}, "subset of", id="no-epochs"),
        pytest.param({"max_vertices": 8}, "between 2 and 7", id="8-vertices"),
    ],
)
def test_bad_arguments(space_table, kwargs, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        synthetic.synthesize(table=space_table, **kwargs)


def test_a_synthetic_file_is_read_as_synthetic_with_its_mark(tiny_tfrecord) -> None:
    """The mark written in every synthetic record makes the dataset read from the file say so (and the store
    built from it, and the server's info)."""
    from nasbench_builder import records, source

    read = source.read_dataset(tiny_tfrecord, workers=1)
    assert read.source["synthetic"] is True
    assert read.source["synthetic_mark"] == f"{records.SYNTHETIC_MARK} (seed 7)"
