"""Who may talk to a server: loopback by default; beyond it, TLS and/or a shared bearer token, or an explicit
``--insecure``. The token is checked on every RPC except ``grpc.health.v1.Health`` (probes carry no token)."""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any, NoReturn

import grpc

from nasbench.errors import ConfigurationError
from nasbench_server.config import ServerConfig

_OPEN_METHODS = "/grpc.health.v1.Health/"
MAX_TOKEN_CHARS = 4096  # gRPC refuses request metadata past 8 KB by default (max_metadata_size), all headers together
TOKEN_RULE = (
    f"a token is 1 to {MAX_TOKEN_CHARS:,} visible ASCII characters (letters, digits, punctuation; no spaces or "
    "control characters)"
)


def is_loopback(host: str) -> bool:
    """True for loopback addresses, ``localhost`` and unix sockets (reachable only from this machine)."""
    if host.startswith("unix:") or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(config: ServerConfig) -> None:
    """Refuse to serve beyond loopback without TLS or a token, unless ``insecure`` says so explicitly.

    Raises:
      ConfigurationError: naming the address and the ways out.
    """
    if is_loopback(config.host) or config.insecure or config.token or (config.tls_cert and config.tls_key):
        return
    raise ConfigurationError(
        f"refusing to serve on {config.host} (beyond loopback) without protection: give a token "
        "(--token-file or NASBENCH_TOKEN), TLS (--tls-cert and --tls-key), or pass --insecure explicitly"
    )


def check_token(token: str, where: str) -> str:
    """The token, if gRPC metadata can carry it in ``authorization: Bearer <token>`` (RFC 6750): visible ASCII
    (RFC 5234 VCHAR), within the metadata size limit. Anything else would start a server whose every call fails
    INTERNAL ('Invalid metadata') or is refused for its size.

    Raises:
      ConfigurationError: naming ``where`` the token came from, the first offending character (never the token
        itself) and the rule.
    """
    bad = next((i for i, char in enumerate(token) if not "!" <= char <= "~"), None)
    if bad is not None:
        invalid_token(where, f"character {bad + 1} is U+{ord(token[bad]):04X}")
    if not token or len(token) > MAX_TOKEN_CHARS:
        invalid_token(where, f"it has {len(token):,} characters")
    return token


def invalid_token(where: str, problem: str) -> NoReturn:
    raise ConfigurationError(f"{where} is not a valid token: {problem}; {TOKEN_RULE}")


def server_credentials(config: ServerConfig) -> grpc.ServerCredentials | None:
    if not (config.tls_cert and config.tls_key):
        return None
    return grpc.ssl_server_credentials([(config.tls_key.read_bytes(), config.tls_cert.read_bytes())])


class TokenInterceptor(grpc.aio.ServerInterceptor):
    """Answers UNAUTHENTICATED unless the call carries ``authorization: Bearer <token>`` (compared in constant
    time)."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {check_token(token, 'the server token')}".encode()

    async def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(details)
        if handler is None or details.method.startswith(_OPEN_METHODS):
            return handler
        supplied = dict(details.invocation_metadata or ()).get("authorization", "")
        if isinstance(supplied, str) and hmac.compare_digest(supplied.encode(), self._expected):
            return handler
        return _REFUSAL


async def _refuse(requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    await context.abort(
        grpc.StatusCode.UNAUTHENTICATED, "missing or wrong token: send the metadata 'authorization: Bearer <token>'"
    )


# Refuses the call before reading anything of it: a request-streaming handler whatever the method's kind, so gRPC
# never buffers an unauthenticated request message (up to the message limit).
_REFUSAL: grpc.RpcMethodHandler[Any, Any] = grpc.stream_stream_rpc_method_handler(_refuse)
