"""The one table from the project's errors to gRPC status codes, and the wire helpers both sides share: every
error class has its documented code, a client turns each code back into the right class, and malformed wire
values are refused with a message."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from nasbench import errors
from nasbench._backends import wire as _wire
from nasbench._backends.transport import translate
from nasbench._engine.engine import Cell
from nasbench._engine.filters import SampleFilter
from nasbench.v1 import nasbench_pb2 as pb
from nasbench_server import status

# docs/compatibility.md, "Errors": the documented code of every error class
CODES = {
    errors.OutOfDomainError: "INVALID_ARGUMENT",
    errors.TooManyVerticesError: "INVALID_ARGUMENT",
    errors.InvalidSpecError: "INVALID_ARGUMENT",
    errors.UnknownCellError: "NOT_FOUND",
    errors.RequestRejectedError: "RESOURCE_EXHAUSTED",
    errors.StoreError: "FAILED_PRECONDITION",
    errors.StoreNotFoundError: "FAILED_PRECONDITION",
    errors.StoreSchemaError: "FAILED_PRECONDITION",
    errors.StoreCorruptError: "FAILED_PRECONDITION",
    errors.ServiceUnavailableError: "UNAVAILABLE",
    errors.NotAuthorizedError: "UNAUTHENTICATED",
    errors.DatasetMismatchError: "FAILED_PRECONDITION",
    errors.UsageError: "INTERNAL",  # raised by clients only
    errors.SourceError: "INTERNAL",
    errors.DownloadError: "INTERNAL",
    errors.CifarError: "INTERNAL",
    errors.ConfigurationError: "INTERNAL",
    errors.RemoteError: "INTERNAL",
    errors.NasbenchError: "INTERNAL",
}


def _all_error_classes() -> set[type]:
    found, todo = set(), [errors.NasbenchError]
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo += cls.__subclasses__()
    return {cls for cls in found if getattr(errors, cls.__name__, None) is cls}  # OutOfDomainError: nasbench.api


def test_every_error_class_has_its_code() -> None:
    assert _all_error_classes() == set(CODES)
    for cls, code in CODES.items():
        error = cls("x") if cls is not errors.SourceError else cls("x", path="p", record=1)
        assert status.status_of(error) == getattr(grpc.StatusCode, code), cls
    assert status.status_of(ValueError("not ours")) == grpc.StatusCode.INTERNAL


def test_details() -> None:
    """An absent cell's details are its hash (or key) alone, as the original's KeyError args; others the message."""
    assert status.details_of(errors.UnknownCellError("28cfc7874f6d200472e1a9dcd8650aa0")) == (
        "28cfc7874f6d200472e1a9dcd8650aa0"
    )
    assert status.details_of(errors.UnknownCellError(12345)) == "12345"
    assert status.details_of(errors.UnknownCellError()) == ""
    assert status.details_of(errors.OutOfDomainError("too many edges")) == "too many edges"


def test_details_are_cut_past_the_maximum() -> None:
    exact = "x" * status.MAX_DETAILS
    assert status.details_of(errors.OutOfDomainError(exact)) == exact
    longer = "y" * (status.MAX_DETAILS + 1234)
    cut = status.details_of(errors.OutOfDomainError(longer))
    assert cut == "y" * status.MAX_DETAILS + "… (1,234 more characters)"


class _RpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str, kind: str | None = None) -> None:
        self._code, self._details = code, details
        self._metadata = ((_wire.ERROR_KIND_KEY, kind),) if kind else ()

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self):
        return self._metadata


@pytest.mark.parametrize("cls", sorted(CODES, key=lambda cls: cls.__name__))
def test_a_client_gets_back_the_class_the_server_named(cls: type) -> None:
    """What the servicer sends (code, details, kind) turns back into the same class with the same message, for
    every class a server can name; others by their code."""
    error = cls("x") if cls is not errors.SourceError else cls("x", path="p", record=1)
    sent = _RpcError(status.status_of(error), status.details_of(error), cls.__name__)
    received = translate(sent, "grpc://h:1")
    nameable = {"OutOfDomainError", "TooManyVerticesError", "InvalidSpecError", "UnknownCellError"}
    nameable |= {"RequestRejectedError", "StoreError"}
    if cls.__name__ in nameable:
        assert type(received) is cls and received.args == error.args
    else:
        assert isinstance(received, errors.RemoteError)


@pytest.mark.parametrize(
    ("code", "cls", "message"),
    [
        ("NOT_FOUND", errors.UnknownCellError, "abc"),
        ("UNAVAILABLE", errors.ServiceUnavailableError, "no nasbench server answered at grpc://h:1 (UNAVAILABLE: abc)"),
        (
            "DEADLINE_EXCEEDED",
            errors.ServiceUnavailableError,
            "no nasbench server answered at grpc://h:1 (DEADLINE_EXCEEDED: abc)",
        ),
        ("RESOURCE_EXHAUSTED", errors.RequestRejectedError, "abc"),
        ("UNAUTHENTICATED", errors.NotAuthorizedError, "grpc://h:1 refused the call: abc"),
        ("PERMISSION_DENIED", errors.NotAuthorizedError, "grpc://h:1 refused the call: abc"),
        ("INVALID_ARGUMENT", errors.InvalidSpecError, "abc"),
        ("DATA_LOSS", errors.RemoteError, "grpc://h:1: DATA_LOSS: abc"),
    ],
)
def test_codes_without_a_kind(code: str, cls: type, message: str) -> None:
    received = translate(_RpcError(getattr(grpc.StatusCode, code), "abc"), "grpc://h:1")
    assert type(received) is cls
    assert (received.args[0] if cls is errors.UnknownCellError else str(received)) == message


def test_a_cell_travels_both_ways() -> None:
    metrics = np.arange(2 * 3 * 8, dtype=np.float64).reshape(2, 3, 8)
    cell = Cell(key=123, representative=456, parameters=789, metrics=metrics)
    message = _wire.cell_data(cell, b"\x01" * 16, [4, 108])
    assert (message.key, message.representative, message.trainable_parameters) == (123, 456, 789)
    assert (list(message.epochs), message.repeats, message.hash) == ([4, 108], 3, b"\x01" * 16)
    back, digest = _wire.cell_of(pb.CellData.FromString(message.SerializeToString()))
    assert (back.key, back.representative, back.parameters, digest) == (123, 456, 789, b"\x01" * 16)
    np.testing.assert_array_equal(back.metrics, metrics)
    into = pb.QueryResponse()
    assert _wire.cell_data(cell, b"\x02" * 16, [4, 108], into=into.cell) is into.cell and into.cell.key == 123


def test_a_cell_with_the_wrong_number_of_values_is_refused() -> None:
    message = pb.CellData(key=5, epochs=[4, 108], repeats=3, metrics=np.zeros(47).tobytes())
    with pytest.raises(ValueError) as info:
        _wire.cell_of(message)
    assert str(info.value) == "cell 5: metrics hold 47 values, expected shape (2, 3, 8)"


def test_packed_specs() -> None:
    from nasbench import canonical

    code = canonical.pack(5, 0b1001011011, (0, 2, 1))
    packed = _wire.packed_spec(code)
    assert (packed.num_vertices, packed.edges, list(packed.ops)) == (
        5,
        0b1001011011,
        [pb.CONV3X3_BN_RELU, pb.MAXPOOL3X3, pb.CONV1X1_BN_RELU],
    )


def test_sample_requests() -> None:
    where = SampleFilter.of(num_vertices=[5, 6], num_edges=[4], min_parameters=0, max_parameters=10, ops=["maxpool3x3"])
    request = _wire.sample_request(7, -1, where)
    assert (request.k, request.seed, list(request.num_vertices), list(request.num_edges)) == (7, 2**64 - 1, [5, 6], [4])
    assert request.HasField("min_parameters") and request.min_parameters == 0 and request.max_parameters == 10
    assert list(request.ops) == [pb.MAXPOOL3X3]
    bare = _wire.sample_request(0, 5, SampleFilter())
    assert not bare.HasField("min_parameters") and not bare.HasField("max_parameters") and bare.seed == 5
    assert list(bare.ops) == list(bare.num_vertices) == []
    with pytest.raises(errors.InvalidSpecError) as info:
        _wire.sample_request(-1, 0, SampleFilter())
    assert str(info.value) == "k must be at least 0, got -1"
    with pytest.raises(errors.InvalidSpecError) as info:
        SampleFilter.of(ops=["maxpool3x3", "conv9x9", "avgpool"])
    assert str(info.value) == (
        "unknown op 'avgpool' (available ops = ['conv3x3-bn-relu', 'conv1x1-bn-relu', 'maxpool3x3'])"
    )
