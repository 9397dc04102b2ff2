"""nasbench.model.build: the module has the dataset's trainable parameters, the arithmetic's FLOPs, and the
original's layers (batch norm settings, initialisers, no biases)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from nasbench import api, canonical, model, space
from nasbench.errors import InvalidSpecError
from nasbench.model import _network
from tests.client.model.test_arithmetic import DATASET_PARAMETERS, INCEPTION


def _trainable(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _sample(per_vertex_count: int, seed: int = 0) -> list[int]:
    """Every cell of 2 to 4 vertices (91) and ``per_vertex_count`` random cells of 5, 6 and 7 vertices each."""
    keys = space.enumerate_cells().keys
    vertices, _ = canonical.vertices_and_edges(keys)
    rng = np.random.default_rng(seed)
    chosen = [keys[vertices <= 4]]
    for count in (5, 6, 7):
        chosen.append(rng.choice(keys[vertices == count], per_vertex_count, replace=False))
    return np.concatenate(chosen).tolist()


def _meta_build(key: int) -> nn.Module:
    """The module of a cell with its parameters on the meta device: the same layers, no memory, no numbers."""
    with torch.device("meta"):
        return model.build(api.ModelSpec(*canonical.decode(key)))


@pytest.mark.parametrize(("spec", "parameters"), DATASET_PARAMETERS, ids=["inception", "issue-23"])
def test_built_module_has_the_datasets_parameter_count(spec: api.ModelSpec, parameters: int) -> None:
    assert _trainable(model.build(spec)) == parameters


@pytest.mark.slow
def test_built_modules_match_the_arithmetic_on_2191_cells_of_every_vertex_count() -> None:
    keys = _sample(700)
    assert len(keys) == 2191
    mismatched = [
        key
        for key in keys
        if _trainable(_meta_build(key)) != model.count_parameters(api.ModelSpec(*canonical.decode(key)))
    ]
    assert mismatched == []


@pytest.mark.slow
def test_analytic_flops_equal_torchs_flop_counter_on_211_cells() -> None:
    """FlopCounterMode (torch.utils.flop_counter) counts the convolutions and the dense layer of one forward
    pass of a 32x32x3 image, tensors on the meta device (shapes only)."""
    keys = _sample(40, seed=1)
    assert len(keys) == 211
    mismatched = []
    for key in keys:
        network = _meta_build(key)
        with FlopCounterMode(display=False) as counter:
            network(torch.empty(1, 3, 32, 32, device="meta"))
        if counter.get_total_flops() != model.network_stats(api.ModelSpec(*canonical.decode(key))).flops:
            mismatched.append(key)
    assert mismatched == []


def test_flop_counter_scales_with_the_batch() -> None:
    """MACs are per image: a batch of 3 counts three times the FLOPs."""
    network = _meta_build(canonical.canonical_key(INCEPTION.matrix, INCEPTION.ops))
    with FlopCounterMode(display=False) as counter:
        network(torch.empty(3, 3, 32, 32, device="meta"))
    assert counter.get_total_flops() == 3 * model.network_stats(INCEPTION).flops == 3 * 804_005_888


def test_layers_are_the_originals() -> None:
    network = model.build(INCEPTION)
    norms = [m for m in network.modules() if isinstance(m, nn.BatchNorm2d)]
    convolutions = [m for m in network.modules() if isinstance(m, nn.Conv2d)]
    assert norms and all(m.momentum == pytest.approx(0.003) and m.eps == 1.001e-5 and m.affine for m in norms)
    assert all(m.bias is None for m in convolutions)
    # the stem's kernel (fan-in 27): truncated at 2 sigma, sigma = sqrt(1/27) / 0.8796 before the cut
    stem = network.stem[0].weight.detach()
    sigma = math.sqrt(1 / 27) / 0.87962566103423978
    assert stem.abs().max() <= 2 * sigma
    big = max(convolutions, key=lambda m: m.weight.numel()).weight.detach()
    fan_in = big.shape[1] * big.shape[2] * big.shape[3]
    assert big.std().item() == pytest.approx(math.sqrt(1 / fan_in), rel=0.02)
    dense = network.classifier
    limit = math.sqrt(6 / (dense.in_features + dense.out_features))  # Glorot uniform
    assert dense.weight.abs().max() <= limit and dense.weight.abs().max() > 0.9 * limit
    assert torch.count_nonzero(dense.bias) == 0


def test_forward_gives_one_logit_per_label_and_truncates_wider_inputs() -> None:
    """Vertex 1 (8 channels, the remainder) feeds vertex 2 (7 channels): the forward pass slices."""
    spec = api.ModelSpec(
        [[0, 1, 0, 1, 0], [0, 0, 1, 0, 1], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]],
        ["input", "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3", "output"],
    )
    architecture = model.Architecture(stem_channels=15, stacks=2, modules_per_stack=1)
    assert model.vertex_channels(15, 15, spec.matrix) == [15, 8, 7, 7, 15]
    network = model.build(spec, architecture)
    logits = network(torch.randn(4, 3, 32, 32))
    assert logits.shape == (4, 10)
    assert _trainable(network) == model.count_parameters(spec, architecture)


def test_invalid_spec_builds_nothing() -> None:
    with pytest.raises(InvalidSpecError):
        _network.build(api.ModelSpec([[0, 0], [0, 0]], ["input", "output"]))
