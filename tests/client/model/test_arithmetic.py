"""nasbench.model's arithmetic: the channel rule, and trainable parameters equal to the dataset's."""

from __future__ import annotations

import numpy as np
import pytest

from nasbench import _architecture as _arithmetic
from nasbench import api, canonical, model
from nasbench.errors import InvalidSpecError
from nasbench_builder import synthetic
from tests.client import scenarios

# The README's Inception-like cell: 2,694,282 trainable parameters in the dataset (google-research/nasbench README.md).
INCEPTION = api.ModelSpec(*scenarios.INCEPTION)
# The cell queried in google-research/nasbench#23 ("Data Query is non-deterministic"): its query result
# there shows this adjacency and these ops with 'trainable_parameters': 32426634.
ISSUE_23 = api.ModelSpec(*scenarios.ISSUE_23)
DATASET_PARAMETERS = [(INCEPTION, 2_694_282), (ISSUE_23, 32_426_634)]


@pytest.mark.parametrize(
    ("matrix", "channels_in", "channels_out", "expected"),
    [
        # the cases of google-research/nasbench nasbench/tests/model_builder_test.py, as facts of the rule
        pytest.param([[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]], 8, 16, [8, 16, 16, 16], id="chain"),
        pytest.param([[0, 1], [0, 0]], 5, 1, [5, 1], id="input-output"),
        pytest.param([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]], 8, 15, [8, 8, 7, 15], id="split"),
        pytest.param(
            [[0, 1, 1, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]],
            8,
            8,
            [8, 3, 3, 2, 8],
            id="remainder-to-the-earliest",
        ),
        pytest.param(
            [[0, 1, 0, 0, 0], [0, 0, 1, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]],
            8,
            9,
            [8, 5, 5, 4, 9],
            id="max-of-successors",
        ),
        pytest.param(
            [[0, 1, 0, 1, 0], [0, 0, 1, 0, 1], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]],
            8,
            15,
            [8, 8, 7, 7, 15],
            id="wider-vertex-truncated",
        ),
    ],
)
def test_vertex_channels_follow_the_original_rule(
    matrix: list[list[int]], channels_in: int, channels_out: int, expected: list[int]
) -> None:
    assert model.vertex_channels(channels_in, channels_out, np.array(matrix)) == expected


@pytest.mark.parametrize(("spec", "parameters"), DATASET_PARAMETERS, ids=["inception", "issue-23"])
def test_parameters_equal_the_datasets(spec: api.ModelSpec, parameters: int) -> None:
    assert model.count_parameters(spec) == parameters
    assert model.network_stats(spec).trainable_parameters == parameters


def test_two_vertex_cell_is_a_projection_per_cell() -> None:
    """input → output: each cell is one 1x1 projection with batch norm; the rest is stem and dense layer."""
    spec = api.ModelSpec([[0, 1], [0, 0]], ["input", "output"])
    stem = 3 * 3 * 3 * 128 + 2 * 128
    cells = 3 * (128 * 128 + 2 * 128) + (128 * 256 + 2 * 256) + 2 * (256 * 256 + 2 * 256)
    cells += (256 * 512 + 2 * 512) + 2 * (512 * 512 + 2 * 512)
    dense = 512 * 10 + 10
    assert model.count_parameters(spec) == stem + cells + dense


def test_flops_are_twice_the_multiply_accumulates_of_the_stem_alone() -> None:
    """A 1-channel stem, 1 cell of input → output, 1 label: every MAC can be counted by hand."""
    spec = api.ModelSpec([[0, 1], [0, 0]], ["input", "output"])
    tiny = model.Architecture(stem_channels=1, stacks=1, modules_per_stack=1, num_labels=1)
    stats = model.network_stats(spec, tiny)
    assert stats.macs == 27 * 32 * 32 + 1 * 32 * 32 + 1
    assert stats.flops == 2 * stats.macs
    assert stats.trainable_parameters == (27 + 2) + (1 + 2) + (1 + 1)


def test_invalid_spec_is_one_clear_error() -> None:
    disconnected = api.ModelSpec([[0, 0, 0], [0, 0, 1], [0, 0, 0]], ["input", "conv3x3-bn-relu", "output"])
    with pytest.raises(InvalidSpecError, match="not valid"):
        model.count_parameters(disconnected)
    unknown = api.ModelSpec([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "conv5x5", "output"])
    with pytest.raises(InvalidSpecError, match="unknown op 'conv5x5'"):
        model.count_parameters(unknown)



@pytest.mark.slow
def test_every_cell_of_the_synthetic_store_has_the_arithmetic_parameter_count(
    full_synthetic: synthetic.SyntheticDataset,
) -> None:
    """All 423,624 cells: the trainable parameters the synthetic generator writes (its own computation,
    builder/nasbench_builder/synthetic.py) equal count_parameters."""
    dataset = full_synthetic.dataset
    assert len(dataset.keys) == 423_624
    counted = np.array(
        [_arithmetic.stats_of(*canonical.decode(key)).trainable_parameters for key in dataset.keys.tolist()]
    )
    mismatched = np.flatnonzero(counted != dataset.parameters)
    assert mismatched.size == 0, f"first mismatch: key {int(dataset.keys[mismatched[0]])}"
