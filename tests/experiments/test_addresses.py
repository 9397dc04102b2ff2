"""One meaning per address, at every entry point: ``api.NASBench``, ``aio.AsyncNASBench.connect``, the analyses'
loader (``columns.load``), ``nasbench analyze --store/--target``, ``nasbench compare --store/--target`` and
``nasbench serve --store``.

The server serves the small store (2,532 cells); the local forms name the tiny dataset (91 cells), as a store and
as an original .tfrecord file. So each entry point shows which dataset a form meant by the cells it found: a
server form that were read as a file, or a file read as a server, would fail or count wrong."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from nasbench import _cli, aio, api
from nasbench._backends import address
from nasbench_experiments.analysis import columns

SMALL, TINY = 2532, 91


@pytest.fixture(scope="module")
def served(small_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from nasbench_server.process import ServerProcess

    process = ServerProcess(small_store, tmp_path_factory.mktemp("served")).wait_serving()
    try:
        yield process.address  # 127.0.0.1:port
    finally:
        process.stop()


@pytest.fixture(scope="module")
def forms(served: str, tiny_store: Path, tiny_tfrecord: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """name -> (text, kind, cells it names)."""
    folder = tmp_path_factory.mktemp("forms")
    record_file = folder / "tiny_copy.tfrecord"
    shutil.copy2(tiny_tfrecord, record_file)  # built into a store next to it on first use
    return {
        "grpc-url": (f"grpc://{served}", "server", SMALL),
        "host-port": (served, "server", SMALL),
        "host-port-list": (f"{served},{served}", "server", SMALL),
        "store-path": (str(tiny_store), "store", TINY),
        "tfrecord-path": (str(record_file), "tfrecord", TINY),
    }


def _api(text: str, tmp: Path) -> object:
    nasbench = api.NASBench(text)
    try:
        return len(nasbench.hash_iterator())
    finally:
        nasbench.close()


def _aio(text: str, tmp: Path) -> object:
    async def count() -> int:
        async with await aio.AsyncNASBench.connect(text) as nasbench:
            return len([module_hash async for module_hash in nasbench.hash_iterator()])

    return asyncio.run(count())


def _columns(text: str, tmp: Path) -> object:
    return columns.load(text).cells


def _analyze(flag: str) -> Callable[[str, Path], object]:
    def run(text: str, tmp: Path) -> object:
        out = tmp / f"analyze{flag}"
        assert _cli.main(["analyze", "summary", flag, text, "--out", str(out), "--no-plots"]) == 0
        return json.loads((out / "results.json").read_text())["data"]["cells"]

    return run


def _compare(flag: str) -> Callable[[str, Path], object]:
    """A one-run study: its summary (final regrets of seed 0, deterministic) tells the datasets apart."""

    def run(text: str, tmp: Path) -> object:
        out = tmp / f"compare{flag}"
        arguments = ["compare", "--optimizers", "rs", "--runs", "1", "--budget", "3e4", "--encoding", "cells"]
        assert _cli.main([*arguments, flag, text, "--out", str(out), "--no-progress"]) == 0
        return (out / "summary.csv").read_text()

    return run


ENTRY_POINTS: dict[str, Callable[[str, Path], object]] = {
    "api.NASBench": _api,
    "aio.AsyncNASBench": _aio,
    "columns.load": _columns,
    "analyze --store": _analyze("--store"),
    "analyze --target": _analyze("--target"),
    "compare --store": _compare("--store"),
    "compare --target": _compare("--target"),
}
COUNTS = {"api.NASBench", "aio.AsyncNASBench", "columns.load", "analyze --store", "analyze --target"}


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_every_form_means_the_same_at_every_entry_point(forms: dict, entry: str, tmp_path: Path) -> None:
    """Forms naming the server find its dataset, forms naming the tiny files find theirs, at each entry point."""
    found = {}
    for form, (text, kind, cells) in forms.items():
        assert address.parse(text).kind == kind
        found[form] = ENTRY_POINTS[entry](text, tmp_path / form)
        if entry in COUNTS:
            assert found[form] == cells, form
    remote = {found[form] for form, (_, kind, _) in forms.items() if kind == "server"}
    local = {found[form] for form, (_, kind, _) in forms.items() if kind != "server"}
    assert len(remote) == len(local) == 1 and remote != local


@pytest.mark.parametrize("form", ["grpc-url", "host-port", "host-port-list", "store-path", "tfrecord-path"])
def test_serve_store_serves_what_the_form_names_or_says_it_cannot(
    forms: dict, form: str, tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server address names no store to serve: one error line; every local form is opened and verified."""
    text, kind, _ = forms[form]
    monkeypatch.setenv("NASBENCH_CACHE_DIR", str(tmp_path))
    code = _cli.main(["serve", "--prepare", "--store", text])
    if kind == "server":
        assert code == 2
        assert f"{text} is a server address, not a store" in capsys.readouterr().err
    else:
        assert code == 0


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("grpc://h:1", "server"),
        ("grpcs://h:1", "server"),
        ("unix:/run/nasbench.sock", "server"),
        ("dns:///nasbench.example:50051", "server"),
        ("h:1", "server"),
        ("10.0.0.1:50051,10.0.0.2:50051", "server"),
        ("[::1]:50051", "server"),
        ("only108", "dataset"),
        ("full", "dataset"),
        ("synthetic", "dataset"),
        ("nasbench_only108.tfrecord", "tfrecord"),
        ("nasbench.lmdb", "store"),
        ("some/folder/store", "store"),
    ],
)
def test_the_one_parser(text: str, kind: str) -> None:
    assert address.parse(text).kind == kind


def test_a_path_on_disk_wins_over_every_other_reading(tmp_path: Path, tiny_store: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("full", "h:1"):
        shutil.copy(tiny_store, tmp_path / name)
        assert address.parse(name).kind == "store"
        assert _api(name, tmp_path) == TINY
