"""``nasbench serve``: flags, each with an environment-variable fallback (read only here)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from nasbench_server import app
from nasbench_server.config import (
    DEFAULT_GRACE_S,
    DEFAULT_HOST,
    DEFAULT_LOG_LEVEL,
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_CONCURRENT_RPCS,
    DEFAULT_MAX_SAMPLE,
    DEFAULT_PORT,
    DEFAULT_WORKERS,
    ServerConfig,
)


def _env(name: str, default: object) -> object:
    return os.environ.get(f"NASBENCH_{name}", default)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Serve a store over gRPC. With no --store, serves the embedded synthetic full-scale dataset (built once, "
        "about a minute, then cached). Every flag falls back to an environment variable NASBENCH_<NAME>."
    )
    parser.add_argument("--store", type=Path, default=_env("STORE", None), help="store file [NASBENCH_STORE]")
    parser.add_argument("--host", default=_env("HOST", DEFAULT_HOST), help="address to bind [NASBENCH_HOST]")
    parser.add_argument("--port", type=int, default=int(_env("PORT", DEFAULT_PORT)), help="0 picks a free port")
    parser.add_argument(
        "--workers",
        type=int,
        default=int(_env("WORKERS", DEFAULT_WORKERS)),
        help="server processes sharing the port [NASBENCH_WORKERS]",
    )
    parser.add_argument("--max-batch", type=int, default=int(_env("MAX_BATCH", DEFAULT_MAX_BATCH)))
    parser.add_argument("--max-sample", type=int, default=int(_env("MAX_SAMPLE", DEFAULT_MAX_SAMPLE)))
    parser.add_argument(
        "--max-concurrent-rpcs", type=int, default=int(_env("MAX_CONCURRENT_RPCS", DEFAULT_MAX_CONCURRENT_RPCS))
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=float(_env("GRACE", DEFAULT_GRACE_S)),
        help="seconds to drain in-flight calls on SIGTERM",
    )
    parser.add_argument("--log-level", default=_env("LOG_LEVEL", DEFAULT_LOG_LEVEL))
    parser.add_argument("--no-verify", action="store_true", help="skip re-checking store checksums at start")
    parser.add_argument(
        "--port-file",
        type=Path,
        default=_env("PORT_FILE", None),
        help="write the bound port here once listening (for --port 0)",
    )


def run_serve(args: argparse.Namespace) -> int:
    if args.workers < 1 or not 0 <= args.port <= 65535:
        raise SystemExit(f"nasbench serve: error: bad --workers {args.workers} or --port {args.port}")
    config = ServerConfig(
        store=args.store,
        host=args.host,
        port=args.port,
        workers=args.workers,
        max_batch=args.max_batch,
        max_sample=args.max_sample,
        max_concurrent_rpcs=args.max_concurrent_rpcs,
        grace_s=args.grace,
        log_level=args.log_level,
        verify=not args.no_verify,
    )
    app.run(config, port_file=args.port_file)
    return 0


COMMANDS = {"serve": (add_serve_arguments, run_serve)}
