"""Fuzz the store reader: a store file with bytes overwritten or cut short must open and answer, or raise a
StoreError; never another exception, never a signal (a SIGBUS from reading past the end of a mapped file).

    python fuzz/fuzz_store.py -max_total_time=600 fuzz/corpus/store
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from nasbench._store.reader import Store
    from nasbench.errors import StoreError

from _store import small_store  # the script's folder is on sys.path

ORIGINAL = small_store().read_bytes()
TARGET = Path(tempfile.gettempdir()) / f"nasbench-fuzz-store-{os.getpid()}.lmdb"


def test_one(data: bytes) -> None:
    fuzzed = atheris.FuzzedDataProvider(data)
    content = bytearray(ORIGINAL)
    if fuzzed.ConsumeBool():
        del content[fuzzed.ConsumeIntInRange(0, len(content)) :]
    for _ in range(fuzzed.ConsumeIntInRange(0, 8)):
        at = fuzzed.ConsumeIntInRange(0, max(0, len(content) - 1))
        patch = fuzzed.ConsumeBytes(fuzzed.ConsumeIntInRange(1, 64))
        content[at : at + len(patch)] = patch
    TARGET.write_bytes(bytes(content))
    try:
        store = Store.open(TARGET, verify=fuzzed.ConsumeBool() or None)
    except StoreError:
        return
    try:
        for key in store.keys[:50].tolist():
            row = store.row_of_key(key)
            if row >= 0:
                store.metrics[row].sum()
        store.row_of_hash(bytes(16))
    finally:
        store.close()


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one)
    atheris.Fuzz()
