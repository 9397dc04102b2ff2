"""What NASBench(...) accepts: a store, a .tfrecord (built once), an address; clear errors otherwise."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from nasbench import api
from nasbench._backends import address
from nasbench.errors import StoreError, StoreNotFoundError
from nasbench_builder import prepare


def test_tfrecord_is_built_once_next_to_the_file(tiny_tfrecord: Path, tmp_path: Path) -> None:
    source = tmp_path / "nasbench_tiny.tfrecord"
    shutil.copy2(tiny_tfrecord, source)
    first = api.NASBench(str(source), seed=0)
    store = tmp_path / "nasbench_tiny.lmdb"
    assert store.exists() and len(first.hash_iterator()) == 91
    built_at = store.stat().st_mtime_ns
    started = time.perf_counter()
    second = api.NASBench(source, seed=0)
    assert time.perf_counter() - started < 1.0 and store.stat().st_mtime_ns == built_at
    assert list(second.hash_iterator()) == list(first.hash_iterator())
    source.touch()  # a changed source (new mtime) is rebuilt
    api.NASBench(source)
    assert store.stat().st_mtime_ns != built_at


def test_tfrecord_in_a_read_only_folder_builds_in_the_cache(tiny_tfrecord: Path, tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    source = folder / "data.tfrecord"
    shutil.copy2(tiny_tfrecord, source)
    monkeypatch.setattr(prepare.os, "access", lambda path, mode: False)  # as for a user without write access
    nasbench = api.NASBench(source, cache_dir=tmp_path / "cache")
    assert len(nasbench.hash_iterator()) == 91
    built = [p.name for p in (tmp_path / "cache" / "stores").glob("data-*.lmdb")]
    assert built == [f"data-{source.stat().st_size}.lmdb"]
    assert not (folder / "data.lmdb").exists()
    again = api.NASBench(source, cache_dir=tmp_path / "cache")
    assert len(again.hash_iterator()) == 91


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("grpc://localhost:50051", True),
        ("localhost:50051", True),
        ("10.0.0.1:50051,10.0.0.2:50051", True),
        ("unix:/tmp/nasbench.sock", True),
        ("dns:///nasbench.svc:50051", True),
        ("[::1]:50051", True),
        ("nasbench.lmdb", False),
        ("/data/nasbench_only108.tfrecord", False),
        ("C:/data/store.lmdb", False),
    ],
)
def test_address_detection(text: str, expected: bool) -> None:
    assert address.is_server(text) is expected


def test_missing_store_and_missing_tfrecord(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFoundError, match="no store at"):
        api.NASBench(tmp_path / "absent.lmdb")
    with pytest.raises(StoreError, match="no dataset file at"):
        api.NASBench(tmp_path / "absent.tfrecord")
