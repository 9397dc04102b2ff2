"""The main job: ``nasbench serve`` with no store builds the synthetic full-scale store once, says it is
synthetic, and serves it; later starts reuse it. Several workers share one port."""

from __future__ import annotations

import shutil

import grpc
import pytest

from nasbench import space
from nasbench.v1 import nasbench_pb2 as pb
from nasbench.v1 import nasbench_pb2_grpc as pb_grpc
from nasbench_server.process import ServerProcess, free_ports


def _info(address: str) -> pb.Info:
    # a channel of its own subchannels: a new connection each time (SO_REUSEPORT spreads connections)
    with grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
        return pb_grpc.NasbenchStub(channel).GetInfo(pb.GetInfoRequest(), timeout=10)


@pytest.fixture()
def cache_dir(tmp_path, space_table):
    """A fresh cache folder holding only the search-space table (its computation is tested elsewhere)."""
    folder = tmp_path / "cache"
    folder.mkdir()
    shutil.copy(space.default_cache_dir() / "space-v1.npz", folder / "space-v1.npz")
    return folder


def test_serve_without_a_store_builds_and_serves_the_synthetic_default(tmp_path, cache_dir) -> None:
    env = {"NASBENCH_CACHE_DIR": str(cache_dir)}
    first = ServerProcess(None, tmp_path, env=env).wait_serving(timeout=300)
    try:
        info = _info(first.address)
        assert info.synthetic and info.cells == 423_624 and list(info.epochs) == [4, 12, 36, 108]
    finally:
        first.stop()
    log = first.log.read_text()
    assert "building the embedded SYNTHETIC store" in log and "serving SYNTHETIC data" in log
    assert "nasbench build nasbench_full.tfrecord" in log, "says how to serve the real dataset"
    second = ServerProcess(None, tmp_path, env=env).wait_serving(timeout=60)
    try:
        assert _info(second.address).checksum == info.checksum
    finally:
        second.stop()
    assert "building the embedded" not in second.log.read_text()


def test_workers_share_one_port(small_store, tmp_path) -> None:
    port = free_ports()[0]
    server = ServerProcess(small_store, tmp_path, port=port, extra=["--workers", "2"]).wait_serving()
    try:
        pids = {_info(f"127.0.0.1:{port}").pid for _ in range(24)}  # a new connection each time
        assert len(pids) == 2 and server.process.pid not in pids
    finally:
        assert server.stop() == 0
