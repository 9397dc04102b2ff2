"""nasbench_builder.download and ``nasbench download`` against a real HTTP mirror on 127.0.0.1 serving a synthetic
file in the original format: verified downloads, resume with Range, servers without Range, and every failure as one
clear error with nothing left at the final path."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from nasbench import _cli, api, space
from nasbench.errors import DownloadError, StoreError
from nasbench_builder import download, prepare
from nasbench_server.process import free_ports
from tests.mirror import Mirror

CHUNK = 16 << 10
FILE = "nasbench_only108.tfrecord"


@pytest.fixture(scope="module")
def digest(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch) -> None:
    monkeypatch.setattr(download, "_BACKOFF_S", (0.0,))


def _get(url: str, folder: Path, sha256: str, **kwargs) -> Path:
    return download.download("only108", folder, url=url, sha256=sha256, progress=None, chunk_bytes=CHUNK, **kwargs)


def _left(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def test_download_verifies_and_renames_into_place(mirror: Mirror, payload: bytes, digest: str, tmp_path: Path) -> None:
    seen: list[tuple[int, int | None]] = []
    path = download.download(
        "only108",
        tmp_path,
        url=mirror.url(f"data/{FILE}"),
        sha256=digest,
        progress=lambda done, total: seen.append((done, total)),
        chunk_bytes=CHUNK,
    )
    assert path == tmp_path / FILE and path.read_bytes() == payload
    assert _left(tmp_path) == [FILE], "no partial or lock file left"
    assert [(r.status, r.range) for r in mirror.requests] == [(200, None)]
    assert seen[-1] == (len(payload), len(payload)) and len(seen) > 1


def test_existing_verified_file_is_not_downloaded_again(mirror: Mirror, digest: str, tmp_path: Path) -> None:
    _get(mirror.url(f"data/{FILE}"), tmp_path, digest)
    assert _get(mirror.url(f"data/{FILE}"), tmp_path, digest) == tmp_path / FILE
    assert len(mirror.requests) == 1


def test_dropped_connection_is_resumed_with_range(mirror: Mirror, payload: bytes, digest: str, tmp_path: Path) -> None:
    half = len(payload) // 2 + 777  # not on a chunk boundary
    mirror.drop_after.append(half)
    path = _get(mirror.url(f"data/{FILE}"), tmp_path, digest)
    assert path.read_bytes() == payload
    assert [(r.status, r.range) for r in mirror.requests] == [(200, None), (206, f"bytes={half}-")]
    assert mirror.sent - len(payload) <= CHUNK, "bytes fetched twice: at most one chunk"


def test_interrupted_download_resumes_on_the_next_run(
    mirror: Mirror, payload: bytes, digest: str, tmp_path: Path
) -> None:
    half = len(payload) // 3
    mirror.drop_after.extend([half, 0])  # the retry brings nothing: the download gives up, keeping what it has
    with pytest.raises(DownloadError, match=r"connection closed after .* run the same command again to resume"):
        _get(mirror.url(f"data/{FILE}"), tmp_path, digest, retries=0)
    assert _left(tmp_path) == [f"{FILE}.partial"] and (tmp_path / f"{FILE}.partial").stat().st_size == half
    path = _get(mirror.url(f"data/{FILE}"), tmp_path, digest)
    assert path.read_bytes() == payload and _left(tmp_path) == [FILE]
    assert mirror.requests[-1].range == f"bytes={half}-" and mirror.requests[-1].status == 206
    assert mirror.sent - len(payload) <= CHUNK


def test_server_without_range_support_starts_over_cleanly(
    mirror: Mirror, payload: bytes, digest: str, tmp_path: Path
) -> None:
    mirror.range_support = False
    mirror.drop_after.append(len(payload) // 2)
    path = _get(mirror.url(f"data/{FILE}"), tmp_path, digest)
    assert path.read_bytes() == payload
    assert [(r.status, r.range is not None) for r in mirror.requests] == [(200, False), (200, True)]


def test_complete_partial_file_is_finished_without_a_body(
    mirror: Mirror, payload: bytes, digest: str, tmp_path: Path
) -> None:
    (tmp_path / f"{FILE}.partial").write_bytes(payload)  # killed between the last byte and the rename
    assert _get(mirror.url(f"data/{FILE}"), tmp_path, digest).read_bytes() == payload
    assert [r.status for r in mirror.requests] == [416] and mirror.sent == 0


def test_server_errors_are_retried(mirror: Mirror, payload: bytes, digest: str, tmp_path: Path) -> None:
    mirror.fail_with.extend([503, 503])
    assert _get(mirror.url(f"data/{FILE}"), tmp_path, digest).read_bytes() == payload
    assert [r.status for r in mirror.requests] == [503, 503, 200]


def test_wrong_checksum_removes_the_file(mirror: Mirror, digest: str, tmp_path: Path) -> None:
    wrong = "0" * 64
    with pytest.raises(DownloadError) as caught:
        _get(mirror.url(f"data/{FILE}"), tmp_path, wrong)
    message = str(caught.value)
    assert f"expected {wrong}, got {digest}" in message and "removed" in message and "\n" not in message
    assert _left(tmp_path) == []


def test_official_digest_is_the_default(mirror: Mirror, digest: str, tmp_path: Path) -> None:
    """A mirror of another file without --sha256 fails against the pinned official digest."""
    with pytest.raises(DownloadError, match=f"expected {download.DATASETS['only108'].sha256}, got {digest}"):
        download.download("only108", tmp_path, url=mirror.url(f"data/{FILE}"), progress=None)
    assert _left(tmp_path) == []


def test_http_404(mirror: Mirror, digest: str, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"/absent.tfrecord: HTTP 404"):
        _get(mirror.url("absent.tfrecord"), tmp_path, digest)
    assert _left(tmp_path) == []


def test_unreachable_url_names_the_manual_alternative(digest: str, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_ports()[0]}/{FILE}"  # nothing listens there
    with pytest.raises(DownloadError) as caught:
        _get(url, tmp_path, digest)
    message = str(caught.value)
    assert message.startswith(f"cannot reach {url}") and "nasbench build" in message and "--url" in message
    assert _left(tmp_path) == []


def test_full_disk(mirror: Mirror, digest: str, tmp_path: Path) -> None:
    """A real ENOSPC from the kernel: the partial file is /dev/full."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this platform")
    (tmp_path / f"{FILE}.partial").symlink_to("/dev/full")
    with pytest.raises(DownloadError, match=r"disk full writing .* the partial file was removed"):
        _get(mirror.url(f"data/{FILE}"), tmp_path, digest)
    assert _left(tmp_path) == []


def test_not_enough_space_is_refused_before_writing(mirror: Mirror, digest: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(download.shutil, "disk_usage", lambda path: type("Usage", (), {"free": 1000})())
    with pytest.raises(DownloadError, match=r"not enough disk space .* MB free"):
        _get(mirror.url(f"data/{FILE}"), tmp_path, digest)
    assert _left(tmp_path) == []


def test_file_url_mirror_and_resume(payload: bytes, digest: str, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / FILE).write_bytes(payload)
    folder = tmp_path / "downloads"
    folder.mkdir()
    (folder / f"{FILE}.partial").write_bytes(payload[:1000])
    path = _get((shared / FILE).as_uri(), folder, digest)
    assert path.read_bytes() == payload and _left(folder) == [FILE]
    with pytest.raises(DownloadError, match="cannot read"):
        _get((shared / "absent").as_uri(), tmp_path / "other", digest)


def test_any_url_needs_a_digest(mirror: Mirror, payload: bytes, digest: str, tmp_path: Path) -> None:
    url = mirror.url(f"data/{FILE}")
    with pytest.raises(DownloadError, match="pass the file's SHA-256"):
        download.download(url, tmp_path, progress=None)
    assert download.download(url, tmp_path, sha256=digest.upper(), progress=None).read_bytes() == payload
    with pytest.raises(DownloadError, match="unknown dataset 'only107'"):
        download.download("only107", tmp_path)
    with pytest.raises(DownloadError, match="not a SHA-256"):
        download.download("only108", tmp_path, sha256="abc")


def test_cancel_keeps_the_partial_file(mirror: Mirror, payload: bytes, digest: str, tmp_path: Path) -> None:
    cancel = threading.Event()
    with pytest.raises(DownloadError, match="cancelled"):
        download.download(
            "only108",
            tmp_path,
            url=mirror.url(f"data/{FILE}"),
            sha256=digest,
            chunk_bytes=CHUNK,
            progress=lambda done, total: cancel.set(),
            cancel=cancel,
        )
    assert _left(tmp_path) == [f"{FILE}.partial"]
    assert _get(mirror.url(f"data/{FILE}"), tmp_path, digest).read_bytes() == payload


def test_concurrent_downloads_of_one_file_fetch_it_once(
    mirror: Mirror, payload: bytes, digest: str, tmp_path: Path
) -> None:
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(_get(mirror.url(f"data/{FILE}"), tmp_path, digest)))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [tmp_path / FILE] * 3 and len(mirror.requests) == 1


# --- the command line ---------------------------------------------------------------------------------------------


def test_cli_prints_the_path(mirror: Mirror, digest: str, tmp_path: Path, capsys) -> None:
    url = mirror.url(f"data/{FILE}")
    assert _cli.main(["download", "only108", "--dir", str(tmp_path), "--url", url, "--sha256", digest]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / FILE)


def test_cli_reads_the_mirror_from_the_environment(mirror: Mirror, digest: str, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("NASBENCH_DATASET_URL", mirror.url(f"data/{FILE}"))
    monkeypatch.setenv("NASBENCH_DATASET_SHA256", digest)
    monkeypatch.setenv("NASBENCH_CACHE_DIR", str(tmp_path))
    assert _cli.main(["download", "only108"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "datasets" / FILE)


@pytest.mark.parametrize(
    ("path", "sha256", "expected"),
    [
        pytest.param(f"data/{FILE}", "0" * 64, "SHA-256 mismatch: expected 0000", id="checksum"),
        pytest.param("absent", None, "HTTP 404 Not Found", id="404"),
        pytest.param(None, None, "cannot reach http://127.0.0.1:", id="unreachable"),
    ],
)
def test_cli_errors_are_one_line_exit_2_nothing_left(
    mirror: Mirror, digest: str, tmp_path: Path, capsys, path: str | None, sha256: str | None, expected: str
) -> None:
    url = mirror.url(path) if path else f"http://127.0.0.1:{free_ports()[0]}/{FILE}"
    folder = tmp_path / "out"
    code = _cli.main(["download", "only108", "--dir", str(folder), "--url", url, "--sha256", sha256 or digest])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("nasbench download: error: ") and expected in err[0]
    assert _left(folder) == []


def test_cli_truncated_body_after_retries(mirror: Mirror, digest: str, tmp_path: Path, capsys) -> None:
    mirror.drop_after.extend([0, 0])  # the body never comes: no progress, so retries run out
    url = mirror.url(f"data/{FILE}")
    arguments = ["download", "only108", "--dir", str(tmp_path), "--url", url, "--sha256", digest, "--retries", "1"]
    code = _cli.main(arguments)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "connection closed after 0 of" in err[0]
    assert not (tmp_path / FILE).exists()


# --- api.NASBench("only108") ----------------------------------------------------------------------------------------


def test_nasbench_accepts_a_dataset_name(
    mirror: Mirror, payload: bytes, digest: str, tmp_path: Path, space_table, monkeypatch
) -> None:
    shutil.copy(space.default_cache_dir() / "space-v1.npz", tmp_path / "space-v1.npz")  # hashing is tested elsewhere
    url = mirror.url(f"data/{FILE}")
    store = prepare.store_for_dataset("only108", tmp_path, url=url, sha256=digest, progress=None)
    assert store == prepare.dataset_store_path("only108", tmp_path, digest) and store.exists()
    assert (tmp_path / "datasets" / FILE).read_bytes() == payload
    requests = len(mirror.requests)
    assert prepare.store_for_dataset("only108", tmp_path, url=url, sha256=digest) == store
    assert len(mirror.requests) == requests, "the cached store is reused: no download, no build"
    # NASBench("only108") opens the store of the official file; pretend the synthetic file is it
    official = replace(download.DATASETS["only108"], sha256=digest, url=url, records=1092)
    monkeypatch.setitem(download.DATASETS, "only108", official)
    nasbench = api.NASBench("only108", cache_dir=tmp_path, seed=0)
    assert len(nasbench.hash_iterator()) == 91 and len(mirror.requests) == requests
    nasbench.close()


def test_a_path_on_disk_wins_over_a_dataset_name(small_store: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    os.symlink(small_store, tmp_path / "full")
    nasbench = api.NASBench("full")  # the file named "full" in the working folder, not a download
    assert len(nasbench.hash_iterator()) == 2532
    nasbench.close()


def test_dataset_name_without_the_builder_says_so(tmp_path: Path, monkeypatch) -> None:
    """The builder's plugin cannot be imported (as without the extra's dependencies): one error, nothing fetched."""
    monkeypatch.setitem(sys.modules, "nasbench_builder.prepare", None)
    with pytest.raises(StoreError, match=r"needs the 'builder' extra: pip install 'nasbench-server\[builder\]'"):
        api.NASBench("only108", cache_dir=tmp_path)
    assert not (tmp_path / "datasets").exists(), "nothing is downloaded before the builder is known to be there"


def test_concurrent_preparations_download_and_build_once(
    mirror: Mirror, digest: str, tmp_path: Path, space_table
) -> None:
    """As replicas sharing one cache volume: one downloads and builds, the others wait and reuse the store."""
    shutil.copy(space.default_cache_dir() / "space-v1.npz", tmp_path / "space-v1.npz")
    url = mirror.url(f"data/{FILE}")
    stores: list[Path] = []

    def prepare_one() -> None:
        stores.append(prepare.store_for_dataset("only108", tmp_path, url=url, sha256=digest, progress=None))

    threads = [threading.Thread(target=prepare_one) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(stores) == 3 and len(set(stores)) == 1 and stores[0].exists()
    assert len(mirror.requests) == 1
    assert sorted(p.name for p in (tmp_path / "stores").iterdir()) == [stores[0].name], "no lock or temp left"


def test_cifar10_downloads_under_its_name_and_is_checked_by_md5(tmp_path: Path, capsys) -> None:
    """`nasbench download cifar10 --url file://... --md5 ...`: the same resumable machinery, verified by MD5 (the
    only digest CIFAR-10's publisher gives), saved as cifar-10-python.tar.gz whatever the mirror calls it."""
    payload = b"not really cifar, but a file with a digest" * 1000
    mirror = tmp_path / "mirror" / "renamed.tgz"
    mirror.parent.mkdir()
    mirror.write_bytes(payload)
    folder = tmp_path / "datasets"
    wrong = ["download", "cifar10", "--dir", str(folder), "--url", mirror.as_uri()]
    assert _cli.main(wrong) == 2  # the published MD5 is not this file's
    assert "MD5 mismatch: expected c58f30108f718f92721af3b95e74349a" in capsys.readouterr().err
    assert [p.name for p in folder.iterdir() if not p.name.startswith(".")] == []
    digest = hashlib.md5(payload).hexdigest()
    assert _cli.main([*wrong, "--md5", digest]) == 0
    assert capsys.readouterr().out.strip() == str(folder / "cifar-10-python.tar.gz")
    assert (folder / "cifar-10-python.tar.gz").read_bytes() == payload


def test_dataset_mirror_in_the_environment_is_not_used_for_cifar10(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("NASBENCH_DATASET_URL", (tmp_path / "nasbench_only108.tfrecord").as_uri())
    cifar = tmp_path / "c.tar.gz"
    cifar.write_bytes(b"x")
    monkeypatch.setenv("NASBENCH_CIFAR10_URL", cifar.as_uri())
    arguments = ["download", "cifar10", "--dir", str(tmp_path / "d"), "--md5", hashlib.md5(b"x").hexdigest()]
    assert _cli.main(arguments) == 0
    assert (tmp_path / "d" / "cifar-10-python.tar.gz").read_bytes() == b"x"
