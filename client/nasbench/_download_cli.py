"""``nasbench download``: fetch an official dataset file (or a mirror of it), verify it, print its path."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from nasbench import download


def add_download_arguments(parser: argparse.ArgumentParser) -> None:
    lines = [
        f"  {d.name}: {d.file_name}, {d.size}, {d.records:,} records\n    {d.url}\n    SHA-256 {d.sha256}"
        for d in download.DATASETS.values()
    ]
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = (
        "Download an official NAS-Bench-101 file, resuming an interrupted download (HTTP Range), verify its SHA-256,\n"
        "and move it into place only when it matches; print its path. Then: nasbench build FILE STORE, or simply\n"
        "nasbench serve --dataset NAME (which downloads and builds by itself).\n\n" + "\n".join(lines)
    )
    parser.add_argument("dataset", choices=list(download.DATASETS), help="which file")
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="folder to download into (default: $NASBENCH_CACHE_DIR/datasets or ~/.cache/nasbench/datasets)",
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("NASBENCH_DATASET_URL") or None,
        help="a mirror: http(s):// or file:// [NASBENCH_DATASET_URL]",
    )
    parser.add_argument(
        "--sha256",
        default=os.environ.get("NASBENCH_DATASET_SHA256") or None,
        help="expected digest, for a mirror of another file (default: the official one) [NASBENCH_DATASET_SHA256]",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=download.DEFAULT_RETRIES,
        help="attempts in a row without progress before giving up (each resumes where the last stopped)",
    )
    parser.add_argument("--timeout", type=float, default=download.DEFAULT_TIMEOUT_S, help="seconds per connect/read")


def run_download(args: argparse.Namespace) -> int:
    if not sys.stderr.isatty():  # progress as log lines
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    path = download.download(
        args.dataset, args.dir, url=args.url, sha256=args.sha256, retries=max(args.retries, 0), timeout=args.timeout
    )
    print(path)
    return 0


COMMANDS = {"download": (add_download_arguments, run_download)}
