"""``nasbench serve --dataset only108`` against a real HTTP mirror on 127.0.0.1: the server process downloads the
file, verifies it, builds the store once (health NOT_SERVING meanwhile, progress in the JSON log), serves it, and a
second start neither downloads nor builds."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from nasbench import api
from nasbench.v1 import nasbench_pb2 as pb
from nasbench.v1 import nasbench_pb2_grpc as pb_grpc
from nasbench_builder import prepare, synthetic
from nasbench_server.process import ServerProcess, free_ports
from tests.mirror import Mirror

FILE = "nasbench_only108.tfrecord"


@pytest.fixture(scope="module")
def only108(tmp_path_factory: pytest.TempPathFactory, space_table) -> bytes:
    """A synthetic file in the format of nasbench_only108.tfrecord: cells of up to 4 vertices, 108 epochs."""
    path = tmp_path_factory.mktemp("only108") / FILE
    synthetic.write_tfrecord(synthetic.synthesize(epochs=(108,), max_vertices=4, seed=5, table=space_table), path)
    return path.read_bytes()


def _log(server: ServerProcess) -> list[dict]:
    return [json.loads(line) for line in server.log.read_text().splitlines() if line.startswith("{")]


def _health(address: str) -> int | None:
    with grpc.insecure_channel(address) as channel:
        try:
            return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2).status
        except grpc.RpcError:
            return None


def _wait_port(server: ServerProcess, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while not server.port_file.exists():
        assert server.process.poll() is None, server.log.read_text()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return f"127.0.0.1:{int(server.port_file.read_text())}"


def test_serve_dataset_downloads_builds_once_and_serves(tmp_path: Path, space_cache: Path, only108: bytes) -> None:
    digest = hashlib.sha256(only108).hexdigest()
    env = {"NASBENCH_CACHE_DIR": str(space_cache)}
    with Mirror({FILE: only108}, block_delay_s=0.2) as mirror:  # about a second: health is watched meanwhile
        flags = ["--dataset", "only108", "--dataset-url", mirror.url(FILE), "--dataset-sha256", digest]
        first = ServerProcess(None, tmp_path, extra=flags, env=env)
        try:
            address = _wait_port(first)
            downloaded = space_cache / "datasets" / FILE
            states = []
            while not downloaded.exists():
                states.append(_health(address))
                time.sleep(0.05)
            assert health_pb2.HealthCheckResponse.NOT_SERVING in states
            assert health_pb2.HealthCheckResponse.SERVING not in states
            first.wait_serving()
            with grpc.insecure_channel(first.address) as channel:
                info = pb_grpc.NasbenchStub(channel).GetInfo(pb.GetInfoRequest(), timeout=10)
            assert info.cells == 91 and list(info.epochs) == [108] and info.synthetic  # the mirror serves synth output
            nasbench = api.NASBench(f"grpc://{first.address}", seed=0)
            spec = api.ModelSpec([[0, 1, 1], [0, 0, 1], [0, 0, 0]], ["input", "conv3x3-bn-relu", "output"])
            assert 0 < nasbench.query(spec)["validation_accuracy"] < 1
            nasbench.close()
        finally:
            assert first.stop() == 0
        assert [request.status for request in mirror.requests] == [200]
        entries = _log(first)
        progress = [entry for entry in entries if entry["msg"].startswith(f"downloading {FILE}")]
        assert len(progress) >= 2 and progress[-1]["percent"] == 100.0 and progress[-1]["bytes"] == len(only108)
        messages = [entry["msg"] for entry in entries]
        assert "building the store (once)" in messages and "built the store" in messages
        assert messages.index("built the store") < messages.index("serving")
        store = prepare.dataset_store_path("only108", space_cache, digest)
        assert store.exists() and [p.name for p in (space_cache / "datasets").iterdir()] == [FILE]

        second = ServerProcess(None, tmp_path, extra=flags, env=env).wait_serving(timeout=30)
        assert second.stop() == 0
        assert len(mirror.requests) == 1, "the second start does not download again"
        messages = [entry["msg"] for entry in _log(second)]
        assert "serving" in messages
        assert not any(message.startswith(("downloading", "building", "preparing")) for message in messages)


def test_serve_dataset_from_environment_with_workers(tmp_path: Path, space_cache: Path, only108: bytes) -> None:
    """NASBENCH_DATASET, NASBENCH_DATASET_URL, NASBENCH_DATASET_SHA256 (as in a container); with several workers
    the supervisor prepares the store once before starting them."""
    with Mirror({f"mirror/{FILE}": only108}) as mirror:
        env = {
            "NASBENCH_CACHE_DIR": str(space_cache),
            "NASBENCH_DATASET": "only108",
            "NASBENCH_DATASET_URL": mirror.url(f"mirror/{FILE}"),
            "NASBENCH_DATASET_SHA256": hashlib.sha256(only108).hexdigest(),
        }
        port = free_ports()[0]
        server = ServerProcess(None, tmp_path, port=port, extra=["--workers", "2"], env=env).wait_serving()
        try:
            with grpc.insecure_channel(server.address) as channel:
                info = pb_grpc.NasbenchStub(channel).GetInfo(pb.GetInfoRequest(), timeout=10)
            assert info.cells == 91 and info.synthetic
        finally:
            assert server.stop() == 0
        assert len(mirror.requests) == 1


def test_stop_during_the_download_exits_promptly_and_keeps_the_partial_file(
    tmp_path: Path, space_cache: Path, tiny_tfrecord: Path
) -> None:
    payload = tiny_tfrecord.read_bytes()  # 23 blocks of 16 KiB at 0.3 s each: about 7 s
    flags = ["--dataset", "only108", "--dataset-sha256", hashlib.sha256(payload).hexdigest()]
    with Mirror({FILE: payload}, block_delay_s=0.3) as mirror:
        flags += ["--dataset-url", mirror.url(FILE)]
        server = ServerProcess(None, tmp_path, extra=flags, env={"NASBENCH_CACHE_DIR": str(space_cache)})
        partial = space_cache / "datasets" / f"{FILE}.partial"
        deadline = time.monotonic() + 30
        while not (partial.exists() and partial.stat().st_size > 0):
            assert server.process.poll() is None and time.monotonic() < deadline, server.log.read_text()
            time.sleep(0.05)
        started = time.monotonic()
        assert server.stop() == 0
        assert time.monotonic() - started < 5, "the download stops with the server"
    assert partial.exists() and not (space_cache / "datasets" / FILE).exists()
    assert not prepare.dataset_store_path("only108", space_cache, hashlib.sha256(payload).hexdigest()).exists()


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        pytest.param(["--dataset", "only108", "--store", "x.lmdb"], "either --store or --dataset", id="both"),
        pytest.param(["--dataset-url", "http://127.0.0.1:1/x"], "need --dataset", id="url-alone"),
    ],
)
def test_serve_dataset_flag_errors(arguments: list[str], expected: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nasbench._cli", "serve", "--port", "0", *arguments], capture_output=True, text=True
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and expected in lines[0]


def test_serve_dataset_unreachable_mirror_is_one_line(tmp_path: Path, space_cache: Path) -> None:
    url = f"http://127.0.0.1:{free_ports()[0]}/{FILE}"
    result = subprocess.run(
        [sys.executable, "-m", "nasbench._cli", "serve", "--port", "0", "--dataset", "only108", "--dataset-url", url],
        capture_output=True,
        text=True,
        env={**os.environ, "NASBENCH_CACHE_DIR": str(space_cache)},
        timeout=60,
    )
    errors = [line for line in result.stderr.splitlines() if not line.startswith("{")]
    assert result.returncode == 2 and len(errors) == 1 and errors[0].startswith("nasbench serve: error: cannot reach")
    assert not (space_cache / "datasets" / FILE).exists() and not list((space_cache / "stores").glob("*.lmdb"))


def test_prepare_downloads_and_builds_then_exits(tmp_path: Path, space_cache: Path, only108: bytes) -> None:
    digest = hashlib.sha256(only108).hexdigest()
    with Mirror({FILE: only108}) as mirror:
        command = [sys.executable, "-m", "nasbench._cli", "serve", "--prepare", "--dataset", "only108"]
        command += ["--dataset-url", mirror.url(FILE), "--dataset-sha256", digest]
        env = {**os.environ, "NASBENCH_CACHE_DIR": str(space_cache)}
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
        assert result.returncode == 0, result.stderr
        assert prepare.dataset_store_path("only108", space_cache, digest).exists() and len(mirror.requests) == 1
