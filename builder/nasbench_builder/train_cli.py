"""``nasbench train``: train cells with the paper's protocol and write the results as a dataset file.

Imports no torch until a run starts, so ``nasbench --help`` stays fast; without torch installed the command
says which extra to install.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import logging
import sys
from pathlib import Path
from typing import Any

from nasbench import space
from nasbench._cache import downloads_folder
from nasbench.errors import ConfigurationError, InvalidSpecError
from nasbench.lib import config
from nasbench.lib.model_spec import ModelSpec
from nasbench.model import DEFAULT, Architecture, Options, cifar, train_and_evaluate
from nasbench_builder import trained
from nasbench_builder.cli import positive_int

if importlib.util.find_spec("torch") is None:  # the command table then prints the install hint
    raise ImportError("nasbench train needs torch: pip install 'nasbench-server[train]'")

log = logging.getLogger("nasbench.train")


def default_cifar() -> Path:
    """Where ``nasbench download cifar10`` puts the archive."""
    return downloads_folder() / cifar.ARCHIVE_NAME


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Train cells from scratch with the protocol that produced NAS-Bench-101 (RMSProp as TensorFlow's, cosine "
        "learning rate, batch 256, CIFAR-10 split 40k/10k/10k, evaluations at 0, half and all of the budget) and "
        "write one record per budget and repeat in the original .tfrecord format: nasbench build OUTPUT STORE "
        "serves them. Finished runs are logged to OUTPUT.runs.jsonl; the same command again resumes after them."
    )
    parser.add_argument("output", type=Path, help="the .tfrecord file to write")
    cells = parser.add_mutually_exclusive_group(required=True)
    cells.add_argument("--cells", type=Path, help='a JSON file: a list of {"matrix": [[...]], "ops": [...]}')
    cells.add_argument(
        "--max-vertices", type=int, choices=range(2, 8), metavar="N", help="every cell of the space of 2 to N vertices"
    )
    parser.add_argument(
        "--cifar", type=Path, default=None, help=f"{cifar.ARCHIVE_NAME} or its folder (default: {default_cifar()})"
    )
    parser.add_argument("--cifar-md5", default=cifar.MD5, help="the archive's MD5 (default: the published one)")
    parser.add_argument(
        "--epochs",
        type=positive_int,
        nargs="+",
        default=[DEFAULT.epochs],
        metavar="E",
        help="budgets, each a run of its own with its own schedule (default 108; the full dataset's: 4 12 36 108)",
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=DEFAULT.batch_size, help="even; other than 256 is not the protocol"
    )
    parser.add_argument("--repeats", type=positive_int, default=config.NUM_REPEATS, help="runs per cell (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first run; run i of a cell uses seed + i")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, ...")
    parser.add_argument("--deterministic", action="store_true", help="torch's deterministic algorithms only")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast (changes the numbers)")
    parser.add_argument("--channels-last", action="store_true", help="NHWC memory layout (changes the rounding)")
    parser.add_argument("--model-dir", type=Path, default=None, help="keep each run's weights at every evaluation here")
    shape = parser.add_argument_group("network shape (not the dataset's network unless left at the defaults)")
    shape.add_argument("--stem-channels", type=positive_int, default=128)
    shape.add_argument("--stacks", type=positive_int, default=3)
    shape.add_argument("--modules-per-stack", type=positive_int, default=3)


def _specs(args: argparse.Namespace) -> list[ModelSpec]:
    if args.max_vertices is not None:
        from nasbench import canonical

        keys = space.enumerate_cells(args.max_vertices).keys.tolist()
        return [ModelSpec(*canonical.decode(key)) for key in keys]
    try:
        entries = json.loads(args.cells.read_text())
        specs = [ModelSpec(entry["matrix"], entry["ops"]) for entry in entries]
    except OSError as exc:
        raise ConfigurationError(f"cannot read {args.cells}: {exc.strerror or exc}") from None
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigurationError(f"{args.cells}: expected a JSON list of {{'matrix', 'ops'}} objects ({exc})") from None
    for index, spec in enumerate(specs):
        if not spec.valid_spec:
            raise InvalidSpecError(f"{args.cells}: cell {index} is not valid (no input→output path)")
        trained.cell_fields(spec)  # outside the space: fail before hours of training
    return specs


def run_train(args: argparse.Namespace) -> int:
    if not sys.stderr.isatty():
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    from dataclasses import replace

    _check_device(args.device)
    specs = _specs(args)
    budgets = sorted(set(args.epochs))
    architecture = Architecture(args.stem_channels, args.stacks, args.modules_per_stack)
    data = cifar.load(args.cifar or default_cifar(), md5=args.cifar_md5)
    journal = args.output.with_name(args.output.name + ".runs.jsonl")
    done = {(run.get("hash"), run.get("epochs"), run.get("repeat")): run for run in trained.read_log(journal)}
    payloads = []
    for index, spec in enumerate(specs):
        module_hash = trained.cell_fields(spec)[0]
        for epochs, repeat in itertools.product(budgets, range(args.repeats)):
            run: dict[str, Any] | None = done.get((module_hash, epochs, repeat))
            if run is None:
                # as the original, each budget is a run of its own: the cosine schedule spans that budget
                protocol = replace(DEFAULT, epochs=epochs, batch_size=args.batch_size)
                options = Options(
                    device=args.device,
                    seed=args.seed + repeat,
                    deterministic=args.deterministic,
                    bf16=args.bf16,
                    channels_last=args.channels_last,
                    architecture=architecture,
                )
                model_dir = args.model_dir / module_hash / f"repeat_{repeat + 1}" if args.model_dir else None
                run = train_and_evaluate(spec, data, protocol, options, model_dir)
                run.update(hash=module_hash, repeat=repeat, epochs=epochs, options=_describe(options))
                trained.append_log(journal, run)
                final = run["evaluation_results"][-1]
                print(
                    f"cell {index + 1}/{len(specs)} {module_hash} {epochs} epochs repeat {repeat + 1}: validation "
                    f"{final['validation_accuracy']:.4f}, test {final['test_accuracy']:.4f}, "
                    f"training {final['training_time']:.1f} s",
                    file=sys.stderr,
                )
            payloads.append(trained.payload(spec, epochs, run))
    trained.write_tfrecord(payloads, args.output)
    print(args.output)
    return 0


def _check_device(name: str) -> None:
    import torch

    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigurationError(f"--device {name}: expected cpu or cuda[:N]") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigurationError(f"--device {name}: torch sees no GPU here (torch.cuda.is_available() is False)")
    if device.type not in ("cpu", "cuda"):
        raise ConfigurationError(f"--device {name}: expected cpu or cuda[:N]")


def _describe(options: Any) -> dict[str, Any]:
    return {
        "device": options.device,
        "seed": options.seed,
        "deterministic": options.deterministic,
        "bf16": options.bf16,
        "channels_last": options.channels_last,
        "architecture": [
            options.architecture.stem_channels,
            options.architecture.stacks,
            options.architecture.modules_per_stack,
        ],
    }


COMMANDS = {"train": (add_train_arguments, run_train)}
