"""torch stays optional: the base install, the server and the container image never need it, and importing the
API, the server or the command line never loads it (only `nasbench train`, `NASBench.evaluate` and
`nasbench.model.build` do)."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "code",
    [
        pytest.param("import nasbench.api", id="api"),
        pytest.param("import nasbench_server.app, nasbench_server.cli, nasbench_server.servicer", id="server"),
        pytest.param("from nasbench import _cli; _cli._overview()", id="command-line"),
        pytest.param(
            "from nasbench import _cli\ntry:\n    _cli.main(['train', '--help'])\nexcept SystemExit:\n    pass",
            id="train-help",
        ),
        pytest.param(
            "from nasbench import api, model\n"
            "model.network_stats(api.ModelSpec([[0, 1], [0, 0]], ['input', 'output']))",
            id="network-stats",
        ),
    ],
)
def test_import_loads_no_torch(code: str) -> None:
    check = f"{code}\nimport sys\nassert 'torch' not in sys.modules, 'torch was imported'"
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr


def test_torch_is_required_only_by_the_train_extra() -> None:
    """From the installed metadata: torch only under extra 'train', which only 'dev' includes."""
    requirements = importlib.metadata.requires("nasbench-server") or []
    torch = [r for r in requirements if r.startswith("torch")]
    assert torch and all('extra == "train"' in r for r in torch)
    including = [r for r in requirements if r.startswith("nasbench-server[") and "train" in r.split("]")[0]]
    assert including and all('extra == "dev"' in r for r in including)
    assert "torch" not in (ROOT / "docker" / "requirements.lock").read_text()  # the image's exact install
