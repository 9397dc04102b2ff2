"""Restarts under load: SIGTERM (graceful) and kill -9, the client reconnects, no call fails."""

from __future__ import annotations

import random
import signal
import threading
import time

import pytest

from nasbench import api, canonical
from nasbench._store.reader import Store
from nasbench_server.process import ServerProcess, free_ports


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
def test_restarts_under_client_load_fail_no_call(full_store, tmp_path, how):
    port = free_ports()[0]
    store = Store.open(full_store)
    keys = store.keys[:: store.cells // 5000].tolist()
    truth = {key: store.metrics[store.row_of_key(key), -1, 0, 7] for key in keys}
    store.close()
    server = ServerProcess(full_store, tmp_path, port=port).wait_serving()
    stop = threading.Event()
    failures: list[str] = []
    answered = [0] * 4

    def load(worker: int) -> None:
        nasbench = api.NASBench(f"grpc://127.0.0.1:{port}", seed=worker, repeat=0)
        rng = random.Random(worker)
        while not stop.is_set():
            key = rng.choice(keys)
            nasbench._backend._cells.cache.clear()  # every call reaches the server
            try:
                if nasbench.query(api.ModelSpec(*canonical.decode(key)))["test_accuracy"] != truth[key]:
                    failures.append(f"wrong answer for {key}")
                answered[worker] += 1
            except Exception as exc:  # every failed call fails the test
                failures.append(repr(exc))

    threads = [threading.Thread(target=load, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(3):
            time.sleep(1.0)
            server.signal(how)
            server.process.wait(60)
            server = ServerProcess(full_store, tmp_path, port=port).wait_serving()
        time.sleep(1.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
        server.stop()
    assert failures == []
    assert min(answered) > 20, answered
