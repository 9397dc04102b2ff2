"""Trusting a store file before mapping it (``nasbench._store.integrity``), checked in this process.

The oracles are independent of the product: the size a store needs comes from LMDB itself (``Environment.info``
and ``stat``: last page number and page size), the meta pages are read at the offsets of LMDB's documented
``MDB_meta`` layout, and array digests come from ``xxhash`` on byte slices this test cuts.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
from pathlib import Path

import lmdb
import pytest
import xxhash

from nasbench._store import integrity
from nasbench._store.reader import Store
from nasbench.errors import StoreCorruptError
from nasbench_builder import writer

# MDB_meta, after the 16-byte page header: magic u32, version u32, address u64, mapsize u64, two MDB_db of 48
# bytes (the first one's md_pad holds the page size), last page u64, transaction id u64.
_HEADER = 16
_MAGIC_AT = _HEADER
_PAGE_SIZE_AT = _HEADER + 24
_LAST_PAGE_AT = _HEADER + 24 + 2 * 48
_TXNID_AT = _LAST_PAGE_AT + 8


@pytest.fixture(scope="module")
def store_file(tmp_path_factory: pytest.TempPathFactory, tiny_synthetic) -> Path:
    path = tmp_path_factory.mktemp("integrity") / "tiny.lmdb"
    writer.write_store(tiny_synthetic.dataset, path)
    return path


@pytest.fixture
def copy(store_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the store, and a private cache folder for verification records."""
    monkeypatch.setenv("NASBENCH_CACHE_DIR", str(tmp_path / "cache"))
    target = tmp_path / "copy.lmdb"
    shutil.copyfile(store_file, target)
    return target


def _lmdb_needed(path: Path) -> tuple[int, int]:
    """(bytes the newest transaction needs, page size), as LMDB itself reports them."""
    env = lmdb.open(str(path), subdir=False, readonly=True, lock=False)
    try:
        return (env.info()["last_pgno"] + 1) * env.stat()["psize"], env.stat()["psize"]
    finally:
        env.close()


def _metas(path: Path, page_size: int) -> list[tuple[int, int]]:
    """(last page, transaction id) of meta pages 0 and 1."""
    data = path.read_bytes()
    found = []
    for page in (0, 1):
        base = page * page_size
        assert struct.unpack_from("<I", data, base + _MAGIC_AT)[0] == 0xBEEFC0DE
        found.append(struct.unpack_from("<QQ", data, base + _LAST_PAGE_AT))
    return found


def _poke(path: Path, offset: int, fmt: str, *values: int) -> None:
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(struct.pack(fmt, *values))


def test_a_file_cut_one_byte_short_of_its_last_page_is_refused_and_at_it_accepted(copy: Path) -> None:
    needed, _ = _lmdb_needed(copy)
    assert copy.stat().st_size >= needed
    os.truncate(copy, needed)
    Store.open(copy, verify=True).close()  # exactly the pages LMDB names: complete
    os.truncate(copy, needed - 1)
    message = f"{copy} is truncated: {needed - 1:,} bytes where the store needs {needed:,} (an interrupted copy?);"
    with pytest.raises(StoreCorruptError, match="^" + re.escape(message) + " copy or build it again$"):
        Store.open(copy)


def test_required_size_is_what_lmdb_names(copy: Path) -> None:
    needed, _ = _lmdb_needed(copy)
    fd = os.open(copy, os.O_RDONLY)
    try:
        assert integrity.required_size(fd, os.fstat(fd).st_size, copy) == needed
        with pytest.raises(StoreCorruptError, match=f"is truncated: {needed - 4096:,} bytes"):
            integrity.required_size(fd, needed - 4096, copy)
    finally:
        os.close(fd)


def test_the_newest_meta_page_decides(copy: Path) -> None:
    """LMDB keeps two meta pages and uses the one of the newest transaction: a stale page naming pages far past
    the end changes nothing; the newest one doing so means a truncated file."""
    _, page_size = _lmdb_needed(copy)
    metas = _metas(copy, page_size)
    newest = max((0, 1), key=lambda page: metas[page][1])
    older = 1 - newest
    assert metas[newest][1] > metas[older][1]
    original = copy.read_bytes()

    _poke(copy, older * page_size + _LAST_PAGE_AT, "<Q", 10**9)
    Store.open(copy, verify=True).close()

    copy.write_bytes(original)
    _poke(copy, newest * page_size + _LAST_PAGE_AT, "<Q", 10**9)
    with pytest.raises(StoreCorruptError, match=f"is truncated: {len(original):,} bytes where the store needs"):
        Store.open(copy)


def test_a_store_with_only_its_first_meta_page_readable(copy: Path) -> None:
    """A file cut inside the second meta page: the first page alone decides, and the file is far too short."""
    _, page_size = _lmdb_needed(copy)
    os.truncate(copy, page_size + 20)
    with pytest.raises(StoreCorruptError, match=f"is truncated: {page_size + 20:,} bytes where the store needs"):
        Store.open(copy)


@pytest.mark.parametrize("page_size", [1000, 256, 0, 3 << 12])
def test_a_damaged_page_size_is_named(copy: Path, page_size: int) -> None:
    _poke(copy, _PAGE_SIZE_AT, "<I", page_size)
    with pytest.raises(StoreCorruptError, match=rf"has a damaged LMDB header \(page size {page_size}\)$"):
        Store.open(copy)


def test_page_sizes_at_the_edges_of_the_header_check(copy: Path) -> None:
    """512 (the smallest page size the check lets through) and 2**31 (an unsigned field) pass the header check
    and fail later, by LMDB's own check and by the size the file would need."""
    _poke(copy, _PAGE_SIZE_AT, "<I", 512)
    with pytest.raises(StoreCorruptError) as info:
        Store.open(copy)
    assert str(info.value) == f"{copy} is not an LMDB store ({copy}: MDB_INVALID: File is not an LMDB file)"
    _poke(copy, _PAGE_SIZE_AT, "<I", 1 << 31)
    with pytest.raises(StoreCorruptError, match=r"is truncated: [\d,]+ bytes where the store needs [\d,]{15,} "):
        Store.open(copy)


def test_changes_to_an_open_store_file_are_told(copy: Path) -> None:
    """What a server polls: a write (size, mtime or ctime moved) or a truncation, until accepted; nothing once
    the store is closed."""
    store = Store.open(copy)
    try:
        assert store.changed() is None
        info = copy.stat()
        os.utime(copy, ns=(info.st_atime_ns, info.st_mtime_ns + 10**9))
        assert store.changed() == "the file was written to"
        store.accept_change()
        assert store.changed() is None
        with open(copy, "ab") as handle:
            handle.write(b"\0" * 4096)
        assert store.changed() == "the file was written to"
        store.accept_change()
        size = copy.stat().st_size
        os.truncate(copy, size - 4096)  # only the bytes appended above: no mapped page goes
        assert store.changed() == f"the file was truncated from {size:,} to {size - 4096:,} bytes"
    finally:
        store.close()
    assert store.changed() is None
    store.accept_change()  # closed: nothing to take
    assert store.changed() is None


def test_files_without_an_lmdb_header(tmp_path: Path) -> None:
    size = _LAST_PAGE_AT + 15  # the magic is there, the meta page is one byte short
    short = tmp_path / "short.lmdb"
    short.write_bytes(b"\0" * _MAGIC_AT + struct.pack("<I", 0xBEEFC0DE) + b"\0" * (size - _MAGIC_AT - 4))
    with pytest.raises(StoreCorruptError, match=rf"^{short} is not an LMDB store \({size:,} bytes, no LMDB header\)$"):
        Store.open(short)
    wrong = tmp_path / "wrong.lmdb"
    wrong.write_bytes(b"\0" * _MAGIC_AT + struct.pack("<I", 0xBEEFC0DF) + b"\0" * 8000)
    with pytest.raises(StoreCorruptError, match=r"is not an LMDB store \(8,020 bytes, no LMDB header\)"):
        Store.open(wrong)
    empty = tmp_path / "empty.lmdb"
    empty.touch()
    with pytest.raises(StoreCorruptError, match=rf"^{empty} is empty \(0 bytes\): not a store$"):
        Store.open(empty)


# --- checksums of the arrays -----------------------------------------------------------------------------


def test_verify_arrays_hashes_exactly_the_bytes_each_shape_names(tmp_path: Path) -> None:
    """Shapes of several dimensions and item sizes, an array larger than one read chunk (8 MiB): each digest is
    over exactly offset .. offset + product(shape) x itemsize."""
    data = os.urandom(9 << 20)
    path = tmp_path / "arrays.bin"
    path.write_bytes(data)

    def spec(offset: int, shape: list[int], dtype: str, nbytes: int, extra: int = 0) -> dict:
        return {
            "offset": offset,
            "shape": shape,
            "dtype": dtype,
            "xxh3_128": xxhash.xxh3_128_hexdigest(data[offset : offset + nbytes + extra]),
        }

    arrays = {
        "matrix": spec(100, [2, 3, 4], "<i4", 96),
        "bytes": spec(7, [5], "|u1", 5),
        "large": spec(1000, [(9 << 20) // 8 - 200], "<f8", (9 << 20) - 1600),
    }
    fd = os.open(path, os.O_RDONLY)
    try:
        integrity.verify_arrays(fd, {"arrays": arrays}, path)
        for name, wrong in [
            ("matrix", spec(100, [2, 3, 4], "<i4", 96, 1)),
            ("matrix", spec(100, [2, 3, 4], "<i4", 95)),
        ]:
            with pytest.raises(StoreCorruptError, match=f"^{path}: checksum mismatch in array '{name}': the file"):
                integrity.verify_arrays(fd, {"arrays": {**arrays, name: wrong}}, path)
        past = {"offset": len(data) - 10, "shape": [3], "dtype": "<i8", "xxh3_128": "0" * 32}
        with pytest.raises(StoreCorruptError, match=f"^{path}: array 'tail' ends past the end of the file$"):
            integrity.verify_arrays(fd, {"arrays": {**arrays, "tail": past}}, path)
        with pytest.raises(StoreCorruptError, match="checksum mismatch in array 'large'"):
            integrity.verify_arrays(
                fd, {"arrays": {**arrays, "large": {**arrays["large"], "xxh3_128": "0" * 32}}}, path
            )
    finally:
        os.close(fd)


# --- verification recorded once per file identity -------------------------------------------------------


def _count_verifications(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []
    real = integrity.verify_arrays

    def counting(fd: int, manifest: dict, label: object) -> None:
        calls.append(Path(str(label)))
        real(fd, manifest, label)

    monkeypatch.setattr(integrity, "verify_arrays", counting)
    return calls


def test_an_unchanged_file_is_verified_once_and_a_touched_one_again(copy: Path, monkeypatch, tmp_path: Path) -> None:
    calls = _count_verifications(monkeypatch)
    Store.open(copy).close()
    records = list((tmp_path / "cache" / "verified").iterdir())
    assert len(calls) == 1 and len(records) == 1 and records[0].suffix == ".json"
    assert str(copy) in records[0].read_text()
    Store.open(copy).close()
    assert len(calls) == 1  # recorded: not read again
    Store.open(copy, verify=True).close()
    assert len(calls) == 2  # asked for: read again
    stat = copy.stat()
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a write would do this
    Store.open(copy).close()
    assert len(calls) == 3
    assert len(list((tmp_path / "cache" / "verified").iterdir())) == 2
    Store.open(copy, verify=False).close()
    other = tmp_path / "other.lmdb"
    shutil.copyfile(copy, other)
    Store.open(other, verify=False).close()
    assert len(calls) == 3  # verify=False never reads, and records nothing
    assert len(list((tmp_path / "cache" / "verified").iterdir())) == 2


def test_identity_names_the_file_content(copy: Path, tmp_path: Path) -> None:
    stat = copy.stat()
    name = integrity.identity(stat, {"checksum": "a"})
    assert len(name) == 32 and int(name, 16) >= 0
    assert name == integrity.identity(os.stat(copy), {"checksum": "a"})
    assert name != integrity.identity(stat, {"checksum": "b"})
    other = tmp_path / "other.lmdb"
    shutil.copyfile(copy, other)
    assert name != integrity.identity(other.stat(), {"checksum": "a"})


def test_verification_without_a_writable_cache_folder_still_verifies(copy: Path, monkeypatch, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("NASBENCH_CACHE_DIR", str(blocker))
    calls = _count_verifications(monkeypatch)
    Store.open(copy).close()
    Store.open(copy).close()
    assert len(calls) == 2  # nothing could be recorded: verified every time, never an error
    assert blocker.read_text() == "a file where the cache folder should be"
    assert not integrity.is_recorded(None, "x")
    integrity.record(None, "x", copy)  # no folder: nothing to do, no error
