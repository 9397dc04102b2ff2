"""Server configuration: one frozen value, built by the CLI from flags and environment variables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 50051
DEFAULT_WORKERS = 1
DEFAULT_MAX_BATCH = 100_000  # cells per QueryBatch
DEFAULT_MAX_SAMPLE = 100_000  # k per Sample
DEFAULT_MAX_MESSAGE_BYTES = 64 << 20  # sized for a full batch of all-budget metrics (100,000 x 768 bytes)
DEFAULT_MAX_CONCURRENT_RPCS = 10_000
DEFAULT_GRACE_S = 10.0
DEFAULT_LOG_LEVEL = "INFO"
DEFAULT_LIST_CHUNK = 4096
MAX_LIST_CHUNK = 65536


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``serve`` needs; keyword-only, with the DEFAULT_* values above."""

    store: Path | None = None  # None: the embedded synthetic store, built once and cached
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    workers: int = DEFAULT_WORKERS
    max_batch: int = DEFAULT_MAX_BATCH
    max_sample: int = DEFAULT_MAX_SAMPLE
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_concurrent_rpcs: int = DEFAULT_MAX_CONCURRENT_RPCS
    grace_s: float = DEFAULT_GRACE_S
    log_level: str = DEFAULT_LOG_LEVEL
    verify: bool = True  # re-check every store checksum before reporting SERVING
    reuse_port: bool = False  # several worker processes share the port (set for --workers > 1)
    cache_dir: Path | None = None  # where the embedded store goes (default ~/.cache/nasbench)
    tls_cert: Path | None = None  # PEM certificate chain; with tls_key, the server speaks TLS
    tls_key: Path | None = None  # PEM private key
    token: str | None = None  # shared bearer token every call but health must carry
    insecure: bool = False  # allow a non-loopback bind without TLS or token
    metrics_port: int | None = None  # serve Prometheus metrics on host:metrics_port (None: no metrics)

    @property
    def address(self) -> str:
        """The bind address: ``host:port``, ``[v6]:port``, or a ``unix:/path`` host as it is."""
        if self.host.startswith("unix:"):
            return self.host
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"{host}:{self.port}"
