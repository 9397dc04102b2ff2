"""Regenerate the committed Python code of every .proto file here (run after editing a .proto).

Usage: ``python proto/generate.py [OUTPUT_ROOT]`` (default: the repository's ``client/`` folder). A test
regenerates into a temporary folder and fails when the committed files differ.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parent
SERVICE_PROTOS = {"nasbench/v1/nasbench.proto"}


def proto_files() -> list[str]:
    return sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))


def mypy_grpc_plugin() -> str:
    """mypy-protobuf's protoc plugin, which types the service code (installed beside this interpreter)."""
    name = "protoc-gen-mypy_grpc"
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found: pip install 'nasbench-server[dev]' (it comes with mypy-protobuf)")
    return found


def generate(output_root: Path) -> list[Path]:
    """Write ``*_pb2.py``/``*_pb2.pyi`` (and ``*_pb2_grpc.py``/``*_pb2_grpc.pyi`` for services) under
    ``output_root``."""
    output_root.mkdir(parents=True, exist_ok=True)
    for name in proto_files():
        args = ["protoc", f"-I{PROTO_ROOT}", f"--python_out={output_root}", f"--pyi_out={output_root}"]
        if name in SERVICE_PROTOS:
            args.append(f"--grpc_python_out={output_root}")
            args += [f"--plugin=protoc-gen-mypy_grpc={mypy_grpc_plugin()}", f"--mypy_grpc_out=quiet:{output_root}"]
        if protoc.main([*args, str(PROTO_ROOT / name)]) != 0:
            raise RuntimeError(f"protoc failed on {name}")
    return sorted(p for p in output_root.rglob("*_pb2*.py*"))


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else PROTO_ROOT.parent / "client"
    for path in generate(target):
        print(path)
