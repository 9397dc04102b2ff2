"""The small store both fuzz targets use (cells of up to 5 vertices, all budgets), built once per machine."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def small_store() -> Path:
    path = Path(tempfile.gettempdir()) / "nasbench-fuzz-small.lmdb"
    if not path.exists():
        from nasbench import space
        from nasbench_builder import synthetic, writer

        data = synthetic.synthesize(max_vertices=5, seed=3, table=space.load_space())
        temp = path.with_name(f"{path.name}.{os.getpid()}")
        writer.write_store(data.dataset, temp, overwrite=True)
        os.replace(temp, path)
    return path
