"""``nasbench build``, ``nasbench synth`` and ``nasbench verify``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from nasbench.errors import StoreError
from nasbench_builder import source, synthetic, verify, writer

log = logging.getLogger("nasbench.build")


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (workers, sizes, counts)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_build_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Read an original NAS-Bench-101 file (nasbench_full.tfrecord, nasbench_only108.tfrecord or any subset), "
        "check every record, and write a memory-mapped LMDB store. Nothing is written unless every check passes."
    )
    parser.add_argument("source", type=Path, help="the .tfrecord file to read")
    parser.add_argument("store", type=Path, help="the store file to write (e.g. nasbench.lmdb)")
    parser.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1, help="parser processes")
    parser.add_argument("--force", action="store_true", help="replace an existing store (atomically)")


def run_build(args: argparse.Namespace) -> int:
    _setup_logging()
    source.check_source_file(args.source)
    total = args.source.stat().st_size
    # before reading anything: a store takes about a fifth of its source (107 MB of 499 MB, 351 MB of 1.95 GB)
    writer.check_target(args.store, total // 4, overwrite=args.force)
    started = time.perf_counter()
    update, close = source.progress_printer(total)
    log.info("reading %s (%.1f MB) with %d workers", args.source, total / 1e6, args.workers)
    try:
        dataset = source.read_dataset(args.source, workers=args.workers, progress=update)
    finally:
        close()
    manifest = writer.write_store(dataset, args.store, overwrite=args.force)
    log.info(
        "wrote %s: %d cells, epochs %s, from %d records in %.1f s",
        args.store,
        manifest["cells"],
        manifest["epochs"],
        manifest["source"]["records"],
        time.perf_counter() - started,
    )
    return 0


def add_synth_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Write a synthetic dataset in the exact format of the original files: every cell of the space (or those up "
        "to --max-vertices), budgets ascending, three repeats each, plausible values, deterministic by --seed."
    )
    parser.add_argument("output", type=Path, help="the .tfrecord file to write")
    parser.add_argument(
        "--epochs",
        type=_epochs,
        default=synthetic.ALL_EPOCHS,
        help="comma-separated budgets: 4,12,36,108 (like nasbench_full) or 108 (like nasbench_only108)",
    )
    parser.add_argument("--max-vertices", type=int, default=7, choices=range(2, 8), metavar="N", help="2 to 7")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--force", action="store_true", help="replace an existing file")


def _epochs(text: str) -> tuple[int, ...]:
    try:
        budgets = tuple(sorted({int(part) for part in text.split(",")}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not set(budgets) <= set(synthetic.ALL_EPOCHS):
        raise argparse.ArgumentTypeError(f"budgets must be among 4,12,36,108, got {text!r}")
    return budgets


def run_synth(args: argparse.Namespace) -> int:
    _setup_logging()
    if args.output.exists() and not args.force:
        raise StoreError(f"{args.output} already exists; pass --force to replace it")
    started = time.perf_counter()
    data = synthetic.synthesize(args.epochs, args.max_vertices, args.seed)
    expected = data.dataset.cells * len(data.dataset.epochs) * 3
    update, close = _record_progress(expected)
    try:
        count = synthetic.write_tfrecord(data, args.output, progress=update)
    finally:
        close()
    log.info(
        "wrote %s: %d records, %d cells, in %.1f s",
        args.output,
        count,
        data.dataset.cells,
        time.perf_counter() - started,
    )
    return 0


def _record_progress(total: int) -> tuple[Callable[[int], None], Callable[[], None]]:
    if not sys.stderr.isatty():
        return (lambda done: None), (lambda: None)
    from tqdm import tqdm

    bar = tqdm(total=total, unit="records", unit_scale=True, dynamic_ncols=True)

    def update(done: int) -> None:
        bar.update(done - bar.n)

    return update, bar.close


def add_verify_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Re-check a store's checksums and invariants, then print its manifest."
    parser.add_argument("store", type=Path, help="the store file")
    parser.add_argument("--json", action="store_true", help="print the whole manifest as JSON")


def run_verify(args: argparse.Namespace) -> int:
    manifest = verify.verify_store(args.store)
    if args.json:
        print(json.dumps(manifest, indent=2, sort_keys=True))
        return 0
    src = manifest["source"]
    print(f"{args.store}: OK (schema {manifest['schema_version']}, checksum {manifest['checksum']})")
    print(f"  cells: {manifest['cells']:,}   epochs: {manifest['epochs']}   repeats: {manifest['repeats']}")
    print(f"  cells per vertex count: {manifest['cells_per_vertices']}")
    print(f"  source: {src.get('name')}  records: {src.get('records', '-')}  sha256: {src.get('sha256', '-')}")
    if src.get("official"):
        print(f"  official file: {src['official']}")
    if src.get("synthetic"):
        print("  SYNTHETIC data (plausible values, not the real NAS-Bench-101 metrics)")
    print(f"  built {manifest['created']} by nasbench {manifest['builder_version']}")
    return 0


COMMANDS = {
    "build": (add_build_arguments, run_build),
    "synth": (add_synth_arguments, run_synth),
    "verify": (add_verify_arguments, run_verify),
}
