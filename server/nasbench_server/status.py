"""The one table from NasbenchError to grpc.StatusCode, and the error kinds a client turns back into classes."""

from __future__ import annotations

import grpc

from nasbench import errors
from nasbench._backends import wire as _wire

# Most specific first: the first matching class decides the code.
STATUS_OF_ERROR: tuple[tuple[type[BaseException], grpc.StatusCode], ...] = (
    (errors.OutOfDomainError, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.InvalidSpecError, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.UnknownCellError, grpc.StatusCode.NOT_FOUND),
    (errors.RequestRejectedError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.StoreError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.ServiceUnavailableError, grpc.StatusCode.UNAVAILABLE),
    (errors.NotAuthorizedError, grpc.StatusCode.UNAUTHENTICATED),
    (errors.DatasetMismatchError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.NasbenchError, grpc.StatusCode.INTERNAL),
)
ERROR_KIND_KEY = _wire.ERROR_KIND_KEY


def status_of(error: BaseException) -> grpc.StatusCode:
    for kind, code in STATUS_OF_ERROR:
        if isinstance(error, kind):
            return code
    return grpc.StatusCode.INTERNAL


MAX_DETAILS = 1000  # characters of an error message sent back (messages may quote what the client sent)


def details_of(error: BaseException) -> str:
    """The message a client shows: the original message, or the missing hash/key for an absent cell; cut to
    MAX_DETAILS characters, so an error about a huge input never outgrows gRPC's metadata limits."""
    text = str(error.args[0]) if isinstance(error, errors.UnknownCellError) and error.args else str(error)
    if len(text) > MAX_DETAILS:
        text = f"{text[:MAX_DETAILS]}… ({len(text) - MAX_DETAILS:,} more characters)"
    return text
