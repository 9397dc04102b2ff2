"""The builder's command line: help, arguments, exit codes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from nasbench import _cli
from nasbench._store.reader import Store
from nasbench_builder import tfrecord


@pytest.mark.parametrize("command", ["build", "synth", "verify"])
def test_help(command: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _cli.main([command, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: nasbench {command}" in capsys.readouterr().out


def test_no_command_prints_help(capsys) -> None:
    assert _cli.main([]) == 2
    assert "build" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["synth", "x.tfrecord", "--epochs", "108,50"], "budgets must be among", id="bad-budget"),
        pytest.param(["synth", "x.tfrecord", "--epochs", "a"], "comma-separated integers", id="not-int"),
        pytest.param(["synth", "x.tfrecord", "--max-vertices", "9"], "invalid choice", id="9-vertices"),
        pytest.param(["build", "a", "b", "--workers", "0"], "must be at least 1", id="0-workers"),
    ],
)
def test_bad_arguments(args: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _cli.main(args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_synth_then_build(tmp_path: Path) -> None:
    """A 108-epoch file of the cells up to 4 vertices, then its store."""
    records = tmp_path / "only108.tfrecord"
    assert _cli.main(["synth", str(records), "--epochs", "108", "--max-vertices", "4", "--seed", "5"]) == 0
    payloads = [p for _, _, p in tfrecord.read_records(records)]
    assert len(payloads) == 91 * 3
    assert payloads[0].startswith(b'["') and b", 108, " in payloads[0]
    assert _cli.main(["synth", str(records)]) == 2  # exists, no --force
    store = tmp_path / "s.lmdb"
    assert _cli.main(["build", str(records), str(store)]) == 0
    opened = Store.open(store)
    assert opened.cells == 91 and opened.epochs == (108,)
    opened.close()


def test_missing_source(tmp_path: Path, capsys) -> None:
    assert _cli.main(["build", str(tmp_path / "none.tfrecord"), str(tmp_path / "s.lmdb")]) == 2
    assert "none.tfrecord: no such file" in capsys.readouterr().err


@pytest.mark.slow
def test_full_scale_108_file_builds_to_the_whole_space(tmp_path: Path) -> None:
    """The store of a full-scale synthetic 108-epoch file (1,270,872 records) holds the 423,624 cells whose
    sorted hashes give the reference digest."""
    records = tmp_path / "only108.tfrecord"
    store_path = tmp_path / "only108.lmdb"
    assert _cli.main(["synth", str(records), "--epochs", "108"]) == 0
    assert _cli.main(["build", str(records), str(store_path)]) == 0
    store = Store.open(store_path, verify=True)
    try:
        assert store.cells == 423_624
        assert store.manifest["source"]["records"] == 1_270_872
        hexes = sorted(store.hashes[row].tobytes().hex() for row in range(store.cells))
        assert hashlib.sha256("\n".join(hexes).encode()).hexdigest() == (
            "a7f10bf770c1b5b8a221e37824e42b3b1a237a5d21ccf545bbe8e23abd933403"  # the original enumeration
        )
    finally:
        store.close()
