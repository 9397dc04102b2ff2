"""Build failures are one clear line, found as early as possible, and leave nothing behind."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from nasbench import _cli, api, space
from nasbench.errors import StoreError
from nasbench_builder import source, writer


@contextmanager
def tmpfs(folder: Path, options: str) -> Iterator[Path]:
    """A real small or read-only file system (a tmpfs mount; needs the privileges CI and these machines have)."""
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_read_only_folder_is_refused_before_the_source_is_read(tiny_tfrecord, tmp_path, monkeypatch, capsys):
    def never(*args, **kwargs):
        raise AssertionError("the source was read although the target cannot be written")

    monkeypatch.setattr(source, "read_dataset", never)
    with tmpfs(tmp_path / "ro", "ro,size=1m") as folder:
        assert _cli.main(["build", str(tiny_tfrecord), str(folder / "tiny.lmdb"), "--workers", "1"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        f"nasbench build: error: cannot write {folder}/tiny.lmdb: folder {folder} is not writable "
        "(Read-only file system)"
    ]


def test_full_disk_during_the_write_names_the_space_and_leaves_nothing(tiny_synthetic, tmp_path, monkeypatch):
    real_usage = shutil.disk_usage
    calls = []

    def plenty_at_first(path):  # the early check believes there is room; the write then really runs out
        calls.append(path)
        usage = real_usage(path)
        return usage._replace(free=1 << 40) if len(calls) == 1 else usage

    monkeypatch.setattr(shutil, "disk_usage", plenty_at_first)
    with tmpfs(tmp_path / "small", "size=64k") as folder:
        with pytest.raises(StoreError, match="no space left on the device") as info:
            writer.write_store(tiny_synthetic.dataset, folder / "tiny.lmdb")
        expected = (  # the reason is LMDB's or the system's, whichever ran out first
            rf"writing {re.escape(str(folder / 'tiny.lmdb'))} failed: no space left on the device \(.+\); "
            rf"the store needs about 0 MB, {re.escape(str(folder))} has 0 MB free; nothing was written"
        )
        assert re.fullmatch(expected, str(info.value)), str(info.value)
        assert list(folder.iterdir()) == []


def test_not_enough_space_is_refused_before_writing(tiny_synthetic, tmp_path):
    with tmpfs(tmp_path / "small", "size=32k") as folder:
        with pytest.raises(StoreError) as info:
            writer.write_store(tiny_synthetic.dataset, folder / "tiny.lmdb")
        assert str(info.value) == (  # the tiny store's arrays and 4 MiB of room for LMDB's pages
            f"not enough free space to write {folder / 'tiny.lmdb'}: the store needs about 4 MB, {folder} has 0 MB free"
        )
        assert list(folder.iterdir()) == []


def test_tfrecord_with_a_full_cache_folder_is_a_store_error(tiny_tfrecord, tmp_path, monkeypatch):
    with tmpfs(tmp_path / "cache", "size=64k") as folder:
        copy = folder.parent / "source" / tiny_tfrecord.name
        copy.parent.mkdir()
        shutil.copy(tiny_tfrecord, copy)
        copy.parent.chmod(0o555)  # not writable beside the source (for non-root users): the cache folder is used
        monkeypatch.setattr("os.access", lambda path, mode: False)
        with pytest.raises(StoreError, match="not enough free space"):
            api.NASBench(str(copy), cache_dir=folder)


def test_build_without_a_writable_space_cache_still_builds(tiny_tfrecord, tmp_path, monkeypatch, space_table):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("NASBENCH_CACHE_DIR", str(blocker / "cache"))  # a folder under a file cannot exist
    monkeypatch.setattr(space, "compute_hashes", lambda keys, processes=None: space_table.hashes)
    table = space.load_space()
    assert len(table.keys) == space.NUM_CELLS
    target = tmp_path / "tiny.lmdb"
    assert _cli.main(["build", str(tiny_tfrecord), str(target), "--workers", "1"]) == 0
    assert target.is_file()
