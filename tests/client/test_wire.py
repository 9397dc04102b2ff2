"""The hand-made wire encodings of ``nasbench._backends.wire`` against protobuf's own encoder and decoder (the oracle),
and the column decoding of REPEAT_ALL batch answers."""

from __future__ import annotations

import numpy as np
import pytest

from nasbench._backends import wire as _wire
from nasbench._engine.engine import Cell
from nasbench._engine.filters import SampleFilter
from nasbench.v1 import nasbench_pb2 as pb


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 16383, 16384, 2**21 - 1, 2**21, 2**35 + 5, 2**63 + 1])
def test_varints_are_protobufs(value: int) -> None:
    """A uint64 field holding ``value`` is the tag byte and the varint: protobuf's encoding, byte for byte."""
    if value == 0:
        assert _wire._varint(0) == b"\x00"
        return
    encoded = pb.CellData(key=value).SerializeToString()
    assert encoded == b"\x08" + _wire._varint(value)


@pytest.mark.parametrize("size", [0, 1, 127, 128, 70_000])
def test_length_delimited_fields_are_protobufs(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    if size == 0:  # protobuf leaves an empty field out; written out empty, it parses the same
        assert b"".join(_wire.length_delimited(2, payload)) == b"\x12\x00"
        assert pb.CellData.FromString(b"".join(_wire.length_delimited(2, payload))) == pb.CellData()
        return
    assert b"".join(_wire.length_delimited(2, payload)) == pb.CellData(hash=payload).SerializeToString()
    assert b"".join(_wire.length_delimited(7, payload)) == pb.CellData(metrics=payload).SerializeToString()
    assert _wire.length_delimited(7, payload)[1] is payload  # the payload itself, never copied


def _cell(key: int, epochs: int = 2) -> pb.CellData:
    metrics = np.arange(epochs * 3 * 8, dtype=np.float64) + key
    return _wire.cell_data(Cell(key, key + 1, 1000 + key, metrics.reshape(epochs, 3, 8)), bytes([key]) * 16, [4, 108])


def test_cells_responses_parse_as_protobuf_messages() -> None:
    cells = [_cell(key) for key in (1, 200, 3)]
    encoded = _wire.cells_response(cells)
    assert isinstance(encoded, _wire.Encoded) and len(encoded.pieces) == 6
    parsed = pb.CellsResponse.FromString(encoded.SerializeToString())
    assert list(parsed.cells) == cells
    assert encoded.SerializeToString() == pb.CellsResponse(cells=cells).SerializeToString()
    assert _wire.cells_response([]).SerializeToString() == b""


def _batch(keys: list[int], found: list[bool], repeats: int = 3, values: int = 8) -> pb.QueryBatchResponse:
    epochs = [4, 108]
    count = len(keys)
    metrics = np.arange(count * len(epochs) * repeats * values, dtype="<f8")
    return pb.QueryBatchResponse(
        count=count,
        found=bytes(int(f) for f in found),
        keys=np.array(keys, dtype="<u8").tobytes(),
        representatives=(np.array(keys, dtype="<u8") * 10).tobytes(),
        trainable_parameters=(np.array(keys, dtype="<i4") + 7).tobytes(),
        epochs=epochs,
        repeats=repeats,
        values=values,
        metrics=metrics.tobytes(),
        hashes=b"".join(bytes([k % 256]) * 16 for k in keys),
    )


def test_batch_answers_become_cells_in_request_order() -> None:
    keys = [5, 9, 2]
    answer = _wire.batch_cells(_batch(keys, [True, False, True]), keys)
    assert answer[1] is None
    metrics = np.arange(3 * 2 * 3 * 8, dtype=np.float64).reshape(3, 2, 3, 8)
    for i in (0, 2):
        cell, digest = answer[i]
        assert (cell.key, cell.representative, cell.parameters, digest) == (
            keys[i],
            keys[i] * 10,
            keys[i] + 7,
            bytes([keys[i]]) * 16,
        )
        assert type(cell.representative) is int and type(cell.parameters) is int
        assert cell.metrics.shape == (2, 3, 8)
        np.testing.assert_array_equal(cell.metrics, metrics[i])
    assert _wire.batch_cells(_batch([], []), []) == []


@pytest.mark.parametrize(
    ("change", "sizes"),
    [
        pytest.param({"found": b"\x01\x01"}, "(2, 3, 3, 3, 144)", id="found"),
        pytest.param({"representatives": b"\0" * 16}, "(3, 2, 3, 3, 144)", id="representatives"),
        pytest.param({"trainable_parameters": b"\0" * 16}, "(3, 3, 4, 3, 144)", id="parameters"),
        pytest.param({"hashes": b"\0" * 32}, "(3, 3, 3, 2, 144)", id="hashes"),
        pytest.param({"hashes": b"\0" * 49}, "(3, 3, 3, 3, 144)", id="hashes-not-16"),
        pytest.param({"metrics": b"\0" * 8 * 143}, "(3, 3, 3, 3, 143)", id="metrics"),
        pytest.param({"repeats": 1}, "(3, 3, 3, 3, 144)", id="repeats"),
        pytest.param({"values": 4}, "(3, 3, 3, 3, 144)", id="values"),
    ],
)
def test_batch_answers_with_columns_of_the_wrong_size_are_refused(change: dict, sizes: str) -> None:
    response = _batch([5, 9, 2], [True, True, True])
    for field, value in change.items():
        setattr(response, field, value)
    with pytest.raises(ValueError) as info:
        _wire.batch_cells(response, [5, 9, 2])
    assert str(info.value) == f"a batch answer for 3 cells has columns of sizes {sizes}"


def test_batch_answers_of_one_repeat_and_four_values() -> None:
    keys = [1, 2]
    answer = _wire.batch_cells(_batch(keys, [True, True], repeats=1, values=4), keys)
    assert [cell.metrics.shape for cell, _ in answer] == [(2, 1, 4), (2, 1, 4)]
    assert answer[1][0].metrics[1, 0, 3] == 15.0


@pytest.mark.parametrize(
    "where",
    [
        SampleFilter(),
        SampleFilter(num_vertices=(5, 7), num_edges=(6,), min_parameters=0, max_parameters=0),
        SampleFilter(num_edges=(3, 9), min_parameters=1_000_000, ops=frozenset({"conv1x1-bn-relu", "maxpool3x3"})),
        SampleFilter(max_parameters=2_000_000, ops=frozenset({"conv3x3-bn-relu"})),
    ],
)
def test_a_sample_filter_crosses_the_wire_unchanged(where: SampleFilter) -> None:
    """What the server decodes is the filter the client sent: every criterion, bounds of 0 kept, unset ones None."""
    assert _wire.sample_filter(_wire.sample_request(3, 7, where)) == where
