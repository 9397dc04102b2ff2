"""TFRecord framing: CRC-32C and its mask, round trips, and every way a file can be broken."""

from __future__ import annotations

import struct
from pathlib import Path

import google_crc32c
import pytest

from nasbench.errors import SourceError
from nasbench_builder import tfrecord


def test_crc32c_check_value_and_mask() -> None:
    """CRC-32C of '123456789' is 0xE3069283; the mask of CRC 0 is the mask delta."""
    assert google_crc32c.value(b"123456789") == 0xE3069283
    assert tfrecord.masked_crc(b"") == 0xA282EAD8
    crc = 0xE3069283
    assert tfrecord.masked_crc(b"123456789") == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def test_frame_layout() -> None:
    framed = tfrecord.frame(b"abc")
    length, length_crc = struct.unpack("<QI", framed[:12])
    assert length == 3 and length_crc == tfrecord.masked_crc(framed[:8])
    assert framed[12:15] == b"abc"
    assert struct.unpack("<I", framed[15:])[0] == tfrecord.masked_crc(b"abc")


def _write(path: Path, payloads: list[bytes]) -> Path:
    with tfrecord.TFRecordWriter(path) as writer:
        writer.write_many(payloads)
    return path


def test_round_trip_with_offsets(tmp_path: Path) -> None:
    payloads = [b"x" * n for n in (0, 1, 100, 5000)] + [bytes(range(256)) * 40000]  # one crosses the 8 MiB block
    path = _write(tmp_path / "a.tfrecord", payloads)
    read = list(tfrecord.read_records(path))
    assert [p for _, _, p in read] == payloads
    assert [i for i, _, _ in read] == list(range(len(payloads)))
    offsets = [o for _, o, _ in read]
    assert offsets[0] == 0 and offsets[1] == 16
    assert [p for _, _, p in tfrecord.read_records(path, start=offsets[2], stop=offsets[3] + 1)] == payloads[2:4]


def test_find_boundary(tmp_path: Path) -> None:
    payloads = [b'["%032d", 108]' % i for i in range(200)]
    path = _write(tmp_path / "b.tfrecord", payloads)
    offsets = [o for _, o, _ in tfrecord.read_records(path)]
    assert tfrecord.find_boundary(path, 0) == 0
    assert tfrecord.find_boundary(path, offsets[10] + 1) == offsets[11]
    assert tfrecord.find_boundary(path, offsets[-1] + 1) is None


@pytest.mark.parametrize(
    ("damage", "message", "record"),
    [
        pytest.param(lambda b, o: b[: o[2] + 5], "truncated file: the record at byte", 2, id="cut-in-header"),
        pytest.param(lambda b, o: b[: o[2] + 20], "truncated file: the record at byte", 2, id="cut-in-data"),
        pytest.param(lambda b, o: b[:-1], "truncated file", 3, id="cut-in-footer"),
        pytest.param(lambda b, o: _flip(b, o[1] + 13), "CRC mismatch in the data", 1, id="flip-data"),
        pytest.param(lambda b, o: _flip(b, o[3] + 2), "CRC mismatch in the length header", 3, id="flip-length"),
        pytest.param(lambda b, o: _flip(b, o[2] + 9), "CRC mismatch in the length header", 2, id="flip-length-crc"),
        pytest.param(lambda b, o: _flip(b, o[1] + 12 + 30 + 1), "CRC mismatch in the data", 1, id="flip-data-crc"),
    ],
)
def test_broken_files_name_the_record(tmp_path: Path, damage, message: str, record: int) -> None:
    path = _write(tmp_path / "c.tfrecord", [b"y" * 30] * 4)
    offsets = [o for _, o, _ in tfrecord.read_records(path)]
    path.write_bytes(damage(path.read_bytes(), offsets))
    with pytest.raises(SourceError, match=message) as info:
        list(tfrecord.read_records(path))
    assert info.value.record == record
    assert f"record {record}" in str(info.value)


def test_impossible_length_is_reported(tmp_path: Path) -> None:
    length = struct.pack("<Q", 1 << 40)
    path = tmp_path / "d.tfrecord"
    path.write_bytes(length + struct.pack("<I", tfrecord.masked_crc(length)) + b"z" * 10)
    with pytest.raises(SourceError, match="impossible record length"):
        list(tfrecord.read_records(path))


def _flip(data: bytes, position: int) -> bytes:
    return data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1 :]
