"""The embedded default dataset: a synthetic, full-scale store (all 423,624 cells, all four budgets), built
once and cached, so that ``nasbench serve`` with no store serves something real-sized at once."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from nasbench import space
from nasbench.cache import default_cache_dir
from nasbench.errors import StoreError
from nasbench.store import layout

log = logging.getLogger("nasbench.server")
SEED = 0


def default_store_path(cache_dir: Path | None = None) -> Path:
    """The cached store's path; its name carries the synthetic model's version and the store schema, so a new
    model or schema builds a new store instead of serving a stale one."""
    try:
        from nasbench_builder.synthetic import SYNTHETIC_VERSION
    except ImportError:
        raise StoreError(
            "no --store given, and the embedded synthetic store needs the builder: "
            "pip install 'nasbench-server[builder]'"
        ) from None
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    name = f"synthetic-v{SYNTHETIC_VERSION}-full-seed{SEED}-schema{layout.SCHEMA_VERSION}.lmdb"
    return root / "stores" / name


def ensure_default_store(cache_dir: Path | None = None) -> Path:
    """The cached synthetic store, built the first time (about 40 s on 2 cores, most of it hashing the space)."""
    path = default_store_path(cache_dir)
    if path.exists():
        return path
    try:
        from nasbench_builder import synthetic, writer
    except ImportError:
        raise StoreError(
            "no --store given, and building the embedded synthetic store needs the builder: "
            "pip install 'nasbench-server[builder]'"
        ) from None
    started = time.perf_counter()
    log.warning(
        "building the embedded SYNTHETIC store once (about a minute); later starts take under a second",
        extra={"path": str(path)},
    )
    table = space.load_space(cache_dir=cache_dir)
    data = synthetic.synthesize(synthetic.ALL_EPOCHS, seed=SEED, table=table)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer.write_store(data.dataset, path, overwrite=True)
    log.info("built the synthetic store", extra={"path": str(path), "seconds": round(time.perf_counter() - started, 1)})
    return path
