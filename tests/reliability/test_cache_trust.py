"""A cache folder others can write never changes answers: cached files are trusted only when no other user can
have written them or can change them after they were checked (nasbench._cache), and a prepared store must be
what its name claims (its source's digest and record count).

Run as root in CI: files are given to another user with chown, and folders opened to everyone with chmod; a
process run as that other user (setpriv) checks what an unprivileged user sees."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nasbench import api
from nasbench._cells import keytable
from nasbench._store import integrity
from nasbench.errors import StoreError
from nasbench_builder import prepare
from tests.mirror import Mirror
from tests.unprivileged import NOBODY_UID as NOBODY

FILE = "nasbench_only108.tfrecord"
_TABLE_PATH = """
import logging, sys
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
from nasbench._cells import keytable
table = keytable.table()
print(table.path)
"""


def _table_in(cache: Path) -> subprocess.CompletedProcess[str]:
    """In a fresh process with ``cache`` as the cache folder: where its key table came from (None: memory)."""
    env = {**os.environ, "NASBENCH_CACHE_DIR": str(cache)}
    return subprocess.run([sys.executable, "-c", _TABLE_PATH], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def table_file() -> Path:
    """A valid key table file (this machine's)."""
    path = keytable.table().path
    assert path is not None
    return path


def test_a_key_table_of_another_user_is_never_mapped(table_file: Path, tmp_path: Path) -> None:
    """Another user's file could be edited in place after the check (that made GetMetrics(A) answer cell B)."""
    cache = tmp_path / "cache"
    cache.mkdir()
    planted = cache / table_file.name
    shutil.copy(table_file, planted)
    os.chown(planted, NOBODY, NOBODY)
    inode = planted.stat().st_ino
    done = _table_in(cache)
    assert f"not using the cached key table: {planted} belongs to another user (uid {NOBODY})" in done.stderr
    assert done.stdout.strip() == str(planted), done.stderr  # what is mapped is a file of our own, put in its place
    assert planted.stat().st_ino != inode and planted.stat().st_uid == os.geteuid()


def test_a_key_table_writable_by_others_is_never_mapped(table_file: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    planted = cache / table_file.name
    shutil.copy(table_file, planted)
    planted.chmod(0o666)
    done = _table_in(cache)
    assert "is writable by other users (mode 666)" in done.stderr
    assert done.stdout.strip() == str(planted) and planted.stat().st_mode & 0o777 == 0o644


def test_a_key_table_behind_a_link_is_replaced_by_a_file_of_our_own(table_file: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    elsewhere = tmp_path / "elsewhere.bin"
    shutil.copy(table_file, elsewhere)
    (cache / table_file.name).symlink_to(elsewhere)
    done = _table_in(cache)
    assert done.stdout.strip() == str(cache / table_file.name), done.stderr
    assert not (cache / table_file.name).is_symlink() and elsewhere.read_bytes() == table_file.read_bytes()


def test_a_cache_folder_others_can_write_keeps_the_table_in_memory(tmp_path: Path) -> None:
    cache = tmp_path / "shared"
    cache.mkdir()
    cache.chmod(0o777)  # writable by everyone, not sticky: others could swap files in it
    done = _table_in(cache)
    assert done.stdout.strip() == "None"
    assert f"the folder {cache} is writable by other users (mode 777)" in done.stderr
    assert not list(cache.iterdir()), "nothing is written into such a folder"


def test_a_cache_folder_of_another_user_keeps_the_table_in_memory(tmp_path: Path) -> None:
    """A folder another user owns (not writable by us either way: its owner can swap files in it at any time)."""
    cache = tmp_path / "theirs"
    cache.mkdir()
    cache.chmod(0o755)
    os.chown(cache, NOBODY, NOBODY)
    done = _table_in(cache)
    assert done.stdout.strip() == "None"
    assert f"the folder {cache} belongs to another user (uid {NOBODY})" in done.stderr
    assert not list(cache.iterdir()), "nothing is written into such a folder"


def test_a_sticky_shared_folder_is_used(tmp_path: Path) -> None:
    """As /tmp: others may create files there but can neither replace nor remove ours."""
    cache = tmp_path / "sticky"
    cache.mkdir()
    cache.chmod(0o1777)
    done = _table_in(cache)
    assert done.stdout.strip().startswith(str(cache)), done.stderr


def test_verification_records_of_another_user_are_not_believed(tmp_path: Path) -> None:
    folder = tmp_path / "verified"
    folder.mkdir()
    integrity.record(folder, "a" * 32, tmp_path / "store.lmdb")
    assert integrity.is_recorded(folder, "a" * 32)
    os.chown(folder / f"{'a' * 32}.json", NOBODY, NOBODY)
    assert not integrity.is_recorded(folder, "a" * 32)
    (folder / f"{'b' * 32}.json").symlink_to(folder / f"{'a' * 32}.json")
    assert not integrity.is_recorded(folder, "b" * 32)


# --- prepared stores ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("plant", ["link", "copy"])
def test_a_store_planted_under_a_dataset_name_is_not_served_as_it(
    mirror: Mirror, payload: bytes, small_store: Path, space_cache: Path, plant: str
) -> None:
    """A store of another dataset under the only108 store's name, as a link or as a regular file of ours: its
    source digest gives it away, and the store is prepared again from the verified file."""
    cache = space_cache
    digest = hashlib.sha256(payload).hexdigest()
    target = prepare.dataset_store_path("only108", cache, digest)
    target.parent.mkdir()
    if plant == "link":
        target.symlink_to(small_store)
    else:
        shutil.copy(small_store, target)
    store = prepare.store_for_dataset("only108", cache, url=mirror.url(f"data/{FILE}"), sha256=digest, progress=None)
    assert store == target and not store.is_symlink()
    nasbench = api.NASBench(store)
    assert nasbench.dataset_source["sha256"] == digest and len(nasbench.hash_iterator()) == 91
    assert len(mirror.requests) == 1, "the verified file was downloaded"


def test_a_store_cache_others_can_write_is_refused_before_any_download(
    mirror: Mirror, payload: bytes, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    (cache / "stores").mkdir(parents=True)
    (cache / "stores").chmod(0o777)
    digest = hashlib.sha256(payload).hexdigest()
    with pytest.raises(StoreError, match=r"is writable by other users \(mode 777\).*NASBENCH_CACHE_DIR"):
        prepare.store_for_dataset("only108", cache, url=mirror.url(f"data/{FILE}"), sha256=digest, progress=None)
    assert mirror.requests == []


def test_a_store_of_the_official_file_is_checked_for_its_record_count(
    mirror: Mirror, payload: bytes, space_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """For an official dataset the store's manifest must name its digest and its record count. Here the tiny file
    stands in for only108 (its digest made the official one): with the right count the prepared store is reused;
    claimed with one record more, the same store is not believed, and the file it is built from again is refused
    by name (the file is not the dataset it claims to be)."""
    from dataclasses import replace

    from nasbench_builder import download

    cache = space_cache
    digest = hashlib.sha256(payload).hexdigest()
    store = prepare.store_for_dataset("only108", cache, url=mirror.url(f"data/{FILE}"), sha256=digest, progress=None)
    records = api.NASBench(store).dataset_source["records"]
    official = replace(download.DATASETS["only108"], sha256=digest, records=records)
    monkeypatch.setitem(download.DATASETS, "only108", official)
    assert prepare.store_for_dataset("only108", cache, url=mirror.url(f"data/{FILE}"), progress=None) == store
    assert len(mirror.requests) == 1, "the prepared store was reused: digest and record count are the official ones"

    monkeypatch.setitem(download.DATASETS, "only108", replace(official, records=records + 1))
    with pytest.raises(StoreError, match=rf"records {records} where {records + 1} was expected"):
        prepare.store_for_dataset("only108", cache, url=mirror.url(f"data/{FILE}"), progress=None)


def test_the_embedded_synthetic_store_is_reused_only_when_it_is_the_whole_synthetic_dataset(
    full_store: Path, space_cache: Path, space_table, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store under the embedded dataset's name is reused when its manifest says it is that dataset (synthetic,
    this generator's version and digest, seed 0, the whole space); a synthetic store of the same seed over a
    subspace, or of another seed, is built again, as is a store whose manifest says nothing of the kind."""
    from nasbench_builder import synthetic, writer

    cache = space_cache
    target = prepare.dataset_store_path("synthetic", cache)
    target.parent.mkdir()
    built: list[Path] = []

    def synthesize(path: Path, root: Path) -> None:  # the real build takes a minute: the same data, copied
        assert root == cache  # the space table is read from (and cached in) the cache folder asked for
        built.append(path)
        shutil.copy(full_store, path)

    monkeypatch.setattr(prepare, "_synthesize", synthesize)
    shutil.copy(full_store, target)
    assert prepare.store_for_dataset("synthetic", cache) == target and built == []
    for seed, max_vertices in ((0, 3), (5, 3)):
        data = synthetic.synthesize(max_vertices=max_vertices, seed=seed, table=space_table)
        target.unlink()
        writer.write_store(data.dataset, target)
        assert prepare.store_for_dataset("synthetic", cache) == target and built == [target], (seed, max_vertices)
        assert api.NASBench(target).dataset_source["max_vertices"] == 7
        built.clear()
