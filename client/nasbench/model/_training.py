"""The paper's training protocol in PyTorch: what ``nasbench/lib/evaluate.py`` and ``model_builder.py`` do.

One run: a step with learning rate 0 (it initialises the optimizer's accumulator and the batch-norm averages),
an evaluation at step 0, training to each evaluation point (half the budget, then all of it) with an evaluation
at each. Every step takes the next 256 images of an endless stream of shuffled passes over the 40,000 training
images (``shuffle_and_repeat`` then ``batch(drop_remainder)``: a batch may span two passes), each padded by 4
zero pixels, randomly cropped back to 32x32, randomly flipped left-right, then normalised per channel. The loss
is the mean softmax cross-entropy plus 1e-4 x the sum of halved squared weights of every trainable variable
(``tf.nn.l2_loss``: batch-norm scales and offsets and the dense bias included); its gradient is what TensorFlow's
RMSProp gets. Evaluations run in inference mode over whole batches only: the first 9,984 images (39 x 256) of
``data_batch_1`` (train accuracy), ``data_batch_5`` (validation) and ``test_batch`` (test), so every accuracy is
a multiple of 1/9984 as in the dataset. Training time sums the training steps only (``training_time.py``); total
time is the whole run, evaluations included.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nasbench import files
from nasbench._architecture import count_parameters
from nasbench.model import cifar
from nasbench.model._network import BN_MOMENTUM, build
from nasbench.model._protocol import DEFAULT, Options, Protocol, learning_rate

log = logging.getLogger("nasbench.train")

_PAD = 4


class TFRMSProp(torch.optim.Optimizer):
    """RMSProp as TensorFlow 1's ``tf.train.RMSPropOptimizer`` (``ApplyRMSProp``), not as ``torch.optim.RMSprop``:

        g   = grad + weight_decay * var        (the L2 term of the loss, differentiated)
        ms  = ms + (g * g - ms) * (1 - decay)  (ms starts at 1, not 0)
        mom = momentum * mom + lr * g / sqrt(ms + epsilon)   (epsilon inside the root; lr inside the momentum)
        var = var - mom

    torch's RMSprop starts its average at 0, adds epsilon outside the root and applies the learning rate after
    the momentum, so a changing learning rate acts at once there and through the momentum here.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float,
        decay: float = 0.9,
        momentum: float = 0.9,
        epsilon: float = 1.0,
        weight_decay: float = 0.0,
    ) -> None:
        defaults = {"lr": lr, "decay": decay, "momentum": momentum, "epsilon": epsilon, "weight_decay": weight_decay}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                gradient = param.grad
                if group["weight_decay"]:
                    gradient = gradient.add(param, alpha=group["weight_decay"])
                state = self.state[param]
                if not state:
                    state["ms"] = torch.ones_like(param)
                    state["mom"] = torch.zeros_like(param)
                ms, mom = state["ms"], state["mom"]
                ms.add_((gradient * gradient - ms) * (1.0 - group["decay"]))
                mom.mul_(group["momentum"]).add_(gradient * torch.rsqrt(ms + group["epsilon"]) * group["lr"])
                param.sub_(mom)
        return loss


class _Stream:
    """Training batches: shuffled passes over the training images, endless, cut into fixed-size batches."""

    def __init__(self, images: cifar.Images, batch_size: int, rng: np.random.Generator) -> None:
        self.images = images
        self.batch_size = batch_size
        self.rng = rng
        self.order = np.empty(0, dtype=np.int64)

    def next(self) -> tuple[np.ndarray, np.ndarray]:
        while len(self.order) < self.batch_size:
            self.order = np.concatenate([self.order, self.rng.permutation(len(self.images))])
        chosen, self.order = self.order[: self.batch_size], self.order[self.batch_size :]
        return self.images.images[chosen], self.images.labels[chosen]


def augment(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Pad by 4 zero pixels, crop 32x32 at a random place, flip left-right with probability 1/2 (uint8 in, out)."""
    count, channels, height, width = images.shape
    padded = np.zeros((count, channels, height + 2 * _PAD, width + 2 * _PAD), dtype=images.dtype)
    padded[:, :, _PAD : _PAD + height, _PAD : _PAD + width] = images
    top: np.ndarray = rng.integers(0, 2 * _PAD + 1, size=(count,))
    left: np.ndarray = rng.integers(0, 2 * _PAD + 1, size=(count,))
    flip: np.ndarray = rng.random((count,)) < 0.5
    rows: np.ndarray = top[:, None] + np.arange(height)[None, :]
    columns: np.ndarray = left[:, None] + np.arange(width)[None, :]
    columns = np.where(flip[:, None], columns[:, ::-1], columns)
    index = np.arange(count)[:, None, None, None]
    channel = np.arange(channels)[None, :, None, None]
    cropped: np.ndarray = padded[index, channel, rows[:, None, :, None], columns[:, None, None, :]]
    return cropped


class Runner:
    """One training run of one network on one device."""

    def __init__(self, network: nn.Module, protocol: Protocol, options: Options) -> None:
        self.device = torch.device(options.device)
        self.protocol = protocol
        self.options = options
        self.memory_format = torch.channels_last if options.channels_last else torch.contiguous_format
        # torch's stub of Module.to lacks memory_format, which the method takes (torch.nn.Module.to docs)
        self.network = network.to(self.device).to(memory_format=self.memory_format)  # type: ignore[call-overload]
        self.optimizer = TFRMSProp(
            self.network.parameters(),
            lr=0.0,
            decay=protocol.rms_decay,
            momentum=protocol.momentum,
            epsilon=protocol.epsilon,
            weight_decay=protocol.weight_decay,
        )
        self.norms = [m for m in self.network.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        self.mean = torch.tensor(cifar.RGB_MEAN, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(cifar.RGB_STD, device=self.device).view(1, 3, 1, 1)

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.options.bf16)

    def _tensor(self, images: np.ndarray) -> torch.Tensor:
        pixels = torch.from_numpy(np.ascontiguousarray(images)).to(self.device).float()
        return ((pixels - self.mean) / self.std).contiguous(memory_format=self.memory_format)

    def train_step(self, step: int, images: np.ndarray, labels: np.ndarray) -> None:
        """One optimizer step on one batch: each shard's half of the batch normalised on its own statistics,
        the gradients averaged over the shards, the batch-norm averages updated from the first shard only (the
        variables the TPU's first core keeps)."""
        self.network.train()
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(step, self.protocol.total_steps, self.protocol.base_learning_rate)
        self.optimizer.zero_grad(set_to_none=True)
        inputs = self._tensor(images)
        targets = torch.from_numpy(labels).to(self.device)
        shards = self.protocol.shards
        for shard, (part, part_targets) in enumerate(
            zip(inputs.chunk(shards), targets.chunk(shards), strict=True)
        ):
            if shard == 1:
                for norm in self.norms:
                    norm.momentum = 0.0  # keeps the moving averages as the first shard left them
            with self._autocast():
                loss = nn.functional.cross_entropy(self.network(part), part_targets) / shards
            loss.backward()  # type: ignore[no-untyped-call]
        if shards > 1:
            for norm in self.norms:
                norm.momentum = BN_MOMENTUM
        self.optimizer.step()

    @torch.no_grad()
    def accuracy(self, data: cifar.Images) -> float:
        """Top-1 accuracy over whole batches only (9,984 of 10,000 images at batch 256)."""
        self.network.eval()
        batch = self.protocol.batch_size
        whole = len(data) // batch * batch
        correct = 0
        for start in range(0, whole, batch):
            with self._autocast():
                logits = self.network(self._tensor(data.images[start : start + batch]))
            predicted = logits.argmax(dim=1).cpu().numpy()
            correct += int((predicted == data.labels[start : start + batch]).sum())
        return correct / whole

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)



@contextlib.contextmanager
def _determinism(enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    before = torch.are_deterministic_algorithms_enabled()
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


_DEFAULT_OPTIONS = Options()


def train_and_evaluate(
    spec: object,
    data: cifar.Splits,
    protocol: Protocol = DEFAULT,
    options: Options = _DEFAULT_OPTIONS,
    model_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Train a cell's network from scratch with the protocol; returns the original's metadata dict:
    ``trainable_params``, ``total_time`` and ``evaluation_results`` (one dict per evaluation: ``epochs``,
    ``training_time``, ``training_steps``, ``train_accuracy``, ``validation_accuracy``, ``test_accuracy``).

    With ``model_dir``, the weights are saved there at every evaluation (``model-<step>.pt``).
    """
    started = time.perf_counter()
    torch.manual_seed(options.seed)
    rng = np.random.default_rng(options.seed)
    with _determinism(options.deterministic):
        runner = Runner(build(spec, options.architecture), protocol, options)
        stream = _Stream(data.train, protocol.batch_size, rng)
        folder = Path(model_dir) if model_dir is not None else None
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
        training_time = 0.0
        step = 0
        results = []

        def train_to(last_step: int) -> None:
            nonlocal step, training_time
            runner.synchronize()
            begun = time.perf_counter()
            while step < last_step:
                images, labels = stream.next()
                runner.train_step(step, augment(images, rng), labels)
                step += 1
            runner.synchronize()
            training_time += time.perf_counter() - begun

        def evaluate(epoch: float, steps: int) -> None:
            result: dict[str, Any] = {
                "epochs": epoch,
                "training_time": training_time,
                "training_steps": steps,
                "train_accuracy": runner.accuracy(data.train_eval),
                "validation_accuracy": runner.accuracy(data.validation),
                "test_accuracy": runner.accuracy(data.test),
            }
            if folder is not None:
                checkpoint = folder / f"model-{step}.pt"
                _atomic_save(runner.network.state_dict(), checkpoint)
                result["checkpoint_path"] = str(checkpoint)
            log.info("evaluation", extra=result)
            results.append(result)

        train_to(1)  # learning rate 0: initialises, the weights do not move
        evaluate(0.0, 0)
        for epoch, steps in protocol.evaluation_points():
            train_to(steps)
            evaluate(epoch, steps)
    return {
        "trainable_params": count_parameters(spec, options.architecture),
        "total_time": time.perf_counter() - started,
        "evaluation_results": results,
    }


def _atomic_save(state: dict[str, Any], path: Path) -> None:
    with files.atomic_path(path) as partial:
        torch.save(state, partial)
