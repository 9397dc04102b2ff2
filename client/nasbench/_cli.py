"""The ``nasbench`` command: one entry point, one subcommand per job, each imported only when used.

Subcommands live in the packages that own them (builder, server, bench); when one of those is not installed
the command says which extra to install instead of failing with an ImportError.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from nasbench import __version__
from nasbench.errors import NasbenchError

# subcommand -> (module whose COMMANDS[name] is (add_arguments(parser), run(args) -> int), pip extra, summary)
_SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "download": ("nasbench._download_cli", "", "download an official dataset file (resumable), verify its SHA-256"),
    "build": ("nasbench_builder.cli", "builder", "build a store from an original .tfrecord file"),
    "synth": ("nasbench_builder.cli", "builder", "write a synthetic dataset in the original .tfrecord format"),
    "verify": ("nasbench_builder.cli", "builder", "re-check a store and print its manifest"),
    "serve": ("nasbench_server.cli", "server", "serve a store (or the embedded synthetic one) over gRPC"),
    "health": ("nasbench_server.cli", "server", "exit 0 if a server reports SERVING (for container probes)"),
    "bench": ("nasbench_bench.cli", "bench", "run the benchmarks; write results.json, report.md and plots"),
    "analyze": (
        "nasbench_experiments.analysis.cli",
        "experiments",
        "the paper's dataset analyses (budget correlation, Pareto, locality, noise, ops) as a report",
    ),
    "compare": (
        "nasbench_experiments.studies.cli",
        "experiments",
        "compare NAS optimizers over many seeded runs: regret table, report and plots",
    ),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nasbench",
        description="NAS-Bench-101 without TensorFlow: build a store, serve it over gRPC, benchmark it.",
    )
    parser.add_argument("--version", action="version", version=f"nasbench {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, extra, summary) in _SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=summary, description=summary)
        sub.set_defaults(_module=module, _extra=extra)
        try:
            add_arguments, _ = importlib.import_module(module).COMMANDS[name]
        except ImportError:
            sub.description = f"{summary} (not installed: pip install 'nasbench-server[{extra}]')"
            sub.set_defaults(_missing=True)
        else:
            add_arguments(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code (2 for a NasbenchError, with one stderr line)."""
    parser = _parser()
    # A subcommand whose package is not installed registers no arguments: whatever follows it must still lead
    # to the install hint, not to argparse's "unrecognized arguments".
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "_missing", False):
        args = parser.parse_args(argv)  # argparse's own error for arguments no installed command takes
    if args.command is None:
        parser.print_help()
        return 2
    if getattr(args, "_missing", False):
        print(
            f"nasbench {args.command}: this command needs the '{args._extra}' extra: "
            f"pip install 'nasbench-server[{args._extra}]'",
            file=sys.stderr,
        )
        return 2
    try:
        _, run = importlib.import_module(args._module).COMMANDS[args.command]
        return int(run(args) or 0)
    except NasbenchError as exc:
        print(f"nasbench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nasbench {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
