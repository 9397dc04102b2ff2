"""Preparing a store once (nasbench_builder.prepare): where each dataset's store lives, what a cached file must be
to be used, which folder each step reads and writes, and the whole message of each refusal."""

from __future__ import annotations

import hashlib
import logging
import shutil
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from nasbench import space
from nasbench._backends import address
from nasbench._store import layout
from nasbench._store.reader import Store
from nasbench.errors import ConfigurationError, DownloadError, StoreError
from nasbench_builder import download, prepare, synthetic, writer
from tests.mirror import Mirror

FILE = "nasbench_only108.tfrecord"


# --- where each dataset's store is cached ------------------------------------------------------------------------


def test_a_dataset_store_is_named_by_file_digest_and_schema(tmp_path: Path) -> None:
    digest = "ABCDEF0123456789" + "f" * 48
    stores = tmp_path / "stores"
    schema = layout.SCHEMA_VERSION
    assert (
        prepare.dataset_store_path("only108", tmp_path, digest)
        == stores / f"nasbench_only108-abcdef0123456789-schema{schema}.lmdb"
    )
    official = download.DATASETS["full"].sha256[:16]
    assert prepare.dataset_store_path("full", tmp_path) == stores / f"nasbench_full-{official}-schema{schema}.lmdb"
    expected = f"synthetic-v{synthetic.SYNTHETIC_VERSION}-{synthetic.generator_digest()}-full-seed0-schema{schema}.lmdb"
    assert prepare.dataset_store_path("synthetic", tmp_path) == stores / expected


def test_an_unknown_dataset_name_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as error:
        prepare.store_for_dataset("only109", tmp_path)
    assert str(error.value) == "unknown dataset 'only109': expected one of only108, full, synthetic"


def test_only_files_and_dataset_names_are_prepared(tmp_path: Path) -> None:
    store = address.parse(str(tmp_path / "data.lmdb"))
    with pytest.raises(ConfigurationError) as error:
        prepare.prepare_store(store, tmp_path)
    assert str(error.value) == f"{store.describe()} needs no preparation"


# --- what a cached store must be ---------------------------------------------------------------------------------


def test_why_a_cached_file_is_not_used(small_store: Path, tmp_path: Path) -> None:
    """Each reason, whole: absent, a link, a file others can write, not a store, another source; a name the system
    cannot open says why."""
    claims = {"name": "data.tfrecord", "size": 10}
    path = tmp_path / "store.lmdb"
    assert prepare._holds(path, claims) == "absent"
    path.symlink_to(small_store)
    assert prepare._holds(path, claims) == "a symbolic link"
    path.unlink()
    shutil.copy(small_store, path)
    path.chmod(0o664)
    assert prepare._holds(path, claims) == f"{path} is writable by other users (mode 664)"
    path.chmod(0o644)
    source = Store.open(path).manifest["source"]
    assert prepare._holds(path, claims) == (
        "its source is not the one it is named for: "
        f"name {source.get('name')!r} where 'data.tfrecord' was expected, "
        f"size {source.get('size')!r} where 10 was expected"
    )
    assert prepare._holds(path, {field: source.get(field) for field in claims}) is None
    path.write_bytes(b"not a store")
    with pytest.raises(StoreError) as error:
        Store.open(path)
    assert prepare._holds(path, claims) == str(error.value)
    too_long = tmp_path / ("x" * 300)
    assert prepare._holds(too_long, claims) == "unreadable: File name too long"


def test_a_store_without_a_source_holds_no_claim(small_store: Path, tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "store.lmdb"
    shutil.copy(small_store, path)
    opened = Store.open

    def without_source(path: Path) -> Store:
        store = opened(path)
        store.manifest = {key: value for key, value in store.manifest.items() if key != "source"}
        return store

    monkeypatch.setattr(Store, "open", without_source)
    assert (
        prepare._holds(path, {"seed": 0}) == "its source is not the one it is named for: seed None where 0 was expected"
    )


# --- preparing: the folders, the messages ------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", ["synthetic", "only108", "tfrecord"])
def test_a_cache_others_can_write_is_named_with_what_was_to_be_prepared(
    dataset: str, tiny_tfrecord: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    (cache / "stores").mkdir(parents=True)
    (cache / "stores").chmod(0o777)
    if dataset == "tfrecord":
        source = tmp_path / "shared" / "data.tfrecord"
        source.parent.mkdir()
        source.parent.chmod(0o777)  # never a store beside a file others can replace
        shutil.copy(tiny_tfrecord, source)
        what = f"the store of {source}"
        call = lambda: prepare.store_for_tfrecord(source, cache)  # noqa: E731
    else:
        what = "the embedded SYNTHETIC store" if dataset == "synthetic" else "the only108 store"
        call = lambda: prepare.store_for_dataset(dataset, cache, url="http://127.0.0.1:9/x", sha256="0" * 64)  # noqa: E731
    with pytest.raises(StoreError) as error:
        call()
    assert str(error.value) == (
        f"cannot prepare {what} in {cache / 'stores'}: the folder {cache / 'stores'} is writable by other users "
        "(mode 777); use a folder only you can write (for the cache folder: set NASBENCH_CACHE_DIR)"
    )


def test_a_store_folder_that_cannot_be_created_is_named(tmp_path: Path, monkeypatch) -> None:
    def full(self: Path, *args, **kwargs) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "mkdir", full)
    with pytest.raises(StoreError) as error:
        prepare.store_for_dataset("only108", tmp_path / "cache", url="http://127.0.0.1:9/x", sha256="0" * 64)
    stores = tmp_path / "cache" / "stores"
    assert str(error.value) == f"cannot create the folder {stores} for the store: No space left on device"


def test_a_dataset_file_that_cannot_be_read_is_named(tiny_tfrecord: Path, tmp_path: Path, monkeypatch) -> None:
    source = tmp_path / "data.tfrecord"
    shutil.copy(tiny_tfrecord, source)
    opened = Path.open

    def refused(self: Path, *args, **kwargs):
        if self == source:
            raise PermissionError(13, "Permission denied")
        return opened(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refused)
    with pytest.raises(StoreError) as error:
        prepare.store_for_tfrecord(source, tmp_path / "cache")
    assert str(error.value) == f"cannot read the dataset file {source}: permission denied"


def test_a_dataset_is_read_with_the_space_table_of_its_cache_folder(
    mirror: Mirror, payload: bytes, space_cache: Path, monkeypatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The space table comes from the space_cache folder the dataset is prepared in; the early space check asks for a
    quarter of the file's size (a store is about that); progress goes to log lines off a terminal."""
    loaded: list[Path | None] = []
    load_space = space.load_space
    monkeypatch.setattr(space, "load_space", lambda cache_dir=None: loaded.append(cache_dir) or load_space(cache_dir))
    asked: list[int] = []
    check_target = writer.check_target
    monkeypatch.setattr(
        writer,
        "check_target",
        lambda path, size, *rest, **kw: asked.append(size) or check_target(path, size, *rest, **kw),
    )
    digest = hashlib.sha256(payload).hexdigest()
    caplog.set_level(logging.INFO)
    prepare.store_for_dataset("only108", space_cache, url=mirror.url(f"data/{FILE}"), sha256=digest, progress=None)
    assert loaded == [space_cache] and asked[0] == len(payload) // 4
    assert any(record.getMessage().startswith("read 1092 records (100% of the file)") for record in caplog.records)


def test_the_log_says_whether_the_official_file_or_a_mirror_is_downloaded(
    mirror: Mirror, payload: bytes, space_cache: Path, monkeypatch, caplog: pytest.LogCaptureFixture
) -> None:
    digest = hashlib.sha256(payload).hexdigest()
    url = mirror.url(f"data/{FILE}")
    caplog.set_level(logging.INFO, logger="nasbench.datasets")
    prepare.store_for_dataset("only108", space_cache, url=url, sha256=digest, progress=None)
    official = replace(download.DATASETS["only108"], sha256=digest, records=1092, size="1 KB")
    monkeypatch.setitem(download.DATASETS, "only108", official)
    shutil.rmtree(space_cache / "stores")
    prepare.store_for_dataset("only108", space_cache, url=url, progress=None)
    lines = [record.getMessage() for record in caplog.records if record.getMessage().startswith("preparing")]
    assert lines == [
        "preparing the only108 dataset once: download (a mirror of another file), verify, build the store",
        "preparing the only108 dataset once: download (1 KB), verify, build the store",
    ]


def test_progress_and_cancel_reach_the_download(mirror: Mirror, payload: bytes, space_cache: Path) -> None:
    digest = hashlib.sha256(payload).hexdigest()
    url = mirror.url(f"data/{FILE}")
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(DownloadError, match="cancel"):
        prepare.store_for_dataset("only108", space_cache, url=url, sha256=digest, progress=None, cancel=cancel)
    seen: list[int] = []
    prepare.store_for_dataset(
        "only108", space_cache, url=url, sha256=digest, progress=lambda done, total: seen.append(done)
    )
    assert seen and seen[-1] == len(payload)


def test_a_store_that_cannot_be_used_is_prepared_again_and_the_log_says_why(
    tiny_tfrecord: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = tmp_path / "data.tfrecord"
    shutil.copy(tiny_tfrecord, source)
    caplog.set_level(logging.WARNING, logger="nasbench.datasets")
    store = prepare.store_for_tfrecord(source)
    assert [record for record in caplog.records if "preparing it again" in record.getMessage()] == []
    store.write_bytes(b"damaged")
    with pytest.raises(StoreError) as error:
        Store.open(store)
    assert prepare.store_for_tfrecord(source) == store
    warnings = [record.getMessage() for record in caplog.records if "preparing it again" in record.getMessage()]
    assert warnings == [f"{store} cannot be used ({error.value}): preparing it again"]


def test_the_embedded_store_is_the_seed_0_synthesis_of_all_budgets(
    tiny_synthetic: synthetic.SyntheticDataset, space_cache: Path, monkeypatch
) -> None:
    """What ``_synthesize`` asks of the generator and writes (the real synthesis takes a minute: the tiny dataset
    stands in for its result), over whatever file was there."""
    asked: list[tuple] = []
    loaded: list[Path | None] = []
    load_space = space.load_space
    monkeypatch.setattr(space, "load_space", lambda cache_dir=None: loaded.append(cache_dir) or load_space(cache_dir))

    def synthesize(epochs, *, seed, table):
        asked.append((epochs, seed, table))
        return tiny_synthetic

    monkeypatch.setattr(synthetic, "synthesize", synthesize)
    target = space_cache / "stores" / "embedded.lmdb"
    target.parent.mkdir()
    target.write_bytes(b"an older file")
    prepare._synthesize(target, space_cache)
    [(epochs, seed, table)] = asked
    assert (
        epochs == synthetic.ALL_EPOCHS and seed == 0 and isinstance(table, space.SpaceTable) and loaded == [space_cache]
    )
    assert Store.open(target).cells == 91
