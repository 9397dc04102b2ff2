"""The paper's training protocol: schedule, TensorFlow's RMSProp, augmentation, sharded batch norm, evaluation
over whole batches, NASBench.evaluate (`nasbench train`: tests/builder/test_train_cli.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from nasbench import api, model
from nasbench.model import _training, cifar
from nasbench.model._protocol import DEFAULT, Options, Protocol

TINY = model.Architecture(stem_channels=2, stacks=1, modules_per_stack=1)
CHAIN = api.ModelSpec([[0, 1, 1], [0, 0, 1], [0, 0, 0]], ["input", "conv3x3-bn-relu", "output"])


def test_protocol_is_the_datasets() -> None:
    """config.py and evaluate.py: 108 epochs of 40,000 images at batch 256, learning rate 0.1 x 2 TPU shards,
    evaluations at step 0, at 54 and at 108 epochs."""
    assert DEFAULT.total_steps == 16_875
    assert DEFAULT.evaluation_points() == [(54.0, 8_437), (108.0, 16_875)]
    assert (DEFAULT.base_learning_rate, DEFAULT.shards, DEFAULT.batch_size) == (0.2, 2, 256)
    assert (DEFAULT.momentum, DEFAULT.epsilon, DEFAULT.rms_decay, DEFAULT.weight_decay) == (0.9, 1.0, 0.9, 1e-4)


@pytest.mark.parametrize("step", [1, 100, 4_219, 8_437, 12_000, 16_874])
def test_learning_rate_is_the_cosine_of_the_global_step(step: int) -> None:
    """model_builder.py COSINE_BY_STEP: 0.5 x base x (1 + cos(pi x step / total_steps)), computed in float32."""
    expected = 0.5 * 0.2 * (1 + math.cos(math.pi * step / 16_875))
    assert model.learning_rate(step, 16_875, 0.2) == pytest.approx(expected, abs=1e-7)
    assert model.learning_rate(step, 16_875, 0.2) == float(np.float32(model.learning_rate(step, 16_875, 0.2)))


def test_learning_rate_of_the_first_step_is_zero() -> None:
    assert model.learning_rate(0, 16_875, 0.2) == 0.0


def test_rmsprop_steps_are_tensorflows_update_by_hand() -> None:
    """tf.train.RMSPropOptimizer (ApplyRMSProp): ms starts at 1; ms += (g² - ms)(1 - decay);
    mom = momentum·mom + lr·g/sqrt(ms + epsilon); var -= mom; with the L2 term's gradient in g."""
    start = np.array([1.0, -2.0, 0.5, 0.0])
    gradients = [np.array([0.3, -1.5, 2.0, 0.0]), np.array([-0.7, 0.2, 1.0, 4.0])]
    rates = [0.2, 0.15]
    decay, momentum, epsilon, weight_decay = 0.9, 0.9, 1.0, 1e-4

    var, ms, mom = start.copy(), np.ones(4), np.zeros(4)
    for gradient, rate in zip(gradients, rates, strict=True):
        g = gradient + weight_decay * var
        ms = ms + (g * g - ms) * (1 - decay)
        mom = momentum * mom + rate * g / np.sqrt(ms + epsilon)
        var = var - mom

    param = nn.Parameter(torch.tensor(start, dtype=torch.float64))
    optimizer = _training.TFRMSProp(
        [param], lr=0.0, decay=decay, momentum=momentum, epsilon=epsilon, weight_decay=weight_decay
    )
    for gradient, rate in zip(gradients, rates, strict=True):
        param.grad = torch.tensor(gradient, dtype=torch.float64)
        optimizer.param_groups[0]["lr"] = rate
        optimizer.step()
    np.testing.assert_allclose(param.detach().numpy(), var, rtol=1e-12, atol=1e-15)
    # torch's own RMSprop with the same settings lands elsewhere after one step (ms from 0, epsilon outside
    # the root): the reason for TFRMSProp
    g = gradients[0] + weight_decay * start
    ours = start - rates[0] * g / np.sqrt(1 + (g * g - 1) * (1 - decay) + epsilon)
    other = nn.Parameter(torch.tensor(start, dtype=torch.float64))
    theirs = torch.optim.RMSprop(
        [other], lr=rates[0], alpha=decay, eps=epsilon, momentum=momentum, weight_decay=weight_decay
    )
    other.grad = torch.tensor(gradients[0], dtype=torch.float64)
    theirs.step()
    assert not np.allclose(other.detach().numpy()[:3], ours[:3], rtol=1e-3)


def test_a_zero_learning_rate_step_moves_no_weight_but_fills_the_accumulator() -> None:
    param = nn.Parameter(torch.tensor([1.0, 2.0]))
    optimizer = _training.TFRMSProp([param], lr=0.0)
    param.grad = torch.tensor([3.0, -1.0])
    optimizer.step()
    assert param.tolist() == [1.0, 2.0]
    assert optimizer.state[param]["ms"].tolist() == pytest.approx([1.0 + (9.0 - 1.0) * 0.1, 1.0])


def _window(image: np.ndarray, top: int, left: int, flip: bool) -> np.ndarray:
    window = image[:, top : top + 32, left : left + 32]
    return window[:, :, ::-1] if flip else window


def test_augmentation_is_a_padded_crop_maybe_flipped() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(1, 256, size=(64, 3, 32, 32), dtype=np.uint8)  # no zero: padding is recognisable
    out = _training.augment(images, np.random.default_rng(1))
    padded = np.pad(images, ((0, 0), (0, 0), (4, 4), (4, 4)))
    flipped = 0
    for image, result in zip(padded, out, strict=True):
        windows = [
            (top, left, flip)
            for top in range(9)
            for left in range(9)
            for flip in (False, True)
            if np.array_equal(result, _window(image, top, left, flip))
        ]
        assert windows, "every output is a 32x32 window of the zero-padded image, flipped or not"
        flipped += windows[0][2]
    assert 16 < flipped < 48


def test_batch_norm_averages_come_from_the_first_shard_only() -> None:
    """On the TPU each core normalised its half of the batch and the first core's moving averages were kept:
    two batches with the same first half leave the same averages, whatever their second halves."""
    rng = np.random.default_rng(0)
    first = rng.integers(0, 256, size=(8, 3, 32, 32), dtype=np.uint8)
    labels = np.arange(16) % 10
    averages = []
    for second in (rng.integers(0, 256, size=(8, 3, 32, 32), dtype=np.uint8), np.full((8, 3, 32, 32), 255, np.uint8)):
        torch.manual_seed(0)
        runner = _training.Runner(model.build(CHAIN, TINY), Protocol(batch_size=16), Options(architecture=TINY))
        runner.train_step(0, np.concatenate([first, second]), labels)
        averages.append([(m.running_mean.clone(), m.running_var.clone()) for m in runner.norms])
        assert all(m.momentum == pytest.approx(0.003) for m in runner.norms)
    for (mean_a, var_a), (mean_b, var_b) in zip(*averages, strict=True):
        assert torch.equal(mean_a, mean_b) and torch.equal(var_a, var_b)
    assert any(not torch.equal(mean, torch.zeros_like(mean)) for mean, _ in averages[0])


def test_accuracy_counts_the_first_9984_images(cifar_splits: cifar.Splits) -> None:
    """Whole batches of 256 only: a network that always answers class 3 scores exactly the share of 3s among
    the first 9,984 images, a multiple of 1/9984."""
    network = model.build(CHAIN, TINY)
    nn.init.zeros_(network.classifier.weight)
    with torch.no_grad():
        network.classifier.bias.copy_(torch.nn.functional.one_hot(torch.tensor(3), 10).float())
    runner = _training.Runner(network, DEFAULT, Options(architecture=TINY))
    for images in (cifar_splits.train_eval, cifar_splits.validation, cifar_splits.test):
        accuracy = runner.accuracy(images)
        assert accuracy == int((images.labels[:9984] == 3).sum()) / 9984


def test_evaluate_trains_with_the_config_and_answers_like_query(
    small_store: Path, cifar_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NASBench.evaluate: the original's meaning (train from scratch, metadata.json in model_dir), the protocol
    and network read from nasbench.config as the original did."""
    monkeypatch.setenv("NASBENCH_CIFAR10", str(cifar_folder))
    bench = api.NASBench(str(small_store))
    bench.config.update(train_epochs=1, batch_size=4000, stem_filter_size=2, num_stacks=1, num_modules_per_stack=1)
    data = bench.evaluate(CHAIN, str(tmp_path / "run"))
    assert list(data) == [
        "module_adjacency", "module_operations", "trainable_parameters", "training_time", "train_accuracy",
        "validation_accuracy", "test_accuracy",
    ]  # fmt: skip
    assert data["trainable_parameters"] == model.count_parameters(CHAIN, TINY)
    metadata = json.loads((tmp_path / "run" / "metadata.json").read_text())
    assert metadata["evaluation_results"][-1]["test_accuracy"] == data["test_accuracy"]
    assert metadata["evaluation_results"][-1]["training_steps"] == 10
    assert sorted(p.name for p in (tmp_path / "run").glob("model-*.pt")) == ["model-1.pt", "model-10.pt", "model-5.pt"]


def test_same_seed_in_deterministic_mode_repeats_the_weights_exactly() -> None:
    """--deterministic: same seed, device and threads, the same weights after the same steps."""
    weights = []
    for _ in range(2):
        with _training._determinism(True):
            torch.manual_seed(7)
            rng = np.random.default_rng(7)
            runner = _training.Runner(model.build(CHAIN, TINY), Protocol(batch_size=16), Options(architecture=TINY))
            for step in range(3):
                images = rng.integers(0, 256, size=(16, 3, 32, 32), dtype=np.uint8)
                runner.train_step(step, _training.augment(images, rng), rng.integers(0, 10, size=16))
        weights.append({name: tensor.clone() for name, tensor in runner.network.state_dict().items()})
    assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[0])
    assert not torch.are_deterministic_algorithms_enabled()  # restored afterwards


def test_evaluate_without_cifar_names_where_it_looked(small_store: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("NASBENCH_CIFAR10", str(tmp_path / "nowhere"))
    with pytest.raises(cifar.CifarError, match=r"no CIFAR-10 at .*nowhere.*nasbench download cifar10"):
        api.NASBench(str(small_store)).evaluate(CHAIN, str(tmp_path / "run"))
