"""``nasbench download``: fetch an official dataset file or CIFAR-10 (or a mirror of either), verify it, print
its path."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from nasbench_builder import download

# CIFAR-10 for `nasbench train`: published with an MD5 only; its mirror and digest have their own variables, so a
# dataset mirror set in the environment never stands in for it.
_CIFAR10 = download.CIFAR10


def add_download_arguments(parser: argparse.ArgumentParser) -> None:
    lines = [
        f"  {d.name}: {d.file_name}, {d.size}, {d.records:,} records\n    {d.url}\n    SHA-256 {d.sha256}"
        for d in download.DATASETS.values()
    ]
    lines.append(
        f"  {_CIFAR10.name}: {_CIFAR10.file_name}, {_CIFAR10.size} (for nasbench train)\n    {_CIFAR10.url}\n"
        f"    MD5 {_CIFAR10.md5}"
    )
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = (
        "Download an official NAS-Bench-101 file, resuming an interrupted download (HTTP Range), verify its SHA-256,\n"
        "and move it into place only when it matches; print its path. Then: nasbench build FILE STORE, or simply\n"
        "nasbench serve --dataset NAME (which downloads and builds by itself).\n\n" + "\n".join(lines)
    )
    parser.add_argument("dataset", choices=[*download.DATASETS, _CIFAR10.name], help="which file")
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="folder to download into (default: $NASBENCH_CACHE_DIR/datasets or ~/.cache/nasbench/datasets)",
    )
    parser.add_argument(
        "--url",
        default=None,
        help="a mirror: http(s):// or file:// [NASBENCH_DATASET_URL; for cifar10 NASBENCH_CIFAR10_URL]",
    )
    parser.add_argument(
        "--sha256",
        default=None,
        help="expected digest, for a mirror of another file (default: the official one) [NASBENCH_DATASET_SHA256]",
    )
    parser.add_argument(
        "--md5",
        default=None,
        help=f"cifar10 only: expected MD5, for a mirror of another file (default: the published {_CIFAR10.md5})",
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
    retries, timeout = max(args.retries, 0), args.timeout
    if args.dataset == _CIFAR10.name:
        path = download.download(
            args.url or os.environ.get("NASBENCH_CIFAR10_URL") or _CIFAR10.url,
            args.dir,
            sha256=args.sha256,
            md5=args.md5 or _CIFAR10.md5,
            file_name=_CIFAR10.file_name,
            retries=retries,
            timeout=timeout,
        )
    else:
        url = args.url or os.environ.get("NASBENCH_DATASET_URL") or None
        sha256 = args.sha256 or os.environ.get("NASBENCH_DATASET_SHA256") or None
        path = download.download(args.dataset, args.dir, url=url, sha256=sha256, retries=retries, timeout=timeout)
    print(path)
    return 0


COMMANDS = {"download": (add_download_arguments, run_download)}
