"""The bounded memo shared by threads: never raises, never exceeds its bounds in entries or bytes."""

from __future__ import annotations

import sys
import threading

import pytest

from nasbench import _memo
from nasbench._memo import Memo


@pytest.fixture
def tiny_switch_interval():
    """Switch threads every microsecond, so check-then-evict races happen within a short test."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def test_puts_from_eight_threads_never_raise_and_stay_bounded(tiny_switch_interval):
    memo = Memo(maxsize=64, maxbytes=64 * 200, name="test")
    failures: list[BaseException] = []

    def hammer(offset: int) -> None:
        try:
            for i in range(20_000):
                key = (offset, i)
                value = memo.put(key, i, nbytes=100)
                assert value == i  # put hands back what it kept (or would have kept)
                memo.get((offset, i - 1))
                assert len(memo) <= 64
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=hammer, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(memo) <= 64 and memo.nbytes == 100 * len(memo) <= memo.maxbytes


def test_byte_bound_evicts_oldest_first_and_refuses_oversized_entries():
    memo = Memo(maxsize=1000, maxbytes=1000, name="test")
    for i in range(10):
        memo.put(i, str(i), nbytes=300)
    assert len(memo) == 3 and memo.nbytes == 900
    assert [memo.get(i) for i in (6, 7, 8, 9)] == [None, "7", "8", "9"]
    assert memo.put("huge", "value", nbytes=1001) == "value"
    assert "huge" not in memo and memo.nbytes == 900


def test_estimated_bytes_grow_with_the_key():
    small = _memo.estimate_bytes(("int8", (3, 3), b"\0" * 9, ("input", "output")))
    large = _memo.estimate_bytes(("int8", (3, 3), b"\0" * 9, ("x" * 1_000_000,)))
    assert large > 1_000_000 > 1_000 > small


def test_held_bytes_counts_live_memos():
    before = _memo.held_bytes()
    memo = Memo(maxsize=10, maxbytes=10_000, name="test")
    memo.put("a", 1, nbytes=1234)
    assert _memo.held_bytes() == before + 1234
    assert _memo.bound_bytes() >= 10_000
    memo.clear()
    assert memo.nbytes == 0 and len(memo) == 0
