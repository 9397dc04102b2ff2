"""Truncated, damaged and changing store files: a precise error or a refusal, never a signal or a wrong answer."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import grpc
import pytest

from nasbench import api
from nasbench._store.reader import Store
from nasbench.errors import StoreError
from nasbench.v1 import nasbench_pb2 as pb
from nasbench.v1 import nasbench_pb2_grpc as pb_grpc
from nasbench_server.process import ServerProcess
from tests.polling import wait_for
from tests.reliability.conftest import log_events
from tests.unprivileged import AS_NOBODY

SWEEP = textwrap.dedent(
    """
    import os, shutil, sys
    from nasbench import api
    from nasbench.errors import StoreError
    from nasbench_builder import verify
    source, folder, step = sys.argv[1], sys.argv[2], int(sys.argv[3])
    size = os.path.getsize(source)
    cuts = sorted(set(list(range(0, size, step)) + [1, 100, 4095, 4097, size - 1]))
    refused = 0
    for cut in cuts:
        copy = os.path.join(folder, "cut.lmdb")
        shutil.copyfile(source, copy)
        os.truncate(copy, cut)
        for attempt in (lambda: api.NASBench(copy), lambda: verify.verify_store(copy)):
            try:
                attempt()
            except StoreError:
                refused += 1
            else:
                raise SystemExit(f"a store truncated to {cut} bytes was accepted")
    print(len(cuts), refused)
    """
)


def test_truncation_sweep_gives_errors_never_signals(small_store, tmp_path):
    """Every 4 KB (and odd sizes) of a store file: the local client and verify refuse it with a StoreError;
    the process ends normally (a SIGBUS would end it with -7 and no message)."""
    done = subprocess.run(
        [sys.executable, "-c", SWEEP, str(small_store), str(tmp_path), "4096"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    cuts, refused = map(int, done.stdout.split())
    assert cuts > 500 and refused == 2 * cuts


@pytest.mark.parametrize("command", ["verify", "serve"])
def test_cli_on_a_truncated_store_is_one_error_line(small_store, tmp_path, command):
    copy = tmp_path / "cut.lmdb"
    shutil.copyfile(small_store, copy)
    os.truncate(copy, 7 * 4096)
    args = [command, str(copy)] if command == "verify" else [command, "--store", str(copy), "--port", "0"]
    done = subprocess.run([sys.executable, "-m", "nasbench._cli", *args], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and done.returncode > 0, "ended by a signal"
    assert "is truncated: 28,672 bytes where the store needs" in done.stderr
    if command == "verify":
        assert len(done.stderr.strip().splitlines()) == 1


def test_an_empty_file_is_a_store_error(tmp_path):
    empty = tmp_path / "empty.lmdb"
    empty.touch()
    with pytest.raises(StoreError, match="is empty"):
        api.NASBench(str(empty))


_OPEN_AS_USER = """
import sys
from nasbench import api
from nasbench.errors import NasbenchError
try:
    api.NASBench(sys.argv[1])
except NasbenchError as error:
    print(type(error).__name__, error)
"""


@pytest.mark.parametrize(
    ("name", "what"),
    [("unreadable.lmdb", "the store"), ("unreadable", "the store"), ("unreadable.tfrecord", "the dataset file")],
)
def test_a_store_its_user_cannot_read_is_one_store_error(small_store, name, what):
    """Run as an unprivileged user (root reads anything): whatever the file's name, one StoreError saying so, never
    a raw PermissionError (before, the check sniffing for a .tfrecord raised it)."""
    folder = Path(tempfile.mkdtemp(prefix="nasbench-unreadable-"))
    try:
        folder.chmod(0o755)
        unreadable = folder / name
        shutil.copy(small_store, unreadable)
        unreadable.chmod(0)
        env = {**os.environ, "NASBENCH_CACHE_DIR": str(folder / "cache"), "HOME": str(folder)}
        done = subprocess.run(
            [*AS_NOBODY, sys.executable, "-c", _OPEN_AS_USER, str(unreadable)],
            capture_output=True, text=True, env=env, timeout=300, cwd=folder,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"StoreError cannot read {what} {unreadable}: permission denied"
    finally:
        shutil.rmtree(folder)


def _flip(path, offset):
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0x40]))


def test_a_flipped_byte_is_never_served_locally(small_store, tmp_path):
    copy = tmp_path / "copy.lmdb"
    shutil.copyfile(small_store, copy)
    api.NASBench(str(copy)).close()  # verified and recorded once
    store = Store.open(copy)
    offset = store.manifest["arrays"]["metrics"]["offset"] + 8 * random.Random(0).randrange(1000)
    store.close()
    _flip(copy, offset)
    with pytest.raises(StoreError, match="checksum mismatch in array 'metrics'"):
        api.NASBench(str(copy))


def test_verification_records_stay_bounded(tmp_path, monkeypatch):
    """One record per file identity ever verified: past the bound the oldest half is forgotten (a later open of
    such a file verifies again), the newest kept."""
    from nasbench._store import integrity

    monkeypatch.setattr(integrity, "MAX_RECORDS", 8)
    folder = tmp_path / "verified"
    folder.mkdir()
    for index in range(9):
        integrity.record(folder, f"identity-{index}", tmp_path / f"{index}.lmdb")
        os.utime(folder / f"identity-{index}.json", (index, index))  # written in this order
    assert sorted(path.name for path in folder.iterdir()) == [f"identity-{index}.json" for index in range(5, 9)]
    assert integrity.is_recorded(folder, "identity-8") and not integrity.is_recorded(folder, "identity-0")


def _get_info_status(address):
    with grpc.insecure_channel(address) as channel:
        try:
            pb_grpc.NasbenchStub(channel).GetInfo(pb.GetInfoRequest(), timeout=5)
        except grpc.RpcError as error:
            return error.code(), error.details()
    return grpc.StatusCode.OK, ""


def test_store_damaged_under_a_running_server_is_not_served(small_store, tmp_path):
    copy = tmp_path / "copy.lmdb"
    shutil.copyfile(small_store, copy)
    server = ServerProcess(copy, tmp_path).wait_serving()
    try:
        assert _get_info_status(server.address)[0] == grpc.StatusCode.OK
        store = Store.open(copy, verify=False)
        offset = store.manifest["arrays"]["metrics"]["offset"] + 64
        store.close()
        _flip(copy, offset)
        assert wait_for(lambda: "no longer verifies" in _get_info_status(server.address)[1])
        code, details = _get_info_status(server.address)
        assert code == grpc.StatusCode.UNAVAILABLE
        assert "no longer verifies" in details and "checksum mismatch in array 'metrics'" in details
        _flip(copy, offset)  # put the byte back: it verifies again, and is served again
        assert wait_for(lambda: _get_info_status(server.address)[0] == grpc.StatusCode.OK)
        assert server.process.poll() is None
    finally:
        server.stop()
    messages = [event.get("msg") for event in log_events(server.log)]
    assert "store no longer verifies: refusing every call" in messages
    assert "store changed under the server but still verifies: serving again" in messages


def test_store_truncated_under_a_running_server_is_refused_with_a_log_line(small_store, tmp_path):
    copy = tmp_path / "copy.lmdb"
    shutil.copyfile(small_store, copy)
    server = ServerProcess(copy, tmp_path).wait_serving()
    try:
        os.truncate(copy, 64 * 1024)
        assert wait_for(lambda: "truncated" in _get_info_status(server.address)[1])
        assert _get_info_status(server.address)[0] == grpc.StatusCode.UNAVAILABLE
        assert server.process.poll() is None, "the server stays up, refusing calls, and says why"
    finally:
        server.stop()
    changes = [event for event in log_events(server.log) if event.get("msg", "").startswith("store changed")]
    assert changes and "truncated from" in changes[0]["change"]
