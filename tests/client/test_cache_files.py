"""The cache folder (nasbench._cache: where it is, which files in it are trusted) and the atomic writes
(nasbench.files)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nasbench import files
from nasbench._cache import default_cache_dir, open_cached, untrusted_file, untrusted_folder


def test_the_cache_folder_is_the_variable_then_xdg_then_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("NASBENCH_CACHE_DIR", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("NASBENCH_CACHE_DIR")
    assert default_cache_dir() == tmp_path / "xdg" / "nasbench"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "nasbench"
    monkeypatch.setenv("XDG_CACHE_HOME", "")  # set but empty: as unset (XDG Base Directory Specification)
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "nasbench"


def test_cached_files_are_opened_without_following_links(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_bytes(b"\x00\xffdata")
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(OSError):
        open_cached(link).close()
    with open_cached(target) as handle:
        assert handle.read() == b"\x00\xffdata"  # bytes, not text


def test_an_open_file_is_checked_by_descriptor_too(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_bytes(b"x")
    path.chmod(0o646)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert untrusted_file(fd, path) == f"{path} is writable by other users (mode 646)"
    finally:
        os.close(fd)


def test_a_folder_that_cannot_be_read_says_why(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    folder = tmp_path / "file" / "sub"
    assert untrusted_folder(folder) == f"the folder {folder} cannot be read (Not a directory)"


def test_atomic_writes_give_the_mode_asked_for(tmp_path: Path) -> None:
    os.umask(old := os.umask(0o022))
    try:
        files.write_atomically(tmp_path / "default", lambda handle: handle.write(b"x"))
        files.write_atomically(tmp_path / "private", lambda handle: handle.write(b"x"), mode=0o600)
    finally:
        os.umask(old)
    assert (tmp_path / "default").stat().st_mode & 0o777 == 0o644 & ~old
    assert (tmp_path / "private").stat().st_mode & 0o777 == 0o600
