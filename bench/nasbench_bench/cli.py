"""``nasbench bench``: run named scenarios and write results.json, report.md and PNG plots."""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
from pathlib import Path

from nasbench import api
from nasbench_bench import load as load_scenario
from nasbench_bench import report, results
from nasbench_bench.rpc import descendants

SCENARIOS = {
    "canonicalization": "spec construction, original hash and canonical key per call",
    "query_local": "in-process query, cold (fresh processes, never-seen cells) and warm, vs the original lookup path",
    "notebook": "the original notebook's random search and evolution, whole run, vs the original lookup path",
    "memory": "16 client processes querying never-seen cells: total PSS, the shared key table counted once",
    "remote": "unary Query vs empty RPC, one stream, QueryBatch by size, cached client",
    "concurrency": "1..16 client processes: throughput, latency, server memory",
    "cold_start": "server to SERVING, client to first answer, vs loading the original's dicts",
    "build": "synthetic files built into stores: records/s, peak memory, round trip",
    "load": "load generator: concurrency, duration, request mix, rate limit",
    "reliability": "store verification, health under heavy calls, a batch beside big samples, idle streams, scrapes",
    "analyze": "nasbench analyze in fresh processes: the report without locality, locality; time, peak RSS",
    "compare": "optimizer study: 500 runs each of RS and RE on 2 workers, store vs server; optimizer overheads",
    "parallel": "100 runs of Syne Tune's ASHA on 16 simulated workers each, 2 worker processes; per-run overhead",
    "train": "training one cell's network (torch): images/s forward+backward, 108 epochs projected vs TPU v2",
}
# run only when named: train needs the 'train' extra (torch) and minutes of CPU, parallel hours (Syne Tune)
OPT_IN = {"train", "parallel"}
REMOTE = {"remote", "concurrency", "cold_start", "load", "compare"}


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Benchmarks side by side with their baselines, in one run: "
        + "; ".join(f"{name}: {text}" for name, text in SCENARIOS.items())
        + ". Writes results.json, report.md and PNG plots to --out."
    )
    parser.add_argument(
        "scenarios",
        nargs="*",
        metavar="SCENARIO",
        help=f"any of {', '.join(SCENARIOS)} (default: all but {', '.join(sorted(OPT_IN))}; with only --target: "
        "remote, concurrency, load)",
    )
    parser.add_argument(
        "--store", type=Path, help="store for local scenarios and own servers (default: the embedded synthetic store)"
    )
    parser.add_argument("--target", help="measure this deployment (host:port[,host:port]) instead of starting a server")
    parser.add_argument("--quick", action="store_true", help="a smoke run, under a minute")
    parser.add_argument("--out", type=Path, default=Path("bench-results"), help="output folder (default bench-results)")
    parser.add_argument(
        "--server-workers",
        type=int,
        default=1,
        help="worker processes of the server this run starts (sharing one port)",
    )
    group = parser.add_argument_group("load generator (scenario load)")
    group.add_argument(
        "--concurrency", type=int, help=f"client processes (default {load_scenario.DEFAULTS['concurrency']})"
    )
    group.add_argument("--duration", type=float, help=f"seconds (default {load_scenario.DEFAULTS['duration']:g})")
    group.add_argument("--mix", help=f"request mix (default {load_scenario.DEFAULTS['mix']})")
    group.add_argument("--rate", type=float, help="requests/s over all clients (default: as fast as possible)")
    group.add_argument(
        "--batch-size", type=int, help=f"cells per batch (default {load_scenario.DEFAULTS['batch_size']})"
    )


def run_bench(args: argparse.Namespace) -> int:
    default = [name for name in SCENARIOS if name not in OPT_IN]
    names = args.scenarios or (["remote", "concurrency", "load"] if args.target and not args.store else default)
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        raise SystemExit(f"nasbench bench: error: unknown scenario {unknown[0]!r} (choose from {', '.join(SCENARIOS)})")
    if args.mix:
        load_scenario.parse_mix(args.mix)
    store_path = args.store
    if store_path is None:
        from nasbench_builder.prepare import store_for_dataset

        store_path = store_for_dataset("synthetic")
    opened = api.NASBench(store_path)
    manifest = {
        "cells": len(opened.hash_iterator()),
        "epochs": sorted(opened.valid_epochs),
        "checksum": opened.dataset_identity,
        "source": opened.dataset_source,
    }
    opened.close()
    server = None
    with tempfile.TemporaryDirectory(prefix="nasbench-bench-") as scratch:
        context = results.Context(
            quick=args.quick,
            store=Path(store_path),
            workdir=Path(scratch),
            target=args.target,
            load={
                "concurrency": args.concurrency,
                "duration": args.duration,
                "mix": args.mix,
                "rate": args.rate,
                "batch_size": args.batch_size,
            },
            server_workers=args.server_workers,
        )
        if args.target:
            context.address = args.target
        elif REMOTE & set(names):
            from nasbench_server.process import ServerProcess, free_ports

            port = 0 if args.server_workers == 1 else free_ports()[0]
            server = ServerProcess(
                context.store, context.workdir, port=port, extra=["--workers", str(args.server_workers)]
            ).wait_serving()
            context.address = server.address
            context.server_pids = [server.process.pid, *descendants(server.process.pid)]
        done: dict[str, results.ScenarioResult] = {}
        try:
            for name in names:
                started = time.perf_counter()
                print(f"bench: {name} ...", file=sys.stderr, flush=True)
                done[name] = importlib.import_module(f"nasbench_bench.{name}").run(context)
                print(f"bench: {name} done in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
        finally:
            if server is not None:
                server.stop()
        assembled = results.assemble(context, done, manifest)
    problems = results.validate(assembled)
    results_path = results.write(assembled, args.out)
    report_path = report.render(assembled, done, args.out)
    for name, scenario in assembled["scenarios"].items():
        for target in scenario["targets"]:
            print(
                f"{name:<16} {target['name']:<48} {target['measured']:>14,.4g} {target['unit']:<10} "
                f"{target['target']:<12} {'met' if target['met'] else 'NOT MET'}"
            )
    print(f"wrote {results_path} and {report_path}")
    if problems:
        print("results are inconsistent: " + "; ".join(problems), file=sys.stderr)
        return 1
    return 0


COMMANDS = {"bench": (add_bench_arguments, run_bench)}
