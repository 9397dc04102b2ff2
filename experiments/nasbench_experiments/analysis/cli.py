"""``nasbench analyze``: the dataset analyses of the NAS-Bench-101 paper as one command."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from nasbench.errors import ConfigurationError
from nasbench_experiments.analysis import analyses, columns, report

DEFAULT_OUT = Path("nasbench-analysis")


def add_analyze_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Analyse a NAS-Bench-101 dataset as the paper did: "
        + "; ".join(f"{name}: {text}" for name, text in analyses.DESCRIPTIONS.items())
        + ". Reads a store (or a server, through batched queries; the results are identical), writes report.md, "
        "results.json and PNG plots into --out. With no --store or --target, analyses the embedded synthetic store."
    )
    parser.add_argument(
        "analyses", nargs="*", metavar="ANALYSIS", help=f"any of {', '.join(analyses.NAMES)} (default: all)"
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--store", help="a store, a .tfrecord, or only108, full, synthetic (default: the embedded synthetic store)"
    )
    source.add_argument("--target", help="a server: grpc://host:port or host:port (or grpcs://, unix:, h:p1,h:p2)")
    parser.add_argument("--token", help="bearer token for --target (default: $NASBENCH_TOKEN)")
    parser.add_argument("--tls-ca", type=Path, help="PEM CA certificate for a grpcs:// --target")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument(
        "--metric", default="validation", help="accuracy that ranks cells: validation (default) or test"
    )
    parser.add_argument("--budget", type=int, default=108, help="budget of pareto, locality and ops (default 108)")
    parser.add_argument("--walks", type=int, default=analyses.Options.walks, help="locality: random walks")
    parser.add_argument("--steps", type=int, default=analyses.Options.steps, help="locality: moves per walk")
    parser.add_argument(
        "--max-distance", type=int, default=analyses.Options.max_distance, help="locality: largest edit distance"
    )
    parser.add_argument("--seed", type=int, default=0, help="locality: random seed of the walks (default 0)")
    parser.add_argument("--no-plots", action="store_true", help="tables only (no PNG files)")


def _say(text: str) -> None:
    print(f"analyze: {text}", file=sys.stderr, flush=True)


def load_columns(args: argparse.Namespace) -> columns.Columns:
    """The columns of --target or --store (anything ``api.NASBench`` accepts), else of the embedded store."""
    location = args.target or args.store or "synthetic"
    return columns.load(location, token=args.token or os.environ.get("NASBENCH_TOKEN"), tls_ca=args.tls_ca)


def _check_numbers(args: argparse.Namespace) -> None:
    for name in ("walks", "steps", "max_distance"):
        if getattr(args, name) < 1:
            raise ConfigurationError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.steps < analyses.Options.lags:
        raise ConfigurationError(
            f"--steps must be at least {analyses.Options.lags} (the largest lag), got {args.steps}"
        )
    if args.max_distance > 10:
        raise ConfigurationError(f"--max-distance must be at most 10, got {args.max_distance}")


def run_analyze(args: argparse.Namespace) -> int:
    names = analyses.check_names(args.analyses)
    columns.check_metric(args.metric)
    _check_numbers(args)
    options = analyses.Options(
        budget=args.budget,
        metric=args.metric,
        walks=args.walks,
        steps=args.steps,
        seed=args.seed,
        max_distance=args.max_distance,
    )
    started = time.perf_counter()
    data = load_columns(args)
    timings: dict[str, float] = {"load": time.perf_counter() - started}
    skipped: dict[str, str] = {}
    if args.analyses:  # named explicitly: every one must run
        analyses.check(data, names, options)
    else:  # all by default: skip those the data cannot support, saying why
        for name in list(names):
            missing = analyses.missing_budgets(data, name, options)
            if missing:
                skipped[name] = f"needs budget {missing[0]} epochs; this dataset holds {list(data.epochs)}"
                names.remove(name)
        analyses.check(data, names, options)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(f"cannot write the report into {args.out}: {exc.strerror or exc}") from None
    _say(f"{data.describe()} (loaded in {timings['load']:.1f} s)")
    results: dict[str, Any] = {}
    for name in names:
        begun = time.perf_counter()
        _say(f"{name} ...")
        results[name] = analyses.run(data, name, options, progress=lambda stage: _say(f"  locality: {stage}"))
        timings[name] = time.perf_counter() - begun
    begun = time.perf_counter()
    try:
        path = report.write(args.out, data, results, skipped=skipped, timings=timings, plots=not args.no_plots)
    except OSError as exc:
        raise ConfigurationError(f"cannot write the report into {args.out}: {exc.strerror or exc}") from None
    timings["report"] = time.perf_counter() - begun
    for name, reason in skipped.items():
        _say(f"skipped {name}: {reason}")
    if "budget-correlation" in results:
        print(report.markdown("budget-correlation", results["budget-correlation"]))
    print(f"wrote {path} and {args.out / 'results.json'} in {time.perf_counter() - started:.1f} s")
    return 0


COMMANDS = {"analyze": (add_analyze_arguments, run_analyze)}
