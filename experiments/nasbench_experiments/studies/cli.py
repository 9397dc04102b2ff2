"""``nasbench compare``: the optimizer comparison of NAS-Bench-101 as one command.

Imports stay light here (the ``nasbench`` command builds every subcommand's parser); the work is imported when
the command runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nasbench_experiments.studies.runner import Study

DEFAULT_OPTIMIZERS = "rs,re,ls,rl,tpe,smac,hb,bohb"
DEFAULT_OUT = Path("compare-results")


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run seeded optimizers on NAS-Bench-101 (many runs, local processes or a Ray cluster), then write one "
        "tidy table of every evaluation (results.parquet), a summary, report.md and the paper's two figures "
        "(regret over estimated wall-clock, ECDF of final regret). Interrupted studies resume with the same "
        "command. Without --store or --target it uses the embedded synthetic dataset. The study's estimated cost "
        "is printed before it starts, and its progress as it runs (a bar on a terminal, log lines otherwise)."
    )
    parser.add_argument(
        "--optimizers",
        default=DEFAULT_OPTIMIZERS,
        help=f"comma-separated, from rs, re, ls, rl, tpe (hyperopt), smac, hb, bohb (hpbandster), tpe-optuna, smac-hb, "
        f"smac-mf, and Syne Tune's st-rs, st-re, st-tpe, st-bore, asha, ahb, st-bohb, asha-bore (default "
        f"{DEFAULT_OPTIMIZERS}: the paper's eight)",
    )
    parser.add_argument("--runs", default="500", help="runs (seeds) per optimizer (default 500)")
    parser.add_argument("--budget", default="1e7", help="simulated seconds of training per run (default 1e7)")
    parser.add_argument(
        "--encoding", default="A", help="search space: A, B, C (the benchmark's NASCifar10A/B/C) or cells (default A)"
    )
    parser.add_argument(
        "--space",
        metavar="SPACE",
        help="only the cells of a subspace, terms joined by '+': vertices=A-B, edges=A-B, ops=conv3x3/conv1x1/"
        "maxpool3x3, 1shot1-1 (or -2, -3: NAS-Bench-1Shot1's search spaces), all; regrets against its own optimum "
        "(docs/compare.md)",
    )
    parser.add_argument(
        "--bootstrap",
        metavar="SPACE",
        help="the seed paper's generalization bootstrap: the same study on the subspace SPACE (OUT/subspace) and on "
        "the whole space (OUT/whole), and the rank correlation of the optimizers' final regrets (OUT/report.md)",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--store",
        help="a store (or .tfrecord, or only108, full, synthetic) every worker opens (a shared path on Ray; default: "
        "the embedded synthetic store)",
    )
    source.add_argument("--target", help="a server every worker queries: grpc://host:port or host:port[,host:port]")
    parser.add_argument("--executor", default="processes", help="processes (default) or ray")
    parser.add_argument("--address", help="Ray cluster address (with --executor ray; default: start a local Ray)")
    parser.add_argument("--workers", type=int, help="worker processes, or Ray CPUs of a local Ray (default: CPUs)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"study folder (default {DEFAULT_OUT})")
    parser.add_argument("--first-seed", type=int, default=0, help="seed of the first run (default 0)")
    parser.add_argument("--max-evaluations", type=int, help="also stop a run after this many evaluations")
    parser.add_argument(
        "--parallel",
        default="1",
        metavar="N",
        help="N asynchronous workers per run, in simulated time (Syne Tune's schedulers; --budget is then the "
        "run's summed training time, spanning about budget/N of simulated wall-clock; docs/compare.md)",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar (on a terminal) or progress lines (otherwise)"
    )
    parser.add_argument(
        "--estimate", action="store_true", help="only print the study's estimated cost (the runs still to do) and exit"
    )
    parser.add_argument(
        "--report", type=Path, metavar="DIR", help="only redraw the report of the study in DIR from its saved runs"
    )
    parser.add_argument(
        "--scaling",
        metavar="DIR,DIR,...",
        help="only draw, into --out, how the studies in these folders (alike but for --parallel) scale: regret over "
        "simulated wall-clock per number of workers, and the speed-up to reach a regret",
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


def _subspace(text: str | None, flag: str) -> str | None:
    """The canonical spelling of a subspace option (None: the whole space)."""
    from nasbench.errors import ConfigurationError
    from nasbench_experiments.search import subspaces

    if text is None:
        return None
    try:
        canonical = subspaces.parse(text).text
    except ConfigurationError as exc:
        raise ConfigurationError(f"{flag} {exc}") from None
    return None if canonical == "all" else canonical


def run_compare(args: argparse.Namespace) -> int:
    from nasbench.errors import ConfigurationError
    from nasbench_experiments.studies import bootstrap, report, runner

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    if args.scaling is not None:
        from nasbench_experiments.studies.scaling import render_scaling

        figures = render_scaling([Path(text.strip()) for text in args.scaling.split(",") if text.strip()], args.out)
        print(f"wrote {', '.join(str(path) for path in figures.values())}")
        return 0
    if args.report is not None:
        render = bootstrap.render if bootstrap.is_bootstrap(args.report) else report.render
        written = render(args.report)
        print(f"wrote {', '.join(str(path) for path in written.values())}")
        return 0
    if args.space is not None and args.bootstrap is not None:
        raise ConfigurationError(
            "--space runs one study on a subspace, --bootstrap one on a subspace and one on the whole space: not both"
        )
    dataset = args.target or args.store or "synthetic"  # anything api.NASBench accepts; an estimate opens none
    study = runner.Study(
        dataset=dataset,
        optimizers=tuple(name.strip() for name in args.optimizers.split(",") if name.strip()),
        runs=int(_number(args.runs, "--runs", int)),
        budget_s=_number(args.budget, "--budget", float),
        encoding=args.encoding,
        first_seed=args.first_seed,
        max_evaluations=args.max_evaluations,
        subspace=_subspace(args.space, "--space"),
        parallel=int(_number(args.parallel, "--parallel", int)),
    )
    study.check()
    if args.bootstrap is not None:
        return _run_bootstrap(args, study)
    if args.estimate:
        pending = [task for task in study.tasks() if not task.path(args.out).exists()]
        workers = args.workers or os.cpu_count() or 1
        print(runner.plan(study, pending, args.executor, workers, args.address).describe())
        return 0
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


def _run_bootstrap(args: argparse.Namespace, study: Study) -> int:
    """``--bootstrap SPACE``: both studies (or their estimates), then the bootstrap's report and summary."""
    from nasbench.errors import ConfigurationError
    from nasbench_experiments.studies import bootstrap, runner

    subspace = _subspace(args.bootstrap, "--bootstrap")
    if subspace is None:
        raise ConfigurationError("--bootstrap compares a subspace with the whole space: give a subspace, not 'all'")
    if args.estimate:
        workers = args.workers or os.cpu_count() or 1
        for name, each, folder in bootstrap.parts(study, subspace, args.out):
            pending = [task for task in each.tasks() if not task.path(folder).exists()]
            print(f"{name}: {runner.plan(each, pending, args.executor, workers, args.address).describe()}")
        return 0
    signal.signal(signal.SIGTERM, _interrupt)
    done = bootstrap.run(
        study,
        subspace,
        args.out,
        executor=args.executor,
        workers=args.workers,
        address=args.address,
        progress=False if args.no_progress else None,
    )
    written = bootstrap.render(args.out)
    print(f"{len(done)} runs done now; wrote {', '.join(str(path) for path in written.values())}")
    _, rows, agreements = bootstrap.summarize(args.out)
    for row in rows:
        print(
            f"{row['optimizer']:<5} mean final test regret: whole space {row['mean_final_test_regret_whole']:.3g} "
            f"(rank {row['rank_whole']:g}), subspace {row['mean_final_test_regret_subspace']:.3g} "
            f"(rank {row['rank_subspace']:g})"
        )
    for line in bootstrap.lines(agreements):
        print(line)
    return 0
