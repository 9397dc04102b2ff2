"""Protobuf messages <-> Python values, both directions, one function per message (client and server share it).

The hot path carries metrics as packed little-endian float64 bytes, so decoding is ``np.frombuffer``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nasbench._cells import codes
from nasbench._engine.answers import Repeat
from nasbench._engine.engine import Batch, Cell
from nasbench._engine.filters import SampleFilter
from nasbench._store.layout import METRIC_FIELDS, NUM_REPEATS
from nasbench.errors import InvalidSpecError
from nasbench.lib import config
from nasbench.v1 import nasbench_pb2 as pb

ERROR_KIND_KEY = "nasbench-error"  # trailing metadata: the error class name, so a client raises that class
# request metadata: the dataset (store checksum) a client is pinned to; a server holding another refuses the call
DATASET_KEY = "nasbench-dataset"
OP_OF_NAME = {
    config.CONV3X3: pb.CONV3X3_BN_RELU,
    config.CONV1X1: pb.CONV1X1_BN_RELU,
    config.MAXPOOL3X3: pb.MAXPOOL3X3,
}
NAME_OF_OP = {value: name for name, value in OP_OF_NAME.items()}
_VALUES = len(METRIC_FIELDS)


def cell_data(cell: Cell, digest: bytes, epochs: Sequence[int], into: pb.CellData | None = None) -> pb.CellData:
    """A Cell as a message (filled ``into`` a given one, e.g. a response's field, to spare a copy);
    ``cell.metrics`` must be float64[len(epochs), 3, 8]."""
    message = pb.CellData() if into is None else into
    message.key = cell.key
    message.hash = digest
    message.representative = cell.representative
    message.trainable_parameters = cell.parameters
    message.epochs.extend(epochs)
    message.repeats = NUM_REPEATS
    message.metrics = cell.metrics.tobytes()  # float64 rows of a little-endian store: already LE
    return message


class Encoded:
    """A message already encoded as pieces of its wire form, joined only when sent.

    Big answers are encoded field by field (and repeated messages element by element) instead of through one
    protobuf call over the whole message, which would hold the GIL for the whole encoding; concatenated fields
    are a valid encoding (protobuf parsers accept fields in any order and repeated fields piece by piece).
    """

    __slots__ = ("pieces",)

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces

    def SerializeToString(self) -> bytes:  # the protobuf method grpc calls to send a message
        return b"".join(self.pieces)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def length_delimited(field: int, payload: bytes) -> list[bytes]:
    """The wire pieces of one length-delimited field (bytes, string, or an encoded message)."""
    return [_varint(field << 3 | 2) + _varint(len(payload)), payload]


def cells_response(cells: Sequence[pb.CellData]) -> Encoded:
    """A CellsResponse of these cells, encoded cell by cell."""
    pieces: list[bytes] = []
    for cell in cells:
        pieces += length_delimited(1, cell.SerializeToString())
    return Encoded(pieces)


def cell_of(message: pb.CellData) -> tuple[Cell, bytes]:
    """``(Cell, digest)`` of a message; the metrics are a read-only view of the message's bytes.

    Raises:
      ValueError: the metrics do not hold ``len(epochs) * repeats * 8`` float64 values.
    """
    shape = (len(message.epochs), message.repeats, _VALUES)
    metrics = np.frombuffer(message.metrics, dtype="<f8")
    if metrics.size != shape[0] * shape[1] * shape[2]:
        raise ValueError(f"cell {message.key}: metrics hold {metrics.size} values, expected shape {shape}")
    return (
        Cell(message.key, message.representative, message.trainable_parameters, metrics.reshape(shape)),
        message.hash,
    )


def batch_cells(response: pb.QueryBatchResponse, keys: Sequence[int]) -> list[tuple[Cell, bytes] | None]:
    """``(Cell, digest)`` per requested key of a REPEAT_ALL batch answer (None where absent), request order.

    Raises:
      ValueError: the columns do not hold one entry per requested key.
    """
    count = len(keys)
    found = np.frombuffer(response.found, dtype=np.uint8)
    representatives = np.frombuffer(response.representatives, dtype="<u8")
    parameters = np.frombuffer(response.trainable_parameters, dtype="<i4")
    hashes = np.frombuffer(response.hashes, dtype=np.uint8)
    metrics = np.frombuffer(response.metrics, dtype="<f8")
    shape = (len(response.epochs), response.repeats, response.values)
    sizes = (len(found), len(representatives), len(parameters), len(hashes) // 16, metrics.size)
    if sizes != (count, count, count, count, count * shape[0] * shape[1] * shape[2]) or len(hashes) % 16:
        raise ValueError(f"a batch answer for {count} cells has columns of sizes {sizes}")
    metrics = metrics.reshape(count, *shape)
    hashes = hashes.reshape(count, 16)
    representative_list, parameter_list = representatives.tolist(), parameters.tolist()
    return [
        (Cell(key, representative_list[i], parameter_list[i], metrics[i]), hashes[i].tobytes()) if found[i] else None
        for i, key in enumerate(keys)
    ]


def batch_response(batch: Batch, count: int) -> Encoded:
    """A QueryBatchResponse of a batch answer, encoded column by column."""
    metrics = batch.metrics
    head = pb.QueryBatchResponse(count=count, epochs=batch.epochs, repeats=metrics.shape[2], values=metrics.shape[3])
    field = pb.QueryBatchResponse.DESCRIPTOR.fields_by_name
    pieces = [head.SerializeToString()]
    for name, column in (
        ("found", batch.found.astype(np.uint8)),
        ("keys", batch.keys),
        ("representatives", batch.representatives),
        ("trainable_parameters", batch.parameters),
        ("hashes", batch.hashes),
        ("metrics", metrics),  # C order; the store is little-endian
    ):
        pieces += length_delimited(field[name].number, column.tobytes())
    return Encoded(pieces)


def repeat_of(request: pb.QueryRequest | pb.QueryBatchRequest) -> Repeat:
    """The repeat policy of a request.

    Raises:
      InvalidSpecError: an unknown mode, or an index outside 0-2.
    """
    mode = request.repeat
    if mode == pb.REPEAT_ALL:
        return Repeat.all()
    if mode == pb.REPEAT_INDEX:
        return Repeat.at(request.repeat_index)
    if mode == pb.REPEAT_MEAN:
        return Repeat.mean()
    if mode == pb.REPEAT_HASHED:
        return Repeat.hashed(request.seed)
    raise InvalidSpecError(f"repeat has an unknown value {mode}")


def packed_spec(code: int) -> pb.PackedSpec:
    """The compact spec of a cell code."""
    num_vertices, bits, labels = codes.unpack(code)
    return pb.PackedSpec(
        num_vertices=num_vertices, edges=bits, ops=[OP_OF_NAME[config.AVAILABLE_OPS[label]] for label in labels]
    )


def sample_request(k: int, seed: int, where: SampleFilter) -> pb.SampleRequest:
    """The Sample request of ``k`` cells drawn with ``seed`` from those passing a filter.

    Raises:
      InvalidSpecError: a negative ``k`` (the server would refuse it too).
    """
    if k < 0:
        raise InvalidSpecError(f"k must be at least 0, got {k}")
    request = pb.SampleRequest(
        k=k,
        seed=seed % 2**64,
        num_vertices=list(where.num_vertices or ()),
        num_edges=list(where.num_edges or ()),
        ops=sorted(OP_OF_NAME[op] for op in where.ops or ()),
    )
    if where.min_parameters is not None:
        request.min_parameters = where.min_parameters
    if where.max_parameters is not None:
        request.max_parameters = where.max_parameters
    return request


def sample_filter(request: pb.SampleRequest) -> SampleFilter:
    """The filter of a Sample request.

    Raises:
      InvalidSpecError: an unknown op value.
    """
    unknown = [op for op in request.ops if op not in NAME_OF_OP]
    if unknown:
        raise InvalidSpecError(f"ops has an unknown op value {unknown[0]}")
    return SampleFilter(
        num_vertices=tuple(request.num_vertices) or None,
        num_edges=tuple(request.num_edges) or None,
        min_parameters=request.min_parameters if request.HasField("min_parameters") else None,
        max_parameters=request.max_parameters if request.HasField("max_parameters") else None,
        ops=frozenset(NAME_OF_OP[op] for op in request.ops) or None,
    )
