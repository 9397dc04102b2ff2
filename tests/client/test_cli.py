"""The ``nasbench`` command when an extra is not installed: the install hint, whatever arguments follow."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nasbench import _cli

HINT = "this command needs the 'builder' extra: pip install 'nasbench-server[builder]'"


@pytest.fixture
def without_builder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Imports of the builder package fail, as in an installation without the 'builder' extra."""
    monkeypatch.setitem(sys.modules, "nasbench_builder", None)
    monkeypatch.setitem(sys.modules, "nasbench_builder.cli", None)


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["build", "SRC", "DST"], id="positionals"),
        pytest.param(["build", "--workers", "3", "a.tfrecord", "b.lmdb"], id="options"),
        pytest.param(["build"], id="nothing"),
        pytest.param(["synth", "--max-vertices", "4", "out.tfrecord"], id="synth"),
        pytest.param(["verify", "-x", "--", "store.lmdb"], id="dash-dash"),
    ],
)
def test_missing_extra_prints_the_install_hint(without_builder: None, argv: list[str], capsys) -> None:
    assert _cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == f"nasbench {argv[0]}: {HINT}"
    assert captured.out == ""


def test_missing_extra_help_names_the_extra(without_builder: None, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _cli.main(["build", "--help"])
    assert exit_info.value.code == 0
    assert "pip install 'nasbench-server[builder]'" in " ".join(capsys.readouterr().out.split())


def test_installed_commands_still_reject_unknown_arguments(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _cli.main(["verify", "--no-such-flag", "store.lmdb"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err


def test_missing_extra_in_a_fresh_interpreter() -> None:
    """The real entry point in a fresh process where the builder package cannot be imported."""
    script = "import sys; sys.modules['nasbench_builder'] = None; from nasbench._cli import main; sys.exit(main())"
    done = subprocess.run([sys.executable, "-c", script, "build", "SRC", "DST"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip() == f"nasbench build: {HINT}"


_IMPORTED = """
import sys
from nasbench import _cli
try:
    _cli.main(sys.argv[1:])
except SystemExit:
    pass
print("\\n".join(sorted(sys.modules)))
"""


def _modules_after(*argv: str) -> set[str]:
    done = subprocess.run([sys.executable, "-c", _IMPORTED, *argv], capture_output=True, text=True, check=True)
    return set(done.stdout.split())


def test_help_lists_every_command_without_importing_any() -> None:
    done = subprocess.run([sys.executable, "-m", "nasbench._cli", "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    for name, (_, _, summary) in _cli.SUBCOMMANDS.items():
        assert name in done.stdout and summary[:40] in " ".join(done.stdout.split())
    imported = _modules_after("--help")
    packages = {"nasbench_server", "nasbench_builder", "nasbench_experiments", "nasbench_bench"}
    assert not {module.split(".")[0] for module in imported} & packages
    assert not {"numpy", "grpc", "google.protobuf"} & imported


def test_health_imports_nothing_heavy() -> None:
    """The container probe, every few seconds in every replica: HTTP/2 alone; no gRPC, protobuf or numpy, nothing of
    the store or the server."""
    imported = _modules_after("health", "--address", "127.0.0.1:9", "--timeout", "0.2")
    ours = {module for module in imported if module.startswith("nasbench")}
    assert ours == {"nasbench", "nasbench._cli", "nasbench.errors", "nasbench_server", "nasbench_server.endpoint",
                    "nasbench_server.health"}
    assert not {"numpy", "grpc", "google.protobuf"} & imported and "h2.connection" in imported
