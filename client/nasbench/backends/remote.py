"""The remote backend: cells from a nasbench server over gRPC, cached, with the original errors.

- Addresses: ``grpc://host:port``, ``host:port``, comma-separated lists (round-robin across them),
  ``dns:///name:port`` (round-robin across its records), ``unix:/path``; ``grpcs://host:port`` for TLS (with
  ``tls_ca=`` for a private CA). ``token=`` sends ``authorization: Bearer <token>`` with every call.
- One channel per process and target, created on first use; a child process after ``fork`` makes its own
  (a gRPC channel must not cross a fork).
- Calls wait for the server to be ready, retry UNAVAILABLE with exponential backoff (gRPC's retry policy) and
  carry a deadline; a server restarted mid-run is reconnected to transparently.
- Cells are immutable, so every fetched cell (all budgets, all repeats) is kept in a bounded cache: a repeated
  cell costs a dictionary lookup, while the random draw and the budget stay in the API, as in the original.
- gRPC errors become the project's errors at one boundary (``map_rpc_errors``): never a raw ``grpc.RpcError``.
- Every call and cache lookup is counted per target in ``STATS`` (plain integers); ``nasbench.client_metrics``
  exports them, with gRPC's retries, to a Prometheus registry when asked.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import socket
import threading
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc

from nasbench import _wire, errors
from nasbench.backends.cache import DEFAULT_CACHE_CELLS, CellCache
from nasbench.engine import Cell
from nasbench.optima import DatasetOptimum
from nasbench.space import hex_digests
from nasbench.v1 import nasbench_pb2 as pb
from nasbench.v1 import nasbench_pb2_grpc as pb_grpc

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_CONNECT_TIMEOUT_S = 10.0
MAX_MESSAGE_BYTES = 256 << 20  # what this client accepts; it asks for at most BATCH_CHUNK cells per call
BATCH_CHUNK = 16384  # cells per QueryBatch call: about 13 MB of answer at four budgets
_SERVICE_CONFIG = {
    "loadBalancingConfig": [{"round_robin": {}}],
    "methodConfig": [
        {
            "name": [{"service": "nasbench.v1.Nasbench"}],
            "waitForReady": True,
            "retryPolicy": {
                "maxAttempts": 5,
                "initialBackoff": "0.1s",
                "maxBackoff": "2s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE", "CANCELLED"],
            },
        }
    ],
}
_ERROR_CLASSES: dict[str, type[errors.NasbenchError]] = {
    cls.__name__: cls
    for cls in (
        errors.OutOfDomainError,
        errors.TooManyVerticesError,
        errors.InvalidSpecError,
        errors.UnknownCellError,
        errors.RequestRejectedError,
        errors.StoreError,
    )
}


def grpc_target(address: str) -> str:
    """The gRPC target of a user address (see the module docstring)."""
    text = address.removeprefix("grpc://").removeprefix("grpcs://")
    if "," not in text:
        return text
    resolved = []
    for part in text.split(","):
        host, _, port = part.strip().rpartition(":")
        host = host.strip("[]")
        for family, _, _, _, sockaddr in socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM):
            ip = sockaddr[0]
            resolved.append(f"[{ip}]:{port}" if family == socket.AF_INET6 else f"{ip}:{port}")
            break
    scheme = "ipv6" if all(r.startswith("[") for r in resolved) else "ipv4"
    return f"{scheme}:" + ",".join(resolved)


def channel_credentials(address: str, tls_ca: str | os.PathLike[str] | bytes | None) -> grpc.ChannelCredentials | None:
    """TLS credentials for ``grpcs://`` addresses or when a CA is given (PEM file or bytes), else None."""
    if tls_ca is None and not address.startswith("grpcs://"):
        return None
    roots = tls_ca if isinstance(tls_ca, bytes) or tls_ca is None else Path(tls_ca).read_bytes()
    return grpc.ssl_channel_credentials(root_certificates=roots)


def channel_options(max_message_bytes: int = MAX_MESSAGE_BYTES) -> list[tuple[str, Any]]:
    return [
        ("grpc.service_config", json.dumps(_SERVICE_CONFIG)),
        ("grpc.enable_retries", 1),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
    ]


# One channel per process, target and security, with its stub: making a stub builds a callable per method
# (about 90 µs), as much as a whole cache-missing query costs the client otherwise.
_channels: dict[tuple[str, str], tuple[grpc.Channel, pb_grpc.NasbenchStub]] = {}
_channels_lock = threading.Lock()


class ClientStats:
    """What this process's remote clients did, per gRPC target: calls by method and final status code, and
    cell lookups answered from the cache (hits) or not. Safe across threads by construction: a cache hit, the
    hot path, is one ``next()`` on an ``itertools.count`` (atomic, tens of nanoseconds); the rest takes a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[tuple[str, str, str], int] = {}  # (target, method, status code name) -> calls
        self._hits: dict[str, itertools.count[int]] = {}  # target -> one tick per cache hit
        self._lookups: dict[tuple[str, bool], int] = {}  # (target, hit) -> lookups counted in bulk

    @contextlib.contextmanager
    def counted(self, target: str, method: str) -> Iterator[None]:
        """Counts the call made inside the block, with the status code it ended with."""
        code = "OK"
        try:
            yield
        except grpc.RpcError as error:
            code = error.code().name if hasattr(error, "code") and error.code() is not None else "UNKNOWN"
            raise
        finally:
            with self._lock:
                self._calls[target, method, code] = self._calls.get((target, method, code), 0) + 1

    def hit(self, target: str) -> None:
        counter = self._hits.get(target)
        if counter is None:
            with self._lock:
                counter = self._hits.setdefault(target, itertools.count())
        next(counter)

    def lookups(self, target: str, hits: int, misses: int) -> None:
        with self._lock:
            self._lookups[target, True] = self._lookups.get((target, True), 0) + hits
            self._lookups[target, False] = self._lookups.get((target, False), 0) + misses

    def snapshot(self) -> tuple[dict[tuple[str, str, str], int], dict[tuple[str, bool], int]]:
        """(calls by target, method and code; lookups by target and hit or miss)."""
        with self._lock:
            lookups = dict(self._lookups)
            for target, counter in self._hits.items():
                ticks = int(repr(counter)[len("count(") : -1])  # the count's next value: the ticks so far
                lookups[target, True] = lookups.get((target, True), 0) + ticks
            return dict(self._calls), lookups

    def reset(self) -> None:
        self._lock = threading.Lock()
        self._calls = {}
        self._hits = {}
        self._lookups = {}


STATS = ClientStats()


def _forget_channels_after_fork() -> None:
    _channels.clear()  # the parent's channels belong to the parent; children open their own
    STATS.reset()  # and count their own calls


os.register_at_fork(after_in_child=_forget_channels_after_fork)


def shared_channel(target: str, credentials: grpc.ChannelCredentials | None = None) -> grpc.Channel:
    """This process's channel to ``target`` (one per process and target, made on first use)."""
    return _shared(target, credentials)[0]


def shared_stub(target: str, credentials: grpc.ChannelCredentials | None = None) -> pb_grpc.NasbenchStub:
    """The stub over this process's channel to ``target`` (see ``shared_channel``)."""
    return _shared(target, credentials)[1]


def _shared(target: str, credentials: grpc.ChannelCredentials | None) -> tuple[grpc.Channel, pb_grpc.NasbenchStub]:
    identity = (target, "tls" if credentials is not None else "insecure")
    shared = _channels.get(identity)  # a plain read: the lock is for making one
    if shared is not None:
        return shared
    with _channels_lock:
        shared = _channels.get(identity)
        if shared is None:
            options = channel_options()
            channel = (
                grpc.secure_channel(target, credentials, options=options)
                if credentials is not None
                else grpc.insecure_channel(target, options=options)
            )
            shared = _channels[identity] = (channel, pb_grpc.NasbenchStub(channel))
        return shared


def translate(error: grpc.RpcError, address: str) -> errors.NasbenchError:
    """The project's error for a gRPC error (the class the server named, else one by status code)."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = (error.details() if hasattr(error, "details") else None) or ""
    # The stubs type each entry as an object with .key/.value; they are (key, value) pairs (grpc.aio's too).
    metadata: dict[str, Any] = (
        dict(error.trailing_metadata() or ()) if hasattr(error, "trailing_metadata") else {}  # type: ignore[arg-type]
    )
    kind = _ERROR_CLASSES.get(metadata.get(_wire.ERROR_KIND_KEY, ""))
    if kind is not None:
        return kind(details)
    if code == grpc.StatusCode.NOT_FOUND:
        return errors.UnknownCellError(details)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return errors.ServiceUnavailableError(f"no nasbench server answered at {address} ({code.name}: {details})")
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return errors.RequestRejectedError(details)
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return errors.NotAuthorizedError(f"{address} refused the call: {details}")
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return errors.InvalidSpecError(details)
    return errors.RemoteError(f"{address}: {code.name}: {details}")


@contextlib.contextmanager
def map_rpc_errors(address: str) -> Iterator[None]:
    try:
        yield
    except grpc.RpcError as error:
        raise translate(error, address) from error


class RemoteBackend:
    """Cells from a server (see the module docstring)."""

    def __init__(
        self,
        address: str,
        *,
        timeout: float | None = None,
        cache_cells: int = DEFAULT_CACHE_CELLS,
        tls_ca: str | os.PathLike[str] | bytes | None = None,
        token: str | None = None,
    ) -> None:
        self.address = address
        self.target = grpc_target(address)
        self.timeout = timeout or DEFAULT_TIMEOUT_S
        self._credentials = channel_credentials(address, tls_ca)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None
        self._cache = CellCache(cache_cells)
        self._hashes: bytes | None = None  # every hash in file order, fetched once (16 bytes per cell)
        self._optima: dict[int, DatasetOptimum] | None = None
        info = self._call("GetInfo", pb.GetInfoRequest(), timeout=DEFAULT_CONNECT_TIMEOUT_S)
        self.info = info
        self.epochs: tuple[int, ...] = tuple(info.epochs)
        self._cells: int = info.cells
        self._batch_chunk = max(1, min(BATCH_CHUNK, info.max_batch or BATCH_CHUNK))

    @classmethod
    def connect(cls, address: str, **kwargs: Any) -> RemoteBackend:
        """Connect, checking a server answers (ServiceUnavailableError naming the address otherwise)."""
        return cls(address, **kwargs)

    @property
    def _stub(self) -> pb_grpc.NasbenchStub:
        return shared_stub(self.target, self._credentials)

    def _call(self, method: str, request: Any, timeout: float | None = None) -> Any:
        with map_rpc_errors(self.address), STATS.counted(self.target, method):
            return getattr(self._stub, method)(request, timeout=timeout or self.timeout, metadata=self._metadata)

    def __len__(self) -> int:
        return self._cells

    def _keep(self, message: pb.CellData) -> Cell:
        try:
            cell, digest = _wire.cell_of(message)
        except ValueError as exc:
            raise errors.RemoteError(f"{self.address} sent a malformed cell: {exc}") from None
        return self._cache.keep(cell, digest)

    def _fetch(self, ref: pb.CellRef) -> Cell | None:
        try:
            return self._keep(self._call("GetMetrics", pb.GetMetricsRequest(cell=ref)))
        except errors.UnknownCellError:
            return None

    def cell_by_key(self, key: int) -> Cell | None:
        cell = self._cache.by_key(key)
        if cell is not None:
            STATS.hit(self.target)
            return cell
        STATS.lookups(self.target, 0, 1)
        return self._fetch(pb.CellRef(key=key))

    def cell_by_hash(self, digest: bytes) -> Cell | None:
        cell = self._cache.by_digest(digest)
        if cell is not None:
            STATS.hit(self.target)
            return cell
        STATS.lookups(self.target, 0, 1)
        return self._fetch(pb.CellRef(hash=digest))

    def cells_by_keys(self, keys: Sequence[int]) -> list[Cell | None]:
        """Cached cells, plus the others fetched in chunks the server accepts; the answer is built from what was
        fetched (the cache may already have forgotten it)."""
        cells, chunks = self._cache.partition(keys, self._batch_chunk)
        STATS.lookups(self.target, len(cells), sum(map(len, chunks)))
        for chunk in chunks:
            response = self._call("QueryBatch", pb.QueryBatchRequest(keys=chunk))
            try:
                self._cache.keep_batch(chunk, response, cells)
            except ValueError as exc:
                raise errors.RemoteError(f"{self.address} sent a malformed batch answer: {exc}") from None
        return [cells.get(key) for key in keys]

    def hash_strings(self) -> Iterator[str]:
        """Every hash in file order: fetched once within the call deadline (6.8 MB for the whole space), then
        iterated locally, so a slow consumer never holds a stream open on the server."""
        if self._hashes is None:
            with map_rpc_errors(self.address), STATS.counted(self.target, "ListCells"):
                chunks = self._stub.ListCells(
                    pb.ListCellsRequest(chunk_size=65536), timeout=self.timeout, metadata=self._metadata
                )
                self._hashes = b"".join(chunk.hashes for chunk in chunks)
        hashes = self._hashes
        for start in range(0, len(hashes), 16 * 4096):
            yield from hex_digests(hashes[start : start + 16 * 4096])

    def sample(
        self,
        k: int,
        seed: int,
        *,
        num_vertices: Collection[int] | None = None,
        num_edges: Collection[int] | None = None,
        min_parameters: int | None = None,
        max_parameters: int | None = None,
        ops: Collection[str] | None = None,
    ) -> list[Cell]:
        request = _wire.sample_request(k, seed, num_vertices, num_edges, min_parameters, max_parameters, ops)
        return [self._keep(message) for message in self._call("Sample", request).cells]

    def neighbors(self, key: int) -> list[Cell]:
        response = self._call("Neighbors", pb.NeighborsRequest(cell=pb.CellRef(key=key)))
        return [self._keep(message) for message in response.cells]

    def optima(self) -> dict[int, DatasetOptimum]:
        """The server's answer (computed there once, from the data), kept: it never changes."""
        if self._optima is None:
            response = self._call("GetOptima", pb.GetOptimaRequest())
            self._optima = {
                best.epochs: DatasetOptimum(
                    best.epochs,
                    best.validation_accuracy,
                    best.validation_hash.hex(),
                    best.test_accuracy,
                    best.test_hash.hex(),
                )
                for best in response.optima
            }
        return self._optima

    def close(self) -> None:
        """Forget the cache; the process's shared channel stays for other users of the same server."""
        self._cache.clear()
        self._hashes = None
