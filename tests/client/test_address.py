"""What a dataset argument names (nasbench._backends.address.parse), rule by rule, in the order of the module's
docstring. tests/experiments/test_addresses.py checks that every entry point means the same by each form."""

from __future__ import annotations

from pathlib import Path

import pytest

from nasbench._backends import address

HEADER = bytes(12)  # a TFRecord's length and its CRC come first


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("grpc://h:1", "server"),
        ("grpcs://h:1", "server"),
        ("unix:/tmp/nasbench.sock", "server"),
        ("dns:///nasbench:50051", "server"),
        ("h:1", "server"),
        ("10.0.0.1:50051, 10.0.0.2:50051", "server"),
        ("[::1]:50051", "server"),
        ("only108", "dataset"),
        ("full", "dataset"),
        ("synthetic", "dataset"),
        ("absent.tfrecord", "tfrecord"),
        ("absent.lmdb", "store"),
        ("absent", "store"),
        ("h:port", "store"),
    ],
)
def test_what_each_form_names_when_no_such_path_exists(text: str, kind: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert address.parse(text) == address.Location(kind, text)


@pytest.mark.parametrize(
    ("name", "content", "kind"),
    [
        ("data.tfrecord", b"anything", "tfrecord"),  # by its suffix
        ("data.bin", HEADER + b'["4f2c", 108]', "tfrecord"),  # by its first bytes
        ("data.lmdb", HEADER + b'["4f2c", 108]', "tfrecord"),
        ("data.bin", HEADER + b"[1]", "store"),
        ("data.bin", HEADER + b"[", "store"),
        ("data.lmdb", b"", "store"),
        ("only108", b"", "store"),  # a path that exists wins over a dataset name
        ("h:1", b"", "store"),  # and over an address
    ],
)
def test_a_path_that_exists_is_a_store_or_a_tfrecord(
    name: str, content: bytes, kind: str, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path(name).write_bytes(content)
    assert address.parse(name) == address.Location(kind, name)
    assert address.parse(Path(name)).kind == kind


def test_a_folder_is_a_store_and_a_file_that_cannot_be_read_is_not_sniffed(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "folder.tfrecord.d").mkdir()
    assert address.parse(tmp_path / "folder.tfrecord.d").kind == "store"
    unreadable = tmp_path / "data.bin"
    unreadable.write_bytes(HEADER + b'["')

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(address, "open", refused, raising=False)
    assert address.parse(unreadable).kind == "store"  # opening it as a store names the problem


def test_each_kind_is_described_for_messages() -> None:
    assert [address.parse(text).describe() for text in ("h:1", "only108", "x.tfrecord", "x.lmdb")] == [
        "the server h:1",
        "the dataset only108",
        "the dataset file x.tfrecord",
        "the store x.lmdb",
    ]
