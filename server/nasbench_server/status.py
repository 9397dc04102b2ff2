"""The one table from NasbenchError to grpc.StatusCode, and the error kinds a client turns back into classes."""

from __future__ import annotations

import grpc

from nasbench import _wire, errors

# Most specific first: the first matching class decides the code.
STATUS_OF_ERROR: tuple[tuple[type[BaseException], grpc.StatusCode], ...] = (
    (errors.OutOfDomainError, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.InvalidSpecError, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.UnknownCellError, grpc.StatusCode.NOT_FOUND),
    (errors.RequestRejectedError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.StoreError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.ServiceUnavailableError, grpc.StatusCode.UNAVAILABLE),
    (errors.NotAuthorizedError, grpc.StatusCode.UNAUTHENTICATED),
    (errors.NasbenchError, grpc.StatusCode.INTERNAL),
)
ERROR_KIND_KEY = _wire.ERROR_KIND_KEY


def status_of(error: BaseException) -> grpc.StatusCode:
    for kind, code in STATUS_OF_ERROR:
        if isinstance(error, kind):
            return code
    return grpc.StatusCode.INTERNAL


def details_of(error: BaseException) -> str:
    """The message a client shows: the original message, or the missing hash/key for an absent cell."""
    if isinstance(error, errors.UnknownCellError) and error.args:
        return str(error.args[0])
    return str(error)
