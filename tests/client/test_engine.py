"""The engine's own promises, by value: the 'hashed' repeat pinned (the contract client and server share),
neighbours that include the first row, and ``verify`` passed through to the store."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nasbench import domain
from nasbench.engine import Engine, hashed_repeat
from nasbench.errors import StoreCorruptError
from nasbench.store.reader import Store

INCEPTION_KEY = 16592743520  # the canonical key of the paper's Inception-like cell (see tests/server/test_service)
# picks for seeds 0..9, pinned when the policy was defined: any change breaks every stored 'hashed' result
HASHED_INCEPTION = {4: [0, 2, 0, 2, 0, 1, 1, 0, 2, 2], 108: [2, 2, 1, 2, 2, 1, 1, 2, 0, 0]}


def test_hashed_repeat_is_pinned() -> None:
    for epochs, picks in HASHED_INCEPTION.items():
        assert [hashed_repeat(INCEPTION_KEY, epochs, seed) for seed in range(10)] == picks
    assert {hashed_repeat(key, 108, 0) for key in range(1000)} == {0, 1, 2}


def test_neighbours_include_the_first_row(small_store: Path) -> None:
    engine = Engine.open(small_store)
    try:
        keys = engine.store.keys
        candidates = [*engine.neighbors(keys.item(0)).tolist(), *range(1, engine.cells)]
        neighbour = next(keys.item(row) for row in candidates if 0 in engine.neighbors(keys.item(row)).tolist())
        rows = engine.neighbors(neighbour).tolist()
        expected = [r for r in engine.rows_of_keys(domain.neighbor_keys(neighbour)).tolist() if r >= 0]
        assert 0 in rows and rows == expected
    finally:
        engine.close()


def test_open_passes_verify_to_the_store(small_store: Path, tmp_path: Path, monkeypatch) -> None:
    """A byte flipped in an array after the file verified once: ``verify=False`` opens it unchecked (for a file
    the caller just checked), ``verify=True`` and the default (the file changed) refuse it."""
    monkeypatch.setenv("NASBENCH_CACHE_DIR", str(tmp_path / "cache"))
    copy = tmp_path / "copy.lmdb"
    shutil.copyfile(small_store, copy)
    Engine.open(copy).close()
    store = Store.open(copy, verify=False)
    offset = store.manifest["arrays"]["metrics"]["offset"] + 3
    store.close()
    with open(copy, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0x10]))
    Engine.open(copy, verify=False).close()
    for verify in (True, None):
        with pytest.raises(StoreCorruptError, match="checksum mismatch in array 'metrics'"):
            Engine.open(copy, verify=verify)
