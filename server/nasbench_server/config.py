"""Server configuration: one frozen value, built by the CLI from flags and environment variables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nasbench_server import limits
from nasbench_server.endpoint import DEFAULT_HOST, DEFAULT_PORT

DEFAULT_WORKERS = 1
DEFAULT_MAX_BATCH = 100_000  # cells per QueryBatch
DEFAULT_MAX_SAMPLE = 100_000  # k per Sample
DEFAULT_MAX_MESSAGE_BYTES = 64 << 20  # largest request (100,000 full-matrix specs are about 16 MB)
DEFAULT_MAX_CONCURRENT_RPCS = 10_000
DEFAULT_GRACE_S = 10.0
DEFAULT_STORE_GUARD = "auto"  # a read lease on the store file where possible, else a private copy
DEFAULT_IDLE_TIMEOUT_S = 300.0  # a connection that carries no call for this long is closed (clients reconnect)
DEFAULT_LOG_LEVEL = "INFO"
DEFAULT_LIST_CHUNK = 4096
MAX_LIST_CHUNK = 65536
ALL_BUDGETS = 4  # the most budgets a NAS-Bench-101 store has (4, 12, 36, 108)


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``serve`` needs; keyword-only, with the DEFAULT_* values above."""

    store: str | Path | None = None  # a store, a .tfrecord or a dataset name (None: the embedded synthetic store)
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    workers: int = DEFAULT_WORKERS
    max_batch: int = DEFAULT_MAX_BATCH
    max_sample: int = DEFAULT_MAX_SAMPLE
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_concurrent_rpcs: int = DEFAULT_MAX_CONCURRENT_RPCS
    grace_s: float = DEFAULT_GRACE_S
    log_level: str = DEFAULT_LOG_LEVEL
    verify: bool | None = None  # checksums: None once per file identity (recorded), True at every start
    reuse_port: bool = False  # several worker processes share the port (set for --workers > 1)
    cache_dir: Path | None = None  # where the embedded store goes (default ~/.cache/nasbench)
    tls_cert: Path | None = None  # PEM certificate chain; with tls_key, the server speaks TLS
    tls_key: Path | None = None  # PEM private key
    token: str | None = None  # shared bearer token every call but health must carry
    insecure: bool = False  # allow a non-loopback bind without TLS or token
    answer_budget_bytes: int = limits.DEFAULT_ANSWER_BUDGET_BYTES  # big answers being built or sent at once
    max_streams: int = limits.DEFAULT_MAX_STREAMS  # open ListCells/QueryStream streams
    stream_stall_s: float = limits.DEFAULT_STREAM_STALL_S  # a stream whose client reads nothing this long ends
    dataset: str | None = None  # "only108"/"full" (downloaded) or "synthetic": built once into cache_dir, then served
    dataset_url: str | None = None  # a mirror of the dataset file (http, https or file://)
    dataset_sha256: str | None = None  # the mirrored file's digest, if it is not the official file
    metrics_port: int | None = None  # serve Prometheus metrics on host:metrics_port (None: no metrics)
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S  # connections without a call this long are closed
    max_connections_per_peer: int | None = None  # TCP connections of one remote address (None: a quarter of all)
    store_guard: str = DEFAULT_STORE_GUARD  # auto, lease, copy or watch: what keeps served bytes unchanged

    @property
    def max_send_bytes(self) -> int:
        """The send limit: the largest answer the limits allow (a whole batch or sample at four budgets) fits."""
        largest = max(self.max_batch, self.max_sample) * limits.cell_answer_bytes(ALL_BUDGETS) + (1 << 20)
        return max(self.max_message_bytes, largest)

    @property
    def address(self) -> str:
        """The bind address: ``host:port``, ``[v6]:port``, or a ``unix:/path`` host as it is."""
        if self.host.startswith("unix:"):
            return self.host
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"{host}:{self.port}"
