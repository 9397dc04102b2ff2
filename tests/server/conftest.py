"""Fixtures of the server tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from nasbench._store.reader import Store


@pytest.fixture(scope="session")
def keys(small_store: Path) -> list[int]:
    """The canonical keys of the small store, in row order."""
    store = Store.open(small_store)
    try:
        return store.keys.tolist()
    finally:
        store.close()
