"""TFRecord framing: CRC-32C and its mask, round trips, and every way a file can be broken."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from nasbench.errors import SourceError
from nasbench_builder import tfrecord

# CRC-32C test vectors of RFC 3720 (iSCSI), appendix B.4, as the big-endian value of the CRC.
_ISCSI_READ_PDU = bytes.fromhex(
    "01c000000000000000000000000000001400000000000400000000140000001828000000000000000200000000000000"
)
RFC_3720_VECTORS = [
    pytest.param(bytes(32), 0x8A9136AA, id="32-zeros"),
    pytest.param(b"\xff" * 32, 0x62A8AB43, id="32-ones"),
    pytest.param(bytes(range(32)), 0x46DD794E, id="incrementing"),
    pytest.param(bytes(range(31, -1, -1)), 0x113FDB5C, id="decrementing"),
    pytest.param(_ISCSI_READ_PDU, 0xD9963A56, id="iscsi-read-pdu"),
    pytest.param(b"123456789", 0xE3069283, id="check-value"),
]


@pytest.mark.parametrize(("data", "crc"), RFC_3720_VECTORS)
def test_masked_crc_of_published_crc32c_vectors(data: bytes, crc: int) -> None:
    """The CRC under the mask is CRC-32C (RFC 3720 B.4 vectors); the mask is TensorFlow's rotation plus delta,
    here written out by hand for each published value."""
    rotated = ((crc >> 15) | (crc << 17)) & 0xFFFFFFFF
    assert tfrecord.masked_crc(data) == (rotated + 0xA282EAD8) & 0xFFFFFFFF
    assert tfrecord.masked_crc(memoryview(data)) == tfrecord.masked_crc(data)


def test_masked_crc_of_a_record_written_by_tensorflow() -> None:
    """A masked CRC taken from a real TensorFlow event file (TensorBoard's data server pins the same value:
    the record of ``Event(file_version=b"CRC test, one two")``)."""
    assert tfrecord.masked_crc(b"\x1a\x11CRC test, one two") == 0x5794D08A
    assert tfrecord.masked_crc(b"") == 0xA282EAD8  # CRC-32C of nothing is 0: the mask is the delta alone


# Two framed records of an event file written by TensorFlow (``tf.summary.scalar("accuracy", 0.99, step=77)``,
# dumped with xxd; the bytes TensorBoard's data server tests read): a 24-byte and a 50-byte record.
TENSORFLOW_RECORDS = [
    b"\x09\x00\x00\x80\x38\x99\xd6\xd7\x41\x1a\x0dbrain.Event:2",
    b"\x09\xc4\x05\xb7\x3d\x99\xd6\xd7\x41\x10\x4d\x2a\x25\x0a\x23\x0a\x08accuracy"
    b"\x42\x0a\x08\x01\x12\x00\x22\x04\xa4\x70\x7d\x3f\x4a\x0b\x0a\x09\x0a\x07scalars",
]
TENSORFLOW_FILE = (
    b"\x18\x00\x00\x00\x00\x00\x00\x00"
    + b"\xa3\x7f\x4b\x22"
    + TENSORFLOW_RECORDS[0]
    + b"\x12\x4b\x36\xab"
    + b"\x32\x00\x00\x00\x00\x00\x00\x00"
    + b"\x24\x19\x56\xec"
    + TENSORFLOW_RECORDS[1]
    + b"\xa5\x5b\x64\x33"
)


def test_reads_a_file_written_by_tensorflow(tmp_path: Path) -> None:
    path = tmp_path / "events.tfrecord"
    path.write_bytes(TENSORFLOW_FILE)
    assert list(tfrecord.read_records(path)) == [(0, 0, TENSORFLOW_RECORDS[0]), (1, 40, TENSORFLOW_RECORDS[1])]


def test_writes_what_tensorflow_writes(tmp_path: Path) -> None:
    """Byte for byte: the framing of the same payloads equals TensorFlow's file."""
    assert tfrecord.frame(TENSORFLOW_RECORDS[0]) + tfrecord.frame(TENSORFLOW_RECORDS[1]) == TENSORFLOW_FILE
    path = tmp_path / "written.tfrecord"
    with tfrecord.TFRecordWriter(path) as writer:
        writer.write(TENSORFLOW_RECORDS[0])
        writer.write(TENSORFLOW_RECORDS[1])
        assert writer.count == 2
        writer.write_many([])
        writer.write_many(TENSORFLOW_RECORDS)
        assert writer.count == 4
    assert path.read_bytes() == TENSORFLOW_FILE * 2


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
        pytest.param(
            lambda b, o: b[: o[2] + 5],
            "truncated file: the record at byte {o2} lacks its 12-byte header (file size {size})",
            2,
            id="cut-in-header",
        ),
        pytest.param(
            lambda b, o: b[: o[2] + 12],
            "truncated file: the record at byte {o2} lacks 30 bytes of data and the data CRC (file size {size})",
            2,
            id="cut-after-header",
        ),
        pytest.param(  # the header alone, read by the first refill of the buffer: what is missing is the data
            lambda b, o: b[:12],
            "truncated file: the record at byte 0 lacks 30 bytes of data and the data CRC (file size {size})",
            0,
            id="header-only-file",
        ),
        pytest.param(
            lambda b, o: b[: o[2] + 20],
            "truncated file: the record at byte {o2} lacks 30 bytes of data and the data CRC (file size {size})",
            2,
            id="cut-in-data",
        ),
        pytest.param(
            lambda b, o: b[:-1],
            "truncated file: the record at byte {o3} lacks 30 bytes of data and the data CRC (file size {size})",
            3,
            id="cut-in-footer",
        ),
        pytest.param(lambda b, o: _flip(b, o[1] + 13), "CRC mismatch in the data at byte {o1}", 1, id="flip-data"),
        pytest.param(
            lambda b, o: _flip(b, o[3] + 2), "CRC mismatch in the length header at byte {o3}", 3, id="flip-length"
        ),
        pytest.param(
            lambda b, o: _flip(b, o[2] + 9), "CRC mismatch in the length header at byte {o2}", 2, id="flip-length-crc"
        ),
        pytest.param(
            lambda b, o: _flip(b, o[1] + 12 + 30 + 1), "CRC mismatch in the data at byte {o1}", 1, id="flip-data-crc"
        ),
    ],
)
def test_broken_files_name_the_file_the_record_and_the_byte(tmp_path: Path, damage, message: str, record: int) -> None:
    path = _write(tmp_path / "c.tfrecord", [b"y" * 30] * 4)
    offsets = [o for _, o, _ in tfrecord.read_records(path)]
    assert offsets == [0, 46, 92, 138]
    path.write_bytes(damage(path.read_bytes(), offsets))
    with pytest.raises(SourceError) as info:
        list(tfrecord.read_records(path))
    expected = message.format(o1=offsets[1], o2=offsets[2], o3=offsets[3], size=path.stat().st_size)
    assert (info.value.path, info.value.record, info.value.reason) == (str(path), record, expected)
    assert str(info.value) == f"{path}: record {record}: {expected}"


def _header(length: int) -> bytes:
    encoded = struct.pack("<Q", length)
    return encoded + struct.pack("<I", tfrecord.masked_crc(encoded))


def test_impossible_length_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "d.tfrecord"
    path.write_bytes(tfrecord.frame(b"ok") + _header(1 << 40) + b"z" * 10)
    with pytest.raises(SourceError) as info:
        list(tfrecord.read_records(path))
    assert str(info.value) == f"{path}: record 1: impossible record length {1 << 40} at byte 18"
    assert (info.value.path, info.value.record) == (str(path), 1)


def test_the_largest_possible_length_is_not_impossible(tmp_path: Path) -> None:
    """A length of exactly MAX_RECORD_SIZE (64 MiB) is read (here: found truncated); one more byte is not."""
    path = tmp_path / "e.tfrecord"
    path.write_bytes(_header(tfrecord.MAX_RECORD_SIZE) + b"z" * 10)
    with pytest.raises(SourceError, match=f"lacks {64 << 20} bytes of data"):
        list(tfrecord.read_records(path))
    path.write_bytes(_header(tfrecord.MAX_RECORD_SIZE + 1) + b"z" * 10)
    with pytest.raises(SourceError, match=f"impossible record length {(64 << 20) + 1} at byte 0"):
        list(tfrecord.read_records(path))


def test_find_boundary_at_the_edges_of_its_window(tmp_path: Path) -> None:
    """A record ending exactly at the window's end is found; one ending past it, or a header whose record
    cannot fit, gives None; fewer than 12 bytes left give None (no struct error)."""
    record = tfrecord.frame(b"p" * 20)  # 36 bytes
    path = _write(tmp_path / "f.tfrecord", [b"p" * 20] * 2)
    assert tfrecord.find_boundary(path, 0, limit=len(record) - 12) == 0  # window = exactly the first record
    assert tfrecord.find_boundary(path, 0, limit=len(record) - 14) is None  # the record ends 2 bytes past it
    assert tfrecord.find_boundary(path, 1, limit=1000) == len(record)
    assert tfrecord.find_boundary(path, 2 * len(record) - 5, limit=1000) is None
    claimed = tmp_path / "g.tfrecord"
    claimed.write_bytes(_header(tfrecord.MAX_RECORD_SIZE) + record)
    assert tfrecord.find_boundary(claimed, 0) is None  # a valid header of a record too long for the window


def _flip(data: bytes, position: int) -> bytes:
    return data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1 :]


def test_reading_uses_fixed_blocks(tmp_path: Path, monkeypatch) -> None:
    """Memory stays constant however large the file: it is read in 8 MiB blocks, never whole."""
    path = _write(tmp_path / "h.tfrecord", [bytes(range(256)) * 20000] * 3)  # 15 MB
    sizes: list[int | None] = []

    class Spy:
        def __init__(self, handle) -> None:
            self._handle = handle

        def read(self, size=None):
            sizes.append(size)
            return self._handle.read(size)

        def __getattr__(self, name):
            return getattr(self._handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._handle.close()

    monkeypatch.setattr(tfrecord, "open", lambda *args: Spy(open(*args)), raising=False)  # noqa: SIM115
    assert [len(payload) for _, _, payload in tfrecord.read_records(path)] == [5_120_000] * 3
    assert sizes and set(sizes) == {8 << 20}
