"""The one way this package talks to a server: channel, authentication, retries, deadlines, errors, and the
dataset the client is pinned to. The sync client, the asyncio client, ``NASBench.columns`` and the benchmarks all
call through it.

- Addresses (``nasbench._backends.address``): ``grpc://host:port``, ``host:port``, comma-separated lists
  (round-robin across them), ``dns:///name:port`` (round-robin across its records), ``unix:/path``;
  ``grpcs://host:port`` for TLS (with ``tls_ca=`` for a private CA). ``token=`` sends
  ``authorization: Bearer <token>`` with every call.
- One synchronous channel per process, target and security, created on first use; a child process after ``fork``
  makes its own (a gRPC channel must not cross a fork). An asyncio transport owns a channel of its event loop.
- Calls wait for the server to be ready, retry UNAVAILABLE and CANCELLED with exponential backoff (gRPC's retry
  policy; every call is a read) and carry a deadline; a server restarted mid-run is reconnected to transparently.
- The dataset: once a client has read the server's identity (``pin``), every call carries it
  (``nasbench-dataset`` metadata), and a server holding another dataset refuses the call: a client never mixes
  answers of two datasets, whichever replica answers and however often the connection is made again.
- gRPC errors become the project's errors at one boundary (``translate``): never a raw ``grpc.RpcError``.
- Every call and cache lookup is counted per target in ``STATS``; ``nasbench.client_metrics`` exports them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc

from nasbench import errors
from nasbench._backends import wire
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
        errors.DatasetMismatchError,
    )
}


def grpc_target(address: str) -> str:
    """The gRPC target of a server address (see the module docstring)."""
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

# One channel per process, target and security, with its stub: making a stub builds a callable per method
# (about 90 µs), as much as a whole cache-missing query costs the client otherwise.
_channels: dict[tuple[str, str], tuple[grpc.Channel, pb_grpc.NasbenchStub]] = {}
_channels_lock = threading.Lock()
_generation = 0  # bumped in every child after fork: asyncio transports made before it refuse to work


def _after_fork_in_child() -> None:
    global _generation
    _channels.clear()  # the parent's channels belong to the parent; children open their own
    STATS.reset()  # and count their own calls
    _generation += 1


os.register_at_fork(after_in_child=_after_fork_in_child)


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
    kind = _ERROR_CLASSES.get(metadata.get(wire.ERROR_KIND_KEY, ""))
    if kind is errors.DatasetMismatchError:
        return kind(f"{address}: {details}")
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


class _Settings:
    """What a sync and an asyncio transport share: the address, security, deadlines and call metadata."""

    def __init__(
        self,
        address: str,
        *,
        token: str | None = None,
        tls_ca: str | os.PathLike[str] | bytes | None = None,
        timeout: float | None = None,
    ) -> None:
        self.address = address
        self.target = grpc_target(address)
        self.timeout = timeout or DEFAULT_TIMEOUT_S
        self.credentials = channel_credentials(address, tls_ca)
        self._auth: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {token}"),) if token else ()
        self.metadata: tuple[tuple[str, str], ...] | None = self._auth or None
        self.identity: str | None = None

    def pin(self, identity: str) -> None:
        """Pin the calls that follow to the dataset ``identity`` (a store checksum)."""
        self.identity = identity
        self.metadata = (*self._auth, (wire.DATASET_KEY, identity))


class Transport(_Settings):
    """Synchronous calls to one server address (see the module docstring)."""

    @property
    def stub(self) -> pb_grpc.NasbenchStub:
        return _shared(self.target, self.credentials)[1]

    @property
    def channel(self) -> grpc.Channel:
        return _shared(self.target, self.credentials)[0]

    def call(self, method: str, request: Any, timeout: float | None = None) -> Any:
        """One unary call; the project's error on failure."""
        with map_rpc_errors(self.address), STATS.counted(self.target, method):
            return getattr(self.stub, method)(request, timeout=timeout or self.timeout, metadata=self.metadata)

    def collect(self, method: str, request: Any) -> list[Any]:
        """Every message of a server-streaming call, read within the deadline (the stream is never left open)."""
        with map_rpc_errors(self.address), STATS.counted(self.target, method):
            return list(getattr(self.stub, method)(request, timeout=self.timeout, metadata=self.metadata))

    def stream(self, method: str, requests: Iterator[Any], timeout: float | None = None) -> Iterator[Any]:
        """The answers of a bidirectional stream fed from ``requests`` (the project's error on failure)."""
        with map_rpc_errors(self.address), STATS.counted(self.target, method):
            yield from getattr(self.stub, method)(requests, timeout=timeout or self.timeout, metadata=self.metadata)


class AsyncTransport(_Settings):
    """Calls from asyncio to one server address, over a channel of the event loop that made the transport.

    A channel belongs to its event loop and to its process: using the transport after ``close()``, from another
    event loop, or in a child after ``fork`` raises ``UsageError`` saying so.
    """

    def __init__(self, address: str, **settings: Any) -> None:
        super().__init__(address, **settings)
        self._loop = asyncio.get_running_loop()
        self._generation = _generation
        options = channel_options()
        self._channel = (
            grpc.aio.secure_channel(self.target, self.credentials, options=options)
            if self.credentials is not None
            else grpc.aio.insecure_channel(self.target, options=options)
        )
        self._stub = pb_grpc.NasbenchStub(self._channel)
        self._closed = False

    def _check_usable(self) -> None:
        if self._closed:
            raise errors.UsageError(f"this client of {self.address} was closed; connect again")
        if self._generation != _generation:
            raise errors.UsageError(
                f"this client of {self.address} was connected in the parent process; a gRPC channel cannot cross a "
                "fork: connect again in this process"
            )
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not self._loop:
            raise errors.UsageError(
                f"this client of {self.address} belongs to the event loop it was connected in; connect again inside "
                "the loop that uses it"
            )

    async def call(self, method: str, request: Any, timeout: float | None = None) -> Any:
        """One unary call; the project's error on failure."""
        self._check_usable()
        try:
            with STATS.counted(self.target, method):
                return await getattr(self._stub, method)(
                    request, timeout=timeout or self.timeout, metadata=self.metadata
                )
        except grpc.RpcError as error:
            raise translate(error, self.address) from error

    async def collect(self, method: str, request: Any) -> list[Any]:
        """Every message of a server-streaming call, read within the deadline."""
        self._check_usable()
        try:
            with STATS.counted(self.target, method):
                stream: AsyncIterator[Any] = getattr(self._stub, method)(
                    request, timeout=self.timeout, metadata=self.metadata
                )
                return [message async for message in stream]
        except grpc.RpcError as error:
            raise translate(error, self.address) from error

    async def stream(self, method: str, requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """The answers of a bidirectional stream fed from ``requests`` (the project's error on failure)."""
        self._check_usable()
        try:
            with STATS.counted(self.target, method):
                call = getattr(self._stub, method)(requests, timeout=self.timeout, metadata=self.metadata)
                async for answer in call:
                    yield answer
        except grpc.RpcError as error:
            raise translate(error, self.address) from error

    async def close(self) -> None:
        """Close the channel (idempotent; a fork's child only forgets it: the channel is the parent's)."""
        if not self._closed and self._generation == _generation:
            await self._channel.close()
        self._closed = True
