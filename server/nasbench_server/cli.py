"""``nasbench serve`` and ``nasbench health``: flags, each with an environment-variable fallback (read only here)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TypeVar

from nasbench._backends.address import DATASET_NAMES
from nasbench.errors import ConfigurationError
from nasbench_server import app, security, store_guard
from nasbench_server.config import (
    DEFAULT_GRACE_S,
    DEFAULT_IDLE_TIMEOUT_S,
    DEFAULT_LOG_LEVEL,
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_CONCURRENT_RPCS,
    DEFAULT_MAX_SAMPLE,
    DEFAULT_STORE_GUARD,
    DEFAULT_WORKERS,
    ServerConfig,
)
from nasbench_server.endpoint import DEFAULT_HOST, DEFAULT_PORT

_Default = TypeVar("_Default")


def _env(name: str, default: _Default) -> str | _Default:
    return os.environ.get(f"NASBENCH_{name}", default)


def _flag(name: str) -> bool:
    return str(_env(name, "")).lower() in ("1", "true", "yes")


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Serve a store over gRPC. --dataset only108|full serves the real NAS-Bench-101 (downloaded, verified and "
        "built once into the cache folder). With neither --store nor --dataset, serves the embedded synthetic "
        "full-scale dataset (built once, about a minute, then cached). Every flag falls back to an environment "
        "variable NASBENCH_<NAME>. "
        "Beyond loopback the server needs a token or TLS, or an explicit --insecure."
    )
    parser.add_argument(
        "--store",
        default=_env("STORE", None) or None,
        help="a store file, an original .tfrecord file (built into a store once), or a dataset name "
        "(only108, full, synthetic) [NASBENCH_STORE]",
    )
    parser.add_argument("--host", default=_env("HOST", DEFAULT_HOST), help="address to bind, or unix:/path")
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
    parser.add_argument(
        "--verify",
        choices=("auto", "always"),
        default=_env("VERIFY", "auto"),
        help="re-check the store's checksums before serving: 'auto' (default) once per file identity, recorded in "
        "the cache folder, so an unchanged file starts at once and a changed one is always re-checked; 'always' "
        "at every start [NASBENCH_VERIFY]",
    )
    parser.add_argument(
        "--port-file",
        type=Path,
        default=_env("PORT_FILE", None),
        help="write the bound port here once listening (for --port 0)",
    )
    parser.add_argument("--tls-cert", type=Path, default=_env("TLS_CERT", None), help="PEM certificate chain")
    parser.add_argument("--tls-key", type=Path, default=_env("TLS_KEY", None), help="PEM private key")
    parser.add_argument(
        "--token-file",
        type=Path,
        default=_env("TOKEN_FILE", None),
        help="file holding the shared token clients must send (or set NASBENCH_TOKEN)",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        default=_flag("INSECURE"),
        help="allow binding beyond loopback without token or TLS [NASBENCH_INSECURE=1]",
    )
    parser.add_argument(
        "--dataset",
        choices=list(DATASET_NAMES),
        default=_env("DATASET", None) or None,
        help="serve an official dataset (only108, full: downloaded, resumable, SHA-256 verified) or the embedded "
        "synthetic one (the default), built once into the cache folder, then reused [NASBENCH_DATASET]",
    )
    parser.add_argument(
        "--dataset-url",
        default=_env("DATASET_URL", None) or None,
        help="a mirror of the dataset file: http(s):// or file:// [NASBENCH_DATASET_URL]",
    )
    parser.add_argument(
        "--dataset-sha256",
        default=_env("DATASET_SHA256", None) or None,
        help="the mirrored file's SHA-256, if it is not the official file [NASBENCH_DATASET_SHA256]",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=_env("METRICS_PORT", None) or None,
        help="serve Prometheus metrics at http://HOST:PORT/metrics (all workers summed) [NASBENCH_METRICS_PORT]",
    )
    parser.add_argument(
        "--store-guard",
        choices=store_guard.MODES,
        default=_env("STORE_GUARD", DEFAULT_STORE_GUARD),
        help="what keeps the bytes answers come from unchanged if the store file is written in place: 'lease' (a "
        "read lease: writers wait until the server has stopped answering), 'copy' (a private copy in memory, the "
        "store's size), 'auto' (default: lease where possible, else copy) or 'watch' (neither: a change stops the "
        "answers within a second) [NASBENCH_STORE_GUARD]",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=float(_env("IDLE_TIMEOUT", DEFAULT_IDLE_TIMEOUT_S)),
        help="close a connection that carries no call for this many seconds; clients reconnect on their next "
        "call [NASBENCH_IDLE_TIMEOUT]",
    )
    parser.add_argument(
        "--max-connections-per-peer",
        type=int,
        default=_env("MAX_CONNECTIONS_PER_PEER", None) or None,
        help="TCP connections one remote address may hold; past it the newest are closed (default: a quarter of "
        "what the open-file limit allows) [NASBENCH_MAX_CONNECTIONS_PER_PEER]",
    )
    parser.add_argument(
        "--prepare",
        action="store_true",
        help="open and verify the store (building the synthetic one if none is given), then exit",
    )


def run_serve(args: argparse.Namespace) -> int:
    if args.workers < 1 or not 0 <= args.port <= 65535:
        raise ConfigurationError(f"bad --workers {args.workers} or --port {args.port}")
    if args.metrics_port is not None and not 0 < args.metrics_port <= 65535:
        raise ConfigurationError(f"bad --metrics-port {args.metrics_port}: 1 to 65535")
    if not args.idle_timeout > 0:
        raise ConfigurationError(f"bad --idle-timeout {args.idle_timeout:g}: seconds, more than 0")
    if args.max_connections_per_peer is not None and args.max_connections_per_peer < 1:
        raise ConfigurationError(f"bad --max-connections-per-peer {args.max_connections_per_peer}: 1 or more")
    if bool(args.tls_cert) != bool(args.tls_key):
        raise ConfigurationError("TLS needs both --tls-cert and --tls-key")
    _check_dataset(args)
    if args.store_guard not in store_guard.MODES:
        choices = ", ".join(store_guard.MODES)
        raise ConfigurationError(f"NASBENCH_STORE_GUARD must be one of {choices}, got {args.store_guard!r}")
    if args.verify not in ("auto", "always"):
        raise ConfigurationError(f"NASBENCH_VERIFY must be 'auto' or 'always', got {args.verify!r}")
    token = _token(args.token_file)
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
        verify=True if args.verify == "always" else None,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        token=token,
        insecure=args.insecure,
        dataset=args.dataset,
        dataset_url=args.dataset_url,
        dataset_sha256=args.dataset_sha256,
        metrics_port=args.metrics_port,
        idle_timeout_s=args.idle_timeout,
        store_guard=args.store_guard,
        max_connections_per_peer=args.max_connections_per_peer,
    )
    if args.prepare:
        app.prepare(config)
        return 0
    return app.run(config, port_file=args.port_file)


def _token(token_file: Path | None) -> str | None:
    """The shared token: from the file, else NASBENCH_TOKEN; surrounding whitespace ignored, a blank one refused
    (it would look like protection and protect nothing), and one that gRPC metadata cannot carry refused."""
    if token_file is not None:
        try:
            raw = token_file.read_bytes().strip()
        except OSError as exc:
            raise ConfigurationError(f"cannot read the token file {token_file}: {exc.strerror or exc}") from None
        if not raw:
            raise ConfigurationError(f"the token file {token_file} is empty")
        where = f"the token in {token_file}"
        try:
            text = raw.decode()
        except UnicodeDecodeError as exc:
            security.invalid_token(where, f"byte {exc.start + 1} is 0x{raw[exc.start]:02x}, not text")
        return security.check_token(text, where)
    value = os.environ.get("NASBENCH_TOKEN", "")
    if value == "":  # unset, as shells and compose files write it
        return None
    if not value.strip():
        raise ConfigurationError("NASBENCH_TOKEN is set but blank: set a real token, or unset it")
    return security.check_token(value.strip(), "NASBENCH_TOKEN")


def _check_dataset(args: argparse.Namespace) -> None:
    """The dataset flags (argparse checks choices of flags, not of environment defaults)."""
    choices = ", ".join(DATASET_NAMES)
    if args.dataset is not None and args.dataset not in DATASET_NAMES:
        raise ConfigurationError(f"unknown dataset {args.dataset!r} (NASBENCH_DATASET): expected one of {choices}")
    if args.dataset is not None and args.store is not None:
        raise ConfigurationError("pass either --store or --dataset (NASBENCH_STORE or NASBENCH_DATASET), not both")
    if args.dataset is None and (args.dataset_url or args.dataset_sha256):
        raise ConfigurationError("--dataset-url and --dataset-sha256 need --dataset (only108 or full)")
    if args.dataset == "synthetic" and (args.dataset_url or args.dataset_sha256):
        raise ConfigurationError("--dataset-url and --dataset-sha256 name a file to download: only108 or full")


COMMANDS = {"serve": (add_serve_arguments, run_serve)}
