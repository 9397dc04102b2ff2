"""``nasbench compare``: the optimizer comparison of NAS-Bench-101 as one command.

Imports stay light here (the ``nasbench`` command builds every subcommand's parser); the work is imported when
the command runs.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

DEFAULT_OPTIMIZERS = "rs,re,ls,rl,tpe,smac,hb,bohb"
DEFAULT_OUT = Path("compare-results")


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run seeded optimizers on NAS-Bench-101 (many runs, local processes or a Ray cluster), then write one "
        "tidy table of every evaluation (results.parquet), a summary, report.md and the paper's two figures "
        "(regret over estimated wall-clock, ECDF of final regret). Interrupted studies resume with the same "
        "command. Without --store or --target it uses the embedded synthetic dataset."
    )
    parser.add_argument(
        "--optimizers",
        default=DEFAULT_OPTIMIZERS,
        help=f"comma-separated, from rs, re, ls, rl, tpe, smac, hb, bohb (default {DEFAULT_OPTIMIZERS})",
    )
    parser.add_argument("--runs", default="500", help="runs (seeds) per optimizer (default 500)")
    parser.add_argument("--budget", default="1e7", help="simulated seconds of training per run (default 1e7)")
    parser.add_argument(
        "--encoding", default="A", help="search space: A, B, C (the benchmark's NASCifar10A/B/C) or cells (default A)"
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--store", type=Path, help="a store (or .tfrecord) every worker opens (a shared path on Ray)")
    source.add_argument("--target", help="a server every worker queries: grpc://host:port[,host:port]")
    parser.add_argument("--executor", default="processes", help="processes (default) or ray")
    parser.add_argument("--address", help="Ray cluster address (with --executor ray; default: start a local Ray)")
    parser.add_argument("--workers", type=int, help="worker processes, or Ray CPUs of a local Ray (default: CPUs)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"study folder (default {DEFAULT_OUT})")
    parser.add_argument("--first-seed", type=int, default=0, help="seed of the first run (default 0)")
    parser.add_argument("--max-evaluations", type=int, help="also stop a run after this many evaluations")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--report", type=Path, metavar="DIR", help="only redraw the report of the study in DIR from its saved runs"
    )


def _number(text: str, name: str, kind: type) -> float:
    from nasbench.errors import ConfigurationError

    try:
        value = float(text)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, got {text!r}") from None
    if kind is int:
        if value != int(value):
            raise ConfigurationError(f"{name} must be a whole number, got {text!r}")
        return int(value)
    return value


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_compare(args: argparse.Namespace) -> int:
    from nasbench_experiments.studies import report, runner

    if args.report is not None:
        written = report.render(args.report)
        print(f"wrote {', '.join(str(path) for path in written.values())}")
        return 0
    if args.target:
        dataset = args.target
    elif args.store:
        dataset = str(args.store)
    else:
        from nasbench_server.default_store import ensure_default_store

        dataset = str(ensure_default_store())
    study = runner.Study(
        dataset=dataset,
        optimizers=tuple(name.strip() for name in args.optimizers.split(",") if name.strip()),
        runs=int(_number(args.runs, "--runs", int)),
        budget_s=_number(args.budget, "--budget", float),
        encoding=args.encoding,
        first_seed=args.first_seed,
        max_evaluations=args.max_evaluations,
    )
    study.check()
    signal.signal(signal.SIGTERM, _interrupt)  # stop the workers too, as on Ctrl-C
    done = runner.run_study(
        study,
        args.out,
        executor=args.executor,
        workers=args.workers,
        address=args.address,
        progress=False if args.no_progress else None,
    )
    results = runner.write_results(args.out)
    written = report.render(args.out)
    print(f"{len(done)} runs done now; wrote {results}, {', '.join(str(path) for path in written.values())}")
    for row in report.summarize(report.load_runs(args.out), study.budget_s):
        print(
            f"{row['optimizer']:<5} runs {row['runs']:>4}  "
            f"final test regret median {row['final_test_regret_median']:.3g} "
            f"[{row['final_test_regret_q25']:.3g}, {row['final_test_regret_q75']:.3g}]  "
            f"evaluations/run {row['evaluations_median']:.0f}",
            file=sys.stdout,
        )
    return 0


COMMANDS = {"compare": (add_compare_arguments, run_compare)}
