"""``nasbench serve`` and ``nasbench health``: flags, each with an environment-variable fallback (read only here)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from nasbench.download import DATASETS
from nasbench.errors import ConfigurationError
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
    parser.add_argument("--store", type=Path, default=_env("STORE", None) or None, help="store file [NASBENCH_STORE]")
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
        choices=list(DATASETS),
        default=_env("DATASET", None) or None,
        help="serve an official dataset: downloaded (resumable, SHA-256 verified) and built once into the cache "
        "folder, then reused [NASBENCH_DATASET]",
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
        "--prepare",
        action="store_true",
        help="open and verify the store (building the synthetic one if none is given), then exit",
    )


def run_serve(args: argparse.Namespace) -> int:
    if args.workers < 1 or not 0 <= args.port <= 65535:
        raise ConfigurationError(f"bad --workers {args.workers} or --port {args.port}")
    if args.metrics_port is not None and not 0 < args.metrics_port <= 65535:
        raise ConfigurationError(f"bad --metrics-port {args.metrics_port}: 1 to 65535")
    if bool(args.tls_cert) != bool(args.tls_key):
        raise ConfigurationError("TLS needs both --tls-cert and --tls-key")
    _check_dataset(args)
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
    )
    if args.prepare:
        app.prepare(config)
        return 0
    return app.run(config, port_file=args.port_file)


def _token(token_file: Path | None) -> str | None:
    """The shared token: from the file, else NASBENCH_TOKEN; surrounding whitespace ignored, a blank one refused
    (it would look like protection and protect nothing)."""
    if token_file is not None:
        try:
            token = token_file.read_text().strip()
        except OSError as exc:
            raise ConfigurationError(f"cannot read the token file {token_file}: {exc.strerror or exc}") from None
        if not token:
            raise ConfigurationError(f"the token file {token_file} is empty")
        return token
    value = os.environ.get("NASBENCH_TOKEN", "")
    if value == "":  # unset, as shells and compose files write it
        return None
    if not value.strip():
        raise ConfigurationError("NASBENCH_TOKEN is set but blank: set a real token, or unset it")
    return value.strip()


def _check_dataset(args: argparse.Namespace) -> None:
    """The dataset flags (argparse checks choices of flags, not of environment defaults)."""
    choices = ", ".join(DATASETS)
    if args.dataset is not None and args.dataset not in DATASETS:
        raise ConfigurationError(f"unknown dataset {args.dataset!r} (NASBENCH_DATASET): expected one of {choices}")
    if args.dataset is not None and args.store is not None:
        raise ConfigurationError("pass either --store or --dataset (NASBENCH_STORE or NASBENCH_DATASET), not both")
    if args.dataset is None and (args.dataset_url or args.dataset_sha256):
        raise ConfigurationError("--dataset-url and --dataset-sha256 need --dataset (only108 or full)")


def add_health_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Exit 0 if the server reports SERVING on the standard gRPC health service, 1 otherwise: for Docker "
        "HEALTHCHECK and Kubernetes exec probes. Health needs no token."
    )
    port = int(_env("PORT", DEFAULT_PORT))
    parser.add_argument("--address", default=f"127.0.0.1:{port}", help="host:port (default 127.0.0.1:$NASBENCH_PORT)")
    parser.add_argument("--tls-ca", type=Path, default=_env("TLS_CA", None), help="CA certificate for a TLS server")
    parser.add_argument(
        "--tls-server-name",
        default=_env("TLS_SERVER_NAME", None),
        help="name the TLS certificate was issued for, if not the address's host",
    )
    parser.add_argument("--timeout", type=float, default=3.0)


def run_health(args: argparse.Namespace) -> int:
    if args.tls_ca is not None:
        options = [("grpc.ssl_target_name_override", args.tls_server_name)] if args.tls_server_name else []
        credentials = grpc.ssl_channel_credentials(args.tls_ca.read_bytes())
        channel = grpc.secure_channel(args.address, credentials, options=options)
    else:
        channel = grpc.insecure_channel(args.address)
    with channel:
        try:
            status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=args.timeout)
        except grpc.RpcError as error:
            print(f"{args.address}: {error.code().name}")
            return 1
    print(f"{args.address}: {health_pb2.HealthCheckResponse.ServingStatus.Name(status.status)}")
    return 0 if status.status == health_pb2.HealthCheckResponse.SERVING else 1


COMMANDS = {"serve": (add_serve_arguments, run_serve), "health": (add_health_arguments, run_health)}
