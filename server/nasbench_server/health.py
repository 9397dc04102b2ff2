"""``nasbench health``: exit 0 when a server reports SERVING on the standard gRPC health service.

The probe of every container and pod, run every few seconds in every replica, so it must start fast and stay
small: it asks ``grpc.health.v1.Health/Check`` over one HTTP/2 connection made with the ``h2`` protocol library
(pure Python, a few MB) instead of importing gRPC (about 100 ms and 30 MB of a fresh process). The request and
the answer are the protocol's own, byte for byte (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md,
``grpc/health/v1/health.proto``): a length-prefixed empty ``HealthCheckRequest``; a ``HealthCheckResponse`` whose
field 1 is the status, and the call's ``grpc-status`` in the trailers.
"""

from __future__ import annotations

import argparse
import os
import socket
from pathlib import Path
from typing import Any

from nasbench_server.endpoint import DEFAULT_PORT

_METHOD = "/grpc.health.v1.Health/Check"
_STATUSES = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}
# grpc-status codes by number (https://grpc.github.io/grpc/core/md_doc_statuscodes.html)
_CODES = (
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
)


def add_health_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Exit 0 if the server reports SERVING on the standard gRPC health service, 1 otherwise: for Docker "
        "HEALTHCHECK and Kubernetes exec probes. Health needs no token."
    )
    port = int(os.environ.get("NASBENCH_PORT", DEFAULT_PORT))
    parser.add_argument("--address", default=f"127.0.0.1:{port}", help="host:port (default 127.0.0.1:$NASBENCH_PORT)")
    parser.add_argument(
        "--tls-ca", type=Path, default=os.environ.get("NASBENCH_TLS_CA"), help="CA certificate for a TLS server"
    )
    parser.add_argument(
        "--tls-server-name",
        default=os.environ.get("NASBENCH_TLS_SERVER_NAME"),
        help="name the TLS certificate was issued for, if not the address's host",
    )
    parser.add_argument("--timeout", type=float, default=3.0)


class _Failed(Exception):
    """The probe got no health answer; ``code`` is the gRPC status name to print."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def check(address: str, timeout: float, tls_ca: Path | None = None, server_name: str | None = None) -> str:
    """The serving status the server at ``host:port`` reports (SERVING, NOT_SERVING, ...).

    Raises:
      _Failed: no answer (the status code name: UNAVAILABLE, DEADLINE_EXCEEDED, or the server's).
    """
    from h2.config import H2Configuration
    from h2.connection import H2Connection
    from h2.events import ConnectionTerminated, DataReceived, ResponseReceived, StreamEnded, TrailersReceived

    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    try:
        raw = socket.create_connection((host, int(port)), timeout=timeout)
    except TimeoutError:
        raise _Failed("DEADLINE_EXCEEDED") from None
    except (OSError, ValueError):
        raise _Failed("UNAVAILABLE") from None
    with raw:
        sock = _tls(raw, tls_ca, server_name or host) if tls_ca is not None else raw
        connection = H2Connection(config=H2Configuration(client_side=True, header_encoding="utf-8"))
        connection.initiate_connection()
        stream = connection.get_next_available_stream_id()
        scheme = "https" if tls_ca is not None else "http"
        headers = [(":method", "POST"), (":scheme", scheme), (":path", _METHOD), (":authority", address)]
        headers += [("content-type", "application/grpc"), ("te", "trailers")]
        connection.send_headers(stream, headers)
        connection.send_data(stream, b"\x00\x00\x00\x00\x00", end_stream=True)  # an empty HealthCheckRequest
        body, answered = b"", False
        trailers: dict[str, str] = {}  # response headers and trailers (header_encoding: h2 hands out str)
        try:
            sock.sendall(connection.data_to_send())
            while not answered:
                data = sock.recv(65536)
                if not data:
                    raise _Failed("UNAVAILABLE")
                events: list[Any] = connection.receive_data(data)
                for event in events:
                    if isinstance(event, DataReceived):
                        body += event.data
                        connection.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    elif isinstance(event, (ResponseReceived, TrailersReceived)):
                        trailers.update((str(name), str(value)) for name, value in event.headers or ())
                    elif isinstance(event, StreamEnded):
                        answered = True
                    elif isinstance(event, ConnectionTerminated):
                        raise _Failed("UNAVAILABLE")
                sock.sendall(connection.data_to_send())
        except TimeoutError:
            raise _Failed("DEADLINE_EXCEEDED") from None
        except OSError:
            raise _Failed("UNAVAILABLE") from None
    code = int(trailers.get("grpc-status", 2))
    if code != 0:
        raise _Failed(_CODES[code] if code < len(_CODES) else "UNKNOWN")
    return _STATUSES.get(_status_of(body[5:]), "UNKNOWN")


def _tls(raw: socket.socket, ca: Path, server_name: str) -> socket.socket:
    import ssl

    context = ssl.create_default_context(cafile=str(ca))
    context.set_alpn_protocols(["h2"])
    return context.wrap_socket(raw, server_hostname=server_name)


def _status_of(message: bytes) -> int:
    """Field 1 (a varint) of a HealthCheckResponse; 0 (UNKNOWN) when absent."""
    index = 0
    while index < len(message):
        tag, index = _varint(message, index)
        if tag == (1 << 3):  # field 1, wire type 0
            return _varint(message, index)[0]
        if tag & 7 == 0:
            index = _varint(message, index)[1]
        elif tag & 7 == 2:
            length, index = _varint(message, index)
            index += length
        else:
            break
    return 0


def _varint(data: bytes, index: int) -> tuple[int, int]:
    value, shift = 0, 0
    while index < len(data):
        byte = data[index]
        index += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, index
        shift += 7
    return value, index


def run_health(args: argparse.Namespace) -> int:
    try:
        status = check(args.address, args.timeout, args.tls_ca, args.tls_server_name)
    except _Failed as failed:
        print(f"{args.address}: {failed.code}")
        return 1
    print(f"{args.address}: {status}")
    return 0 if status == "SERVING" else 1


COMMANDS = {"health": (add_health_arguments, run_health)}
