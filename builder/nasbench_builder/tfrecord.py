"""TFRecord framing without TensorFlow: reading with both CRCs verified, writing, and splitting for workers.

Each record is ``uint64 length`` (little-endian), ``uint32 masked_crc32c(length bytes)``, ``length`` bytes of
data, ``uint32 masked_crc32c(data)``; the mask is ``((crc >> 15) | (crc << 17)) + 0xa282ead8`` mod 2**32 and
CRC-32C is the Castagnoli polynomial (TensorFlow's ``tensorflow/core/lib/io/record_writer.cc``).

Usage::

    from nasbench_builder import tfrecord
    with tfrecord.TFRecordWriter("out.tfrecord") as writer:
        writer.write(b"payload")
    for index, offset, payload in tfrecord.read_records("out.tfrecord"):
        ...
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import google_crc32c

from nasbench.errors import SourceError

HEADER_SIZE = 12  # uint64 length + uint32 masked CRC of the length
FOOTER_SIZE = 4  # uint32 masked CRC of the data
_MASK_DELTA = 0xA282EAD8
_LENGTH = struct.Struct("<Q")
_CRC = struct.Struct("<I")
_HEADER = struct.Struct("<QI")
_READ_SIZE = 8 << 20
# A record longer than this is taken as a corrupt length field (the real records are well under 1 KiB).
MAX_RECORD_SIZE = 64 << 20


def masked_crc(data: bytes | memoryview) -> int:
    """The masked CRC-32C that TFRecord stores after the length and after the data."""
    crc: int = google_crc32c.value(bytes(data) if isinstance(data, memoryview) else data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame(payload: bytes) -> bytes:
    """One record, framed: header, payload, footer."""
    length = _LENGTH.pack(len(payload))
    return length + _CRC.pack(masked_crc(length)) + payload + _CRC.pack(masked_crc(payload))


class TFRecordWriter:
    """Appends framed records to a file (buffered); use as a context manager."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._handle: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed by close()/__exit__
        self.count = 0

    def write(self, payload: bytes) -> None:
        self._handle.write(frame(payload))
        self.count += 1

    def write_many(self, payloads: list[bytes]) -> None:
        self._handle.write(b"".join(map(frame, payloads)))
        self.count += len(payloads)

    def close(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()

    def __enter__(self) -> TFRecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_records(
    path: str | os.PathLike[str], start: int = 0, stop: int | None = None, first_index: int = 0
) -> Iterator[tuple[int, int, bytes]]:
    """Yield ``(record index, byte offset, payload)`` of the records starting in ``[start, stop)``.

    ``start`` must be a record boundary; the last record may end past ``stop``. Memory stays constant: the file
    is read in 8 MiB blocks. Record indices count from ``first_index``.

    Raises:
      SourceError: a CRC mismatch, a truncated record or an impossible length, naming the record index.
    """
    path = Path(path)
    size = path.stat().st_size
    stop = size if stop is None else min(stop, size)
    index = first_index
    with open(path, "rb") as handle:
        handle.seek(start)
        buffer = b""
        base = start  # file offset of buffer[0]
        pos = 0
        while base + pos < stop:
            if len(buffer) - pos < HEADER_SIZE:
                buffer, base, pos = _refill(handle, buffer, base, pos)
                if len(buffer) - pos < HEADER_SIZE:
                    raise _truncated(path, index, base + pos, "its 12-byte header", size)
            length, length_crc = _HEADER.unpack_from(buffer, pos)
            if masked_crc(buffer[pos : pos + 8]) != length_crc:
                raise SourceError(
                    f"CRC mismatch in the length header at byte {base + pos}", path=str(path), record=index
                )
            if length > MAX_RECORD_SIZE:
                raise SourceError(
                    f"impossible record length {length} at byte {base + pos}", path=str(path), record=index
                )
            end = pos + HEADER_SIZE + length + FOOTER_SIZE
            while len(buffer) < end:
                before = len(buffer) - pos
                buffer, base, pos = _refill(handle, buffer, base, pos)
                end = pos + HEADER_SIZE + length + FOOTER_SIZE
                if len(buffer) - pos == before:
                    raise _truncated(path, index, base + pos, f"{length} bytes of data and the data CRC", size)
            payload = buffer[pos + HEADER_SIZE : end - FOOTER_SIZE]
            if masked_crc(payload) != _CRC.unpack_from(buffer, end - FOOTER_SIZE)[0]:
                raise SourceError(f"CRC mismatch in the data at byte {base + pos}", path=str(path), record=index)
            yield index, base + pos, payload
            index += 1
            pos = end


def _refill(handle: BinaryIO, buffer: bytes, base: int, pos: int) -> tuple[bytes, int, int]:
    """Drop consumed bytes, append the next block; returns (buffer, base, pos)."""
    chunk = handle.read(_READ_SIZE)
    return buffer[pos:] + chunk, base + pos, 0


def _truncated(path: Path, index: int, offset: int, missing: str, size: int) -> SourceError:
    return SourceError(
        f"truncated file: the record at byte {offset} lacks {missing} (file size {size})", path=str(path), record=index
    )


def find_boundary(path: str | os.PathLike[str], offset: int, limit: int = 1 << 20) -> int | None:
    """The first record boundary at or after ``offset``: a header whose CRC and data CRC both check out.

    Used to split a file among workers without scanning it first; a false match needs two 32-bit CRCs to
    collide, and the caller checks that consecutive pieces meet exactly. Returns None if none is found
    within ``limit`` bytes.
    """
    with open(path, "rb") as handle:
        handle.seek(offset)
        window = handle.read(limit + HEADER_SIZE)
    for pos in range(min(limit, max(0, len(window) - HEADER_SIZE))):
        length, length_crc = _HEADER.unpack_from(window, pos)
        if length > MAX_RECORD_SIZE or masked_crc(window[pos : pos + 8]) != length_crc:
            continue
        end = pos + HEADER_SIZE + length
        if end + FOOTER_SIZE > len(window):
            return None
        if masked_crc(window[pos + HEADER_SIZE : end]) == _CRC.unpack_from(window, end)[0]:
            return offset + pos
    return None
