"""A store overwritten in place under a running server (as ``dd conv=notrunc`` or ``rsync --inplace`` do): no
answer ever comes from changed bytes (``nasbench_server.store_guard``). With a read lease (the file's owner, or
CAP_LEASE) the writer waits until the server has stopped answering; without one the server serves a private
sealed copy; ``--store-guard lease`` where no lease can be taken is one line at start. Permission cases run as
an unprivileged user (``setpriv``), as CI runs as root."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
import pytest

from nasbench._cells import keytable
from nasbench._store.reader import Store
from nasbench.v1 import nasbench_pb2 as pb
from nasbench.v1 import nasbench_pb2_grpc as pb_grpc
from nasbench_builder import synthetic, writer
from nasbench_server.process import ServerProcess
from tests.polling import wait_for
from tests.reliability.conftest import log_events
from tests.unprivileged import AS_NOBODY as NOBODY


@pytest.fixture(scope="module")
def other_store(tmp_path_factory, small_store, space_table) -> Path:
    """The small store's cells with other values (another seed): a file of the same size and layout, so that
    writing it over the small store in place changes the metrics each cell is served with."""
    other = tmp_path_factory.mktemp("other") / "other.lmdb"
    dataset = synthetic.synthesize(max_vertices=5, seed=4, table=space_table).dataset
    writer.write_store(dataset, other)
    mine, theirs = Store.open(small_store), Store.open(other)
    try:
        assert os.path.getsize(other) == os.path.getsize(small_store)
        assert theirs.manifest["arrays"] == {
            name: {**spec, "xxh3_128": theirs.manifest["arrays"][name]["xxh3_128"]}
            for name, spec in mine.manifest["arrays"].items()
        }
        assert (theirs.keys == mine.keys).all() and (theirs.metrics != mine.metrics).any()
    finally:
        mine.close()
        theirs.close()
    return other


@pytest.fixture
def shared(tmp_path) -> Path:
    """A folder an unprivileged server can read and write (pytest's own are private to root), with this
    machine's key table, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="nasbench-shared-"))
    folder.chmod(0o777)
    table = keytable.default_path()
    if table.exists():
        shutil.copy(table, folder / table.name)
        (folder / table.name).chmod(0o644)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _server(store: Path, folder: Path, guard: str | None, unprivileged: bool) -> ServerProcess:
    extra = [] if guard is None else ["--store-guard", guard]
    wrapper = NOBODY if unprivileged else None
    env = {"NASBENCH_CACHE_DIR": str(folder)}
    return ServerProcess(store, folder, extra=extra, env=env, wrapper=wrapper).wait_serving()


_counting = threading.Lock()


def _ask(address: str, keys: list[int], expected: dict[int, bytes], stop: threading.Event, seen: dict) -> None:
    """GetMetrics of random cells until ``stop``; every answer is compared with the original store's values."""
    rng = random.Random(threading.get_ident())

    def count(outcome: str) -> None:
        with _counting:
            seen[outcome] = seen.get(outcome, 0) + 1

    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.NasbenchStub(channel)
        while not stop.is_set():
            key = rng.choice(keys)
            try:
                cell = stub.GetMetrics(pb.GetMetricsRequest(cell=pb.CellRef(key=key)), timeout=10)
            except grpc.RpcError as error:
                count(error.code().name)
                continue
            count("right" if cell.key == key and cell.metrics == expected[key] else "wrong")


def _overwrite(path: Path, source: Path) -> None:
    """Write ``source`` over ``path`` in place, in 64 KB pieces, as ``dd conv=notrunc bs=64K`` does."""
    data = source.read_bytes()
    with open(path, "r+b") as handle:  # with a lease: returns once the server has let go of it
        for start in range(0, len(data), 64 << 10):
            handle.write(data[start : start + (64 << 10)])
            handle.flush()
            time.sleep(0.005)


@pytest.mark.parametrize(
    ("guard", "unprivileged", "served_by"),
    [
        pytest.param(None, False, "lease", id="default-as-owner"),
        pytest.param(None, True, "copy", id="default-as-another-user"),
        pytest.param("copy", False, "copy", id="copy"),
    ],
)
def test_a_store_overwritten_in_place_never_answers_from_changed_bytes(
    small_store, other_store, shared, guard, unprivileged, served_by
):
    """Two clients ask for cells all along while another store is written over the served one, in place: every
    answer is the original value (none from the new bytes, none torn). With a lease the server stops answering
    until the file verifies again (never: it holds other data), and answers again once the original is written
    back; with a private copy it answers the original values throughout and says the file changed."""
    live = shared / "live.lmdb"
    shutil.copyfile(small_store, live)
    live.chmod(0o644)
    original = Store.open(small_store)
    keys = original.keys.tolist()
    expected = {key: original.metrics[row].tobytes() for row, key in enumerate(keys)}
    original.close()
    server = _server(live, shared, guard, unprivileged)
    stop, seen = threading.Event(), {}
    clients = [threading.Thread(target=_ask, args=(server.address, keys, expected, stop, seen)) for _ in range(2)]
    try:
        for client in clients:
            client.start()
        assert wait_for(lambda: seen.get("right", 0) > 200)
        _overwrite(live, other_store)
        time.sleep(2.0)  # the server noticed (watch, lease) or not (copy): clients keep asking meanwhile
        if served_by == "lease":
            assert wait_for(lambda: "no longer verifies" in _details(server.address))
            _overwrite(live, small_store)
            assert wait_for(lambda: _details(server.address) == "")
            right = seen.get("right", 0)
            assert wait_for(lambda: seen.get("right", 0) > right + 200)
        stop.set()
        for client in clients:
            client.join(30)
    finally:
        stop.set()
        server.stop()
    assert seen.get("wrong", 0) == 0, seen
    events = log_events(server.log)
    (opened,) = [event for event in events if event.get("msg") == "serving"]
    assert opened["store_guard"] == served_by
    messages = [event.get("msg") for event in events]
    if served_by == "lease":
        assert set(seen) <= {"right", "UNAVAILABLE"}
        assert "store opened for writing under the server: suspended" in messages
        assert "store no longer verifies: refusing every call" in messages
    else:
        assert set(seen) == {"right"}, "a private copy answers throughout"
        assert any(str(message).startswith("the store file changed on disk: this server keeps") for message in messages)
    if unprivileged:
        (fallback,) = [event for event in events if event.get("msg", "").startswith("no read lease on the store")]
        assert fallback["reason"].startswith("the file belongs to uid 0 and this server runs as uid 65534")


def _details(address: str) -> str:
    with grpc.insecure_channel(address) as channel:
        try:
            pb_grpc.NasbenchStub(channel).GetInfo(pb.GetInfoRequest(), timeout=5)
        except grpc.RpcError as error:
            return error.details() or error.code().name
    return ""


def test_lease_where_none_can_be_taken_is_one_line(small_store, shared):
    """``--store-guard lease`` as a user who neither owns the store nor has CAP_LEASE: one line naming both."""
    live = shared / "live.lmdb"
    shutil.copyfile(small_store, live)
    live.chmod(0o644)
    serve = ["serve", "--store", str(live), "--port", "0", "--store-guard", "lease"]
    done = subprocess.run(
        [*NOBODY, sys.executable, "-m", "nasbench._cli", *serve],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NASBENCH_CACHE_DIR": str(shared)},
    )
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last == (
        f"nasbench serve: error: --store-guard lease: cannot take a read lease on {live}: the file belongs to uid 0 "
        "and this server runs as uid 65534 without CAP_LEASE (make the server's user own the file, or grant "
        "CAP_LEASE)"
    )


def test_workers_share_one_private_copy(small_store, shared):
    """``--workers 2 --store-guard copy``: the supervisor copies the store once; both workers map that copy."""
    from nasbench_server.process import free_ports

    live = shared / "live.lmdb"
    shutil.copyfile(small_store, live)
    server = ServerProcess(
        live,
        shared,
        port=free_ports()[0],
        extra=["--workers", "2", "--store-guard", "copy"],
        env={"NASBENCH_CACHE_DIR": str(shared)},
    ).wait_serving()
    try:
        from nasbench_bench.rpc import descendants

        workers = [pid for pid in descendants(server.process.pid) if "memfd:nasbench-store" in _maps(pid)]
        assert len(workers) == 2
        inodes = {_memfd_inode(pid) for pid in workers}
        assert len(inodes) == 1, "one copy, mapped by both"
        with grpc.insecure_channel(server.address) as channel:
            assert pb_grpc.NasbenchStub(channel).GetInfo(pb.GetInfoRequest(), timeout=10).cells == 2532
    finally:
        server.stop()


def _maps(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return ""


def _memfd_inode(pid: int) -> str:
    (line,) = {line.split()[4] for line in _maps(pid).splitlines() if "memfd:nasbench-store" in line}
    return line
