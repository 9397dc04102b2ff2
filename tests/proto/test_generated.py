"""The committed generated code matches the .proto files (regenerated with the pinned grpcio-tools)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _generator():
    spec = importlib.util.spec_from_file_location("proto_generate", ROOT / "proto" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    generated = _generator().generate(tmp_path)
    assert generated, "no generated files"
    for path in generated:
        committed = ROOT / "client" / path.relative_to(tmp_path)
        assert committed.exists(), f"{committed} is not committed: run python proto/generate.py"
        assert committed.read_text() == path.read_text(), f"{committed} is stale: run python proto/generate.py"
