"""The ``nasbench`` command: one entry point, one subcommand per job, and only the command that runs is imported.

The table below names each subcommand's module, its pip extra and a one-line summary: ``nasbench --help`` lists
the commands from it without importing any of them, and ``nasbench COMMAND ...`` imports that command's module
alone (``nasbench health``, every container's probe, imports gRPC's health stub and nothing else). A command whose
package or extra is not installed says which extra to install instead of failing with an ImportError.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from nasbench import __version__
from nasbench.errors import NasbenchError

# subcommand -> (module whose COMMANDS[name] is (add_arguments(parser), run(args) -> int), pip extra, summary)
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "serve": ("nasbench_server.cli", "server", "serve a store (or the embedded synthetic one) over gRPC"),
    "health": ("nasbench_server.health", "server", "exit 0 if a server reports SERVING (for container probes)"),
    "download": ("nasbench_builder.download_cli", "builder", "download an official dataset file, verify its SHA-256"),
    "build": ("nasbench_builder.cli", "builder", "build a store from an original .tfrecord file"),
    "synth": ("nasbench_builder.cli", "builder", "write a synthetic dataset in the original .tfrecord format"),
    "verify": ("nasbench_builder.cli", "builder", "re-check a store and print its manifest"),
    "train": ("nasbench_builder.train_cli", "train", "train cells with the paper's protocol; write dataset records"),
    "compare": (
        "nasbench_experiments.studies.cli",
        "experiments",
        "compare NAS optimizers over many seeded runs: regret table, report and plots",
    ),
    "analyze": (
        "nasbench_experiments.analysis.cli",
        "experiments",
        "the paper's dataset analyses (budget correlation, Pareto, locality, noise, ops) as a report",
    ),
    "bench": ("nasbench_bench.cli", "bench", "run the benchmarks; write results.json, report.md and plots"),
}


def _overview() -> argparse.ArgumentParser:
    """The top-level parser: the commands and their summaries, none of them imported."""
    parser = argparse.ArgumentParser(
        prog="nasbench",
        description="NAS-Bench-101 without TensorFlow: build a store, serve it over gRPC, query, compare, analyze.",
        epilog="`nasbench COMMAND --help` describes a command.",
    )
    parser.add_argument("--version", action="version", version=f"nasbench {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, _, summary) in SUBCOMMANDS.items():
        commands.add_parser(name, help=summary, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code (2 for a NasbenchError, with one stderr line)."""
    words = list(sys.argv[1:] if argv is None else argv)
    if not words or words[0] not in SUBCOMMANDS:
        overview = _overview()
        if not words:
            overview.print_help()
            return 2
        overview.parse_args(words)  # --help, --version, or argparse's error for an unknown command (exit 2)
        return 2
    name, rest = words[0], words[1:]
    module, extra, summary = SUBCOMMANDS[name]
    parser = argparse.ArgumentParser(prog=f"nasbench {name}", description=summary)
    try:
        add_arguments, run = importlib.import_module(module).COMMANDS[name]
    except ImportError:
        hint = f"this command needs the '{extra}' extra: pip install 'nasbench-server[{extra}]'"
        if {"-h", "--help"} & set(rest):
            parser.description = f"{summary} ({hint})"
            parser.parse_args(["--help"])
        print(f"nasbench {name}: {hint}", file=sys.stderr)
        return 2
    add_arguments(parser)
    args = parser.parse_args(rest)
    args.command = name
    try:
        return int(run(args) or 0)
    except NasbenchError as exc:
        print(f"nasbench {name}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nasbench {name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
