"""Preparing a store once, whatever the data comes from: one path, one lock, one check of what a cached store is.

- an original ``.tfrecord`` file (``api.NASBench("x.tfrecord")``): built once into a store next to it (or, if
  that folder is not writable by this user, or writable by others, into the cache folder); reused while its
  manifest names a source of the same name, size and modification time;
- an official dataset, ``only108`` or ``full`` (``NASBench("only108")``, ``nasbench serve --dataset only108``):
  downloaded into ``<cache>/datasets`` and verified (``nasbench_builder.download``), built once into
  ``<cache>/stores``; reused while its manifest names the dataset's SHA-256 and record count;
- ``synthetic``, the embedded default (``nasbench serve`` with no store, studies and analyses without one): the
  full-scale synthetic dataset (``nasbench_builder.synthetic``), built once into ``<cache>/stores``; reused while
  its manifest names the model version and the generator's digest (another revision of the generator, even one
  that forgot to bump the version, builds its own store).

Processes sharing a cache folder (replicas on one volume, optimizer processes opening one file) prepare each
store once: the first takes an exclusive lock, the others wait for it and then find the store. A cached store is
used only when it can be trusted (``nasbench._cache``: a regular file of this user or root that no one else can
write, in such a folder) and holds what its name claims; a store that does not is built again.

``prepare_store`` is the core's plugin (``nasbench._plugins``): ``api.NASBench`` reaches it through the entry
point ``prepare_store``, never by importing this package.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nasbench import canonical, files, space
from nasbench._backends.address import Location
from nasbench._cache import default_cache_dir, open_cached, untrusted_file, untrusted_folder
from nasbench._store import layout
from nasbench._store.reader import Store
from nasbench.errors import ConfigurationError, StoreError
from nasbench_builder import download, writer  # the builder's own dependencies load with the plugin, before any work
from nasbench_builder import source as builder_source

log = logging.getLogger("nasbench.datasets")
SYNTHETIC_SEED = 0


def prepare_store(location: Location, cache_dir: Path | None = None) -> Path:
    """The store of a ``.tfrecord`` file or of a named dataset, prepared once (the core's plugin)."""
    if location.kind == "tfrecord":
        return store_for_tfrecord(location.path, cache_dir)
    if location.kind == "dataset":
        return store_for_dataset(location.text, cache_dir)
    raise ConfigurationError(f"{location.describe()} needs no preparation")


def store_for_tfrecord(source: Path, cache_dir: Path | None = None) -> Path:
    """A store built from ``source``: an existing matching one (beside it or in the cache), or a new one."""
    if not source.is_file():
        raise StoreError(f"no dataset file at {source}")
    try:
        source.open("rb").close()
    except PermissionError:
        raise StoreError(f"cannot read the dataset file {source}: permission denied") from None
    stat = source.stat()
    beside = source.with_suffix(".lmdb")
    cached = (cache_dir or default_cache_dir()) / "stores" / f"{source.stem}-{stat.st_size}.lmdb"
    claims = {"name": source.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    for candidate in (beside, cached):
        if _holds(candidate, claims) is None:
            return candidate
    private = os.access(source.parent, os.W_OK) and untrusted_folder(source.parent) is None
    target = beside if private else cached  # never beside the file in a folder others can write
    return _prepared(target, claims, lambda path: _build(source, path), f"the store of {source}")


def dataset_store_path(name: str, cache_dir: Path | None = None, sha256: str | None = None) -> Path:
    """Where the store of a named dataset (or of a mirror of another file, by its digest) is cached."""
    root = cache_dir or default_cache_dir()
    if name == "synthetic":
        from nasbench_builder.synthetic import SYNTHETIC_VERSION, generator_digest

        stem = f"synthetic-v{SYNTHETIC_VERSION}-{generator_digest()}-full-seed{SYNTHETIC_SEED}"
    else:
        known = _official(name)
        stem = f"{Path(known.file_name).stem}-{(sha256 or known.sha256).lower()[:16]}"
    return root / "stores" / f"{stem}-schema{layout.SCHEMA_VERSION}.lmdb"


def store_for_dataset(
    name: str,
    cache_dir: Path | None = None,
    *,
    url: str | None = None,
    sha256: str | None = None,
    progress: Any = "auto",
    cancel: threading.Event | None = None,
) -> Path:
    """The store of a named dataset: the cached one, or prepared once (downloaded, verified and built, or
    synthesized for ``synthetic``). See the module docstring.

    Args:
      name: ``"only108"``, ``"full"`` or ``"synthetic"``.
      cache_dir: the cache folder (default: $NASBENCH_CACHE_DIR or ~/.cache/nasbench).
      url: a mirror (http, https or file://) instead of the official URL.
      sha256: the digest of the mirrored file, if it is not the official file.
      progress: passed to ``download.download``.
      cancel: set it to stop a download (the partial file is kept for a later resume).

    Raises:
      ConfigurationError: an unknown name.
      DownloadError: the file could not be fetched or verified.
      SourceError: the file is not a valid dataset file.
      StoreError: the cache folder cannot be trusted or written.
    """
    root = cache_dir or default_cache_dir()
    store = dataset_store_path(name, root, sha256)
    if name == "synthetic":
        from nasbench_builder.synthetic import SYNTHETIC_VERSION, generator_digest

        claims: dict[str, Any] = {
            "synthetic": True,
            "synthetic_version": SYNTHETIC_VERSION,
            "generator": generator_digest(),
            "seed": SYNTHETIC_SEED,
            "max_vertices": canonical.MAX_VERTICES,  # the whole space, not a synthetic subspace of the same seed
        }
        return _prepared(store, claims, lambda path: _synthesize(path, root), "the embedded SYNTHETIC store")
    known = _official(name)
    digest = (sha256 or known.sha256).lower()
    claims = {"sha256": digest} if digest != known.sha256 else {"sha256": digest, "records": known.records}

    def download_and_build(path: Path) -> None:
        size = known.size if digest == known.sha256 else "a mirror of another file"
        log.info(
            f"preparing the {name} dataset once: download ({size}), verify, build the store",
            extra={"store": str(path), "url": url or known.url},
        )
        source = download.download(name, root / "datasets", url=url, sha256=sha256, progress=progress, cancel=cancel)
        _build(source, path, root)

    return _prepared(store, claims, download_and_build, f"the {name} store")


def _official(name: str) -> download.DatasetFile:
    if name not in download.DATASETS:
        names = ", ".join([*download.DATASETS, "synthetic"])
        raise ConfigurationError(f"unknown dataset {name!r}: expected one of {names}")
    return download.DATASETS[name]


def _prepared(target: Path, claims: dict[str, Any], build: Callable[[Path], None], what: str) -> Path:
    """``target`` when it holds what ``claims`` says (manifest source fields); otherwise built once by
    ``build(target)`` under the lock every process preparing ``target`` takes."""
    problem = _holds(target, claims)
    if problem is None:
        return target
    distrust = untrusted_folder(target.parent)
    if distrust is not None:
        raise StoreError(
            f"cannot prepare {what} in {target.parent}: {distrust}; use a folder only you can write "
            "(for the cache folder: set NASBENCH_CACHE_DIR)"
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the folder {target.parent} for the store: {exc.strerror or exc}") from None
    with files.exclusive(target.parent / f".{target.name}.lock", f"another process is preparing {target}", StoreError):
        problem = _holds(target, claims)
        if problem is None:  # prepared by the process we waited for
            return target
        if problem != "absent":
            log.warning(f"{target} cannot be used ({problem}): preparing it again", extra={"store": str(target)})
        started = time.perf_counter()
        build(target)
        log.info("built the store", extra={"store": str(target), "seconds": round(time.perf_counter() - started, 1)})
    problem = _holds(target, claims)
    if problem is not None:
        raise StoreError(f"{target} was just prepared but cannot be used: {problem}")
    return target


_OPENING = threading.Lock()


def _holds(path: Path, claims: dict[str, Any]) -> str | None:
    """None when ``path`` is a trusted store whose manifest's source has every claimed value; else why not
    (``"absent"`` when there is no file)."""
    try:
        with open_cached(path) as handle:
            distrust = untrusted_file(handle, path)
    except FileNotFoundError:
        return "absent"
    except OSError as exc:
        return "a symbolic link" if os.path.islink(path) else f"unreadable: {exc.strerror or exc}"
    if distrust is not None:
        return distrust
    with _OPENING:  # LMDB refuses a second open of one file in a process: threads preparing a store take turns
        try:
            store = Store.open(path)
        except StoreError as exc:
            return str(exc)
        try:
            source = store.manifest.get("source", {})
        finally:
            store.close()
    wrong = sorted(field for field, value in claims.items() if source.get(field) != value)
    if wrong:
        return "its source is not the one it is named for: " + ", ".join(
            f"{field} {source.get(field)!r} where {claims[field]!r} was expected" for field in wrong
        )
    return None


def _build(source: Path, target: Path, cache_dir: Path | None = None) -> None:
    """Build ``target`` from ``source`` (progress: a bar on a terminal, log lines otherwise)."""
    writer.check_target(target, source.stat().st_size // 4, overwrite=True)  # before the long read
    log.info("building the store (once)", extra={"source": str(source), "store": str(target)})
    update, close = builder_source.progress_printer(source.stat().st_size)
    try:
        dataset = builder_source.read_dataset(source, progress=update, table=space.load_space(cache_dir=cache_dir))
    finally:
        close()
    writer.write_store(dataset, target, overwrite=True)


def _synthesize(target: Path, cache_dir: Path) -> None:
    """Build the embedded synthetic store (about 40 s on 2 cores, most of it hashing the space the first time)."""
    from nasbench_builder import synthetic

    log.warning(
        "building the embedded SYNTHETIC store once (about a minute); later starts take under a second",
        extra={"path": str(target)},
    )
    data = synthetic.synthesize(synthetic.ALL_EPOCHS, seed=SYNTHETIC_SEED, table=space.load_space(cache_dir=cache_dir))
    writer.write_store(data.dataset, target, overwrite=True)
