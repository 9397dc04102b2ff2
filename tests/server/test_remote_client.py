"""The remote backend: repeated cells cost no round trip, the client survives fork, errors are ours; retries,
deadlines, the cache bound and the address forms, some against a scripted server that counts every attempt."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

from nasbench import api
from nasbench._backends.transport import grpc_target
from nasbench.v1 import nasbench_pb2 as pb
from tests.client.scenarios import INCEPTION, spec


def _served(nasbench: api.NASBench) -> int:
    return nasbench._backend.transport.call("GetInfo", pb.GetInfoRequest()).requests_served


def test_repeated_cells_are_served_from_the_cache(server_address) -> None:
    nasbench = api.NASBench(server_address, seed=0)
    model_spec = spec(*INCEPTION)
    nasbench.query(model_spec)
    before = _served(nasbench)
    started = time.perf_counter()
    for _ in range(2000):
        nasbench.query(model_spec, epochs=12)
        nasbench.get_metrics_from_spec(model_spec)
    elapsed = time.perf_counter() - started
    assert _served(nasbench) == before + 1, "only the GetInfo above reached the server"
    assert elapsed < 2.0  # 4,000 calls without a round trip (a round trip alone costs ~1 ms)


def test_fork_gives_the_child_a_working_client(server_address) -> None:
    nasbench = api.NASBench(server_address, seed=0)
    specs = nasbench.sample(6, seed=2)
    nasbench.query(specs[0])
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: new cells need round trips on a fresh channel
        try:
            values = [nasbench.query(s, repeat=0)["validation_accuracy"] for s in specs[1:]]
            os.write(write, json.dumps(values).encode())
        finally:
            os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    child = json.loads(os.read(read, 1 << 16).decode())
    assert os.waitstatus_to_exitcode(status) == 0
    assert child == [nasbench.query(s, repeat=0)["validation_accuracy"] for s in specs[1:]]


@pytest.mark.parametrize(
    ("address", "target"),
    [
        ("grpc://127.0.0.1:5000", "127.0.0.1:5000"),
        ("127.0.0.1:5000,127.0.0.1:5001", "ipv4:127.0.0.1:5000,127.0.0.1:5001"),
        ("grpc://localhost:5000,localhost:5001", "ipv4:127.0.0.1:5000,127.0.0.1:5001"),
        ("[::1]:5000, [::1]:5001", "ipv6:[::1]:5000,[::1]:5001"),
        ("dns:///nasbench:50051", "dns:///nasbench:50051"),
        ("unix:/tmp/x.sock", "unix:/tmp/x.sock"),
    ],
)
def test_targets(address: str, target: str) -> None:
    assert grpc_target(address) == target


# --- a scripted server: each RPC's behaviour chosen by the test, every attempt counted ---------------------


class ScriptedServer:
    """A Nasbench service on 127.0.0.1 whose GetMetrics follows a script (one entry per attempt: a status code
    to abort with, ``"slow"`` to hold the call far past the client's deadline, or ``"ok"``), for the client's retry,
    deadline and error mapping. GetInfo always answers (one cell, one budget); QueryBatch (a client copying the
    dataset) answers that the one cell is ``stored_key`` (``batches`` counts its calls). ListCells and QueryStream
    answer two messages, or hold the call past any deadline when ``hold_streams`` is set; ``metadata`` keeps each
    method's call metadata."""

    def __init__(self, script: list, tls: tuple[bytes, bytes] | None = None) -> None:
        import threading
        from concurrent import futures

        import grpc

        self.script = list(script)
        self.attempts = 0
        self.keys: list[int] = []
        self.batches = 0
        self.stored_key = -1
        self.hold_streams = False
        self.metadata: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        handlers = {
            "GetInfo": grpc.unary_unary_rpc_method_handler(
                lambda request, context: pb.Info(epochs=[108], cells=1, repeats=3),
                request_deserializer=pb.GetInfoRequest.FromString,
                response_serializer=pb.Info.SerializeToString,
            ),
            "GetMetrics": grpc.unary_unary_rpc_method_handler(
                self._get_metrics,
                request_deserializer=pb.GetMetricsRequest.FromString,
                response_serializer=pb.CellData.SerializeToString,
            ),
            "QueryBatch": grpc.unary_unary_rpc_method_handler(
                self._query_batch,
                request_deserializer=pb.QueryBatchRequest.FromString,
                response_serializer=pb.QueryBatchResponse.SerializeToString,
            ),
            "ListCells": grpc.unary_stream_rpc_method_handler(
                self._list_cells,
                request_deserializer=pb.ListCellsRequest.FromString,
                response_serializer=pb.ListCellsResponse.SerializeToString,
            ),
            "QueryStream": grpc.stream_stream_rpc_method_handler(
                self._query_stream,
                request_deserializer=pb.QueryRequest.FromString,
                response_serializer=pb.QueryResponse.SerializeToString,
            ),
        }
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("nasbench.v1.Nasbench", handlers),))
        if tls is None:
            self.port = self._server.add_insecure_port("127.0.0.1:0")
        else:  # (certificate, key), PEM
            self.port = self._server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(tls[1], tls[0])]))
        self._server.start()

    def _get_metrics(self, request: pb.GetMetricsRequest, context):
        with self._lock:
            self.attempts += 1
            step = self.script.pop(0) if self.script else "ok"
            self.keys.append(request.cell.key)
        if step == "slow":
            self._stopped.wait(30)
        elif step != "ok":
            context.abort(step, f"scripted {step.name}")
        metrics = np.arange(24, dtype="<f8") + request.cell.key
        return pb.CellData(
            key=request.cell.key,
            hash=bytes(16),
            representative=request.cell.key,
            epochs=[108],
            repeats=3,
            metrics=metrics.tobytes(),
            trainable_parameters=7,
        )

    def _streamed(self, method: str, context) -> bool:
        """Note the call's metadata; False once the call was held until the server stopped."""
        self.metadata[method] = dict(context.invocation_metadata())
        return not (self.hold_streams and self._stopped.wait(30))

    def _list_cells(self, request: pb.ListCellsRequest, context):
        if self._streamed("ListCells", context):
            yield pb.ListCellsResponse(hashes=bytes(16))
            yield pb.ListCellsResponse(hashes=bytes(range(16)))

    def _query_stream(self, requests, context):
        if self._streamed("QueryStream", context):
            for request in requests:
                yield pb.QueryResponse(request_id=request.request_id)

    def _query_batch(self, request: pb.QueryBatchRequest, context):
        with self._lock:
            self.batches += 1
        keys = np.array(request.keys, dtype="<u8")
        found = keys == self.stored_key
        metrics = np.zeros((len(keys), 24), dtype="<f8")
        metrics[found] = np.arange(24) + self.stored_key
        return pb.QueryBatchResponse(
            count=len(keys),
            found=found.astype(np.uint8).tobytes(),
            keys=keys.tobytes(),
            representatives=keys.tobytes(),
            trainable_parameters=np.full(len(keys), 7, dtype="<i4").tobytes(),
            epochs=[108],
            repeats=3,
            values=8,
            metrics=metrics.tobytes(),
            hashes=bytes(16 * len(keys)),
        )

    def stop(self) -> None:
        self._stopped.set()
        self._server.stop(0)


@pytest.fixture()
def scripted():
    servers = []

    def start(script: list, tls: tuple[bytes, bytes] | None = None) -> ScriptedServer:
        servers.append(ScriptedServer(script, tls))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def test_unavailable_is_retried_with_backoff_up_to_five_attempts(scripted) -> None:
    import grpc

    from nasbench._backends.remote import RemoteBackend
    from nasbench.errors import ServiceUnavailableError

    server = scripted([grpc.StatusCode.UNAVAILABLE] * 3)
    backend = RemoteBackend.connect(f"127.0.0.1:{server.port}")
    started = time.monotonic()
    assert backend.cell_by_key(5).metrics[0, 0].tolist() == list(np.arange(8.0) + 5)
    assert server.attempts == 4, "three UNAVAILABLE answers, then the retry that succeeded"
    server.script = [grpc.StatusCode.UNAVAILABLE] * 10
    server.attempts = 0
    with pytest.raises(ServiceUnavailableError, match=r"UNAVAILABLE: scripted UNAVAILABLE"):
        backend.cell_by_key(6)
    assert server.attempts == 5, "gRPC's retry policy: at most 5 attempts per call"
    assert time.monotonic() - started < 20


@pytest.mark.parametrize("code", ["INVALID_ARGUMENT", "NOT_FOUND", "RESOURCE_EXHAUSTED", "INTERNAL"])
def test_other_errors_are_final(scripted, code: str) -> None:
    """Only UNAVAILABLE is retried: an answer that the request itself is wrong (or the cell absent) is final."""
    import grpc

    from nasbench._backends.remote import RemoteBackend
    from nasbench.errors import NasbenchError

    server = scripted([getattr(grpc.StatusCode, code)] * 3)
    backend = RemoteBackend.connect(f"127.0.0.1:{server.port}")
    if code == "NOT_FOUND":
        assert backend.cell_by_key(5) is None
    else:
        with pytest.raises(NasbenchError):
            backend.cell_by_key(5)
    assert server.attempts == 1


def test_errors_without_a_kind_map_by_status_code(scripted) -> None:
    """Without the server's error-kind metadata (a proxy, another server), the status code decides the class."""
    import grpc

    from nasbench.errors import InvalidSpecError, NotAuthorizedError, RemoteError, RequestRejectedError

    cases = [
        (grpc.StatusCode.RESOURCE_EXHAUSTED, RequestRejectedError, "scripted RESOURCE_EXHAUSTED"),
        (grpc.StatusCode.INVALID_ARGUMENT, InvalidSpecError, "scripted INVALID_ARGUMENT"),
        (grpc.StatusCode.PERMISSION_DENIED, NotAuthorizedError, "refused the call: scripted PERMISSION_DENIED"),
        (grpc.StatusCode.INTERNAL, RemoteError, "INTERNAL: scripted INTERNAL"),
    ]
    for code, error, message in cases:
        server = scripted([code])
        nasbench = api.NASBench(f"grpc://127.0.0.1:{server.port}")
        with pytest.raises(error, match=message) as info:
            nasbench.query(spec([[0, 1], [0, 0]], ["input", "output"]))
        assert type(info.value) is error and not isinstance(info.value, grpc.RpcError)
        assert isinstance(info.value.__cause__, grpc.RpcError)


def test_deadline(scripted) -> None:
    from nasbench.errors import ServiceUnavailableError

    server = scripted(["slow"])
    # The deadline also bounds the first GetInfo: 2 s leaves a loaded machine time to connect.
    nasbench = api.NASBench(f"grpc://127.0.0.1:{server.port}", timeout=2.0)
    started = time.monotonic()
    with pytest.raises(ServiceUnavailableError, match="DEADLINE_EXCEEDED"):
        nasbench.query(spec([[0, 1], [0, 0]], ["input", "output"]))
    assert time.monotonic() - started < 10, "the call is held for 30 s: the deadline, not the server, ended it"
    assert server.attempts == 1, "a deadline is not retried"


def test_the_cell_cache_forgets_the_oldest_cells_past_its_bound(scripted) -> None:
    from nasbench._backends.remote import RemoteBackend

    server = scripted([])
    backend = RemoteBackend.connect(f"127.0.0.1:{server.port}", cache_cells=4)
    for key in range(1, 7):
        backend.cell_by_key(key)
    assert server.keys == [1, 2, 3, 4, 5, 6]
    for key in (3, 6, 5, 4):  # the four most recent: no round trip
        assert backend.cell_by_key(key).key == key
    assert server.keys == [1, 2, 3, 4, 5, 6]
    backend.cell_by_key(1)  # forgotten: fetched again
    assert server.keys == [1, 2, 3, 4, 5, 6, 1]
    assert len(backend._cells.cache) == 4


def test_resource_exhausted_through_the_api(server_address) -> None:
    from nasbench.errors import RequestRejectedError

    nasbench = api.NASBench(server_address)
    with pytest.raises(RequestRejectedError, match=r"^k = 100001 exceeds the limit of 100000$"):
        nasbench.sample(100_001, seed=0)


def test_dns_addresses(server) -> None:
    port = server.address.rsplit(":", 1)[1]
    for address in (f"dns:///127.0.0.1:{port}", f"dns:///localhost:{port}"):
        nasbench = api.NASBench(address, seed=0)
        assert nasbench.query(spec(*INCEPTION))["trainable_parameters"] == 2_694_282
        nasbench.close()


def test_grpcs_against_a_plaintext_server_fails_cleanly(server, monkeypatch) -> None:
    from nasbench._backends import transport as remote
    from nasbench.errors import ServiceUnavailableError

    assert remote.channel_credentials("grpcs://h:1", None) is not None
    assert remote.channel_credentials("grpc://h:1", None) is None
    monkeypatch.setattr(remote, "DEFAULT_CONNECT_TIMEOUT_S", 2.0)
    with pytest.raises(ServiceUnavailableError, match=f"grpcs://{server.address}"):
        api.NASBench(f"grpcs://{server.address}")


def test_a_client_missing_many_cells_copies_the_dataset_once_and_answers_from_it(small_store, tmp_path) -> None:
    """Past ``replicate_after`` cells fetched one at a time, one bulk fetch; then no call reaches the server, and
    every answer is the store's."""
    from nasbench_server.process import ServerProcess

    local = api.NASBench(small_store, seed=0)
    specs = local.sample(60, seed=2)
    server = ServerProcess(small_store, tmp_path).wait_serving()
    try:
        remote = api.NASBench(f"grpc://{server.address}", seed=0, replicate_after=20)
        answers = [remote.query(spec, repeat="all") for spec in specs[:20]]
        copied = _served(remote)
        answers += [remote.query(spec, repeat="all") for spec in specs[20:]]
        answers += remote.query_batch(specs, repeat="all")
        answers.append(remote.get_metrics_from_hash(specs[50].hash_spec(remote.config["available_ops"]))[1])
        assert _served(remote) == copied + 1, "only this GetInfo reached the server after the copy"
        expected = [local.query(spec, repeat="all") for spec in specs] + local.query_batch(specs, repeat="all")
        expected.append(local.get_metrics_from_hash(specs[50].hash_spec(local.config["available_ops"]))[1])
        assert str(answers) == str(expected)
        assert remote.get_budget_counters() == local.get_budget_counters()
        never = api.NASBench(f"grpc://{server.address}", replicate_after=None)
        for spec in specs:
            never.query(spec)
        before = _served(never)
        never.query(specs[-1])
        never.query(local.sample(1, seed=99)[0])
        assert _served(never) == before + 2, "without a copy, a new cell is a round trip"
    finally:
        server.stop()


def test_the_transports_stream_answers_in_order_and_count_the_stream(server_address, full_store) -> None:
    """``Transport.stream`` and ``AsyncTransport.stream`` (the benchmarks' QueryStream): one answer per request in
    the order sent, the stream counted once as OK for its target; no server is the project's error, the stream
    counted with the status code it ended with."""
    import asyncio

    from nasbench._backends.transport import STATS, AsyncTransport, Transport
    from nasbench._store.reader import Store
    from nasbench.errors import ServiceUnavailableError
    from nasbench_server.process import free_ports

    store = Store.open(full_store)
    keys = [int(key) for key in store.keys[[5, 0, 17, 3]]]
    store.close()
    requests = [pb.QueryRequest(cell=pb.CellRef(key=key), epochs=12, request_id=i) for i, key in enumerate(keys)]
    expected = [(i, key) for i, key in enumerate(keys)]
    absent = f"grpc://127.0.0.1:{free_ports()[0]}"

    def streams(address: str) -> dict[str, int]:
        """The QueryStream calls to ``address`` so far, by final status code."""
        calls = STATS.snapshot()[0].items()
        return {
            code: n for (target, method, code), n in calls if (target, method) == (grpc_target(address), "QueryStream")
        }

    async def stream_async(address: str) -> list[tuple[int, int]]:
        transport = AsyncTransport(address, timeout=2)

        async def feed():
            for request in requests:
                yield request

        try:
            return [(a.request_id, a.cell.key) async for a in transport.stream("QueryStream", feed())]
        finally:
            await transport.close()

    before = streams(server_address).get("OK", 0)
    assert [(a.request_id, a.cell.key) for a in Transport(server_address).stream("QueryStream", iter(requests))] == (
        expected
    )
    assert asyncio.run(stream_async(server_address)) == expected
    assert streams(server_address).get("OK") == before + 2
    with pytest.raises(ServiceUnavailableError, match=f"no nasbench server answered at {absent}"):
        list(Transport(absent, timeout=2).stream("QueryStream", iter(requests)))
    with pytest.raises(ServiceUnavailableError, match=f"no nasbench server answered at {absent}"):
        asyncio.run(stream_async(absent))
    failed = streams(absent)  # UNAVAILABLE, or DEADLINE_EXCEEDED while the channel waits to connect
    assert "OK" not in failed and sum(failed.values()) == 2


def test_cells_fetched_once_are_answered_from_the_cache_by_hash_and_in_batches(server_address, full_store) -> None:
    """A cell fetched by hash is asked for again by hash, and in a batch by key, without a round trip."""
    from tests.client.scenarios import AVAILABLE

    local = api.NASBench(full_store, seed=0)
    specs = local.sample(4, seed=11)
    hashes = [s.hash_spec(AVAILABLE) for s in specs]
    nasbench = api.NASBench(server_address, seed=0, replicate_after=None)
    first = [nasbench.get_metrics_from_hash(h) for h in hashes]
    before = _served(nasbench)
    again = [nasbench.get_metrics_from_hash(h) for h in hashes]
    batch = nasbench.query_batch(specs, repeat="all")
    assert _served(nasbench) == before + 1, "only this GetInfo reached the server"
    assert str(again) == str(first) == str([local.get_metrics_from_hash(h) for h in hashes])
    assert str(batch) == str(local.query_batch(specs, repeat="all"))


def test_the_replica_finds_every_cell_by_key_and_hash_and_nothing_else(full_store) -> None:
    """The copy a client makes of the dataset: every cell by key and by hash, with its own key; nothing for a key
    between or past the stored ones, a hash past every stored one, or a hash sharing a stored one's first 8 bytes
    (the prefix it searches by), while two hashes sharing a prefix are both found."""
    import dataclasses

    from nasbench._backends.remote import Replica

    columns = api.NASBench(full_store).columns()
    hashes = columns.hashes.copy()
    hashes[1, :8] = hashes[0, :8]  # rows 0 and 1 now share a prefix
    columns = dataclasses.replace(columns, hashes=hashes)
    replica = Replica(columns)
    for row in range(columns.cells):
        key, digest = int(columns.keys[row]), columns.hashes[row].tobytes()
        by_key, by_hash = replica.by_key(key), replica.by_digest(digest)
        assert by_key is not None and by_hash is not None and by_key.key == by_hash.key == key
        assert by_hash.parameters == columns.parameters[row] and np.array_equal(by_hash.metrics, columns.metrics[row])
    keys = columns.keys.tolist()
    stored = set(keys)
    absent_key = next(key for key in range(keys[0], keys[-1]) if key not in stored)
    assert replica.by_key(absent_key) is None and replica.by_key(keys[-1] + 1) is None
    shared = bytes(hashes[0, :8]) + bytes(8)
    assert replica.by_digest(shared) is None and replica.by_digest(b"\xff" * 16) is None
    assert replica.by_digest(bytes(hashes[0, :8]) + b"\xff" * 8) is None


# --- the asyncio backend takes the same options ------------------------------------------------------------


def test_the_asyncio_backend_honours_the_cache_bound_deadline_and_copy_options(scripted) -> None:
    """``AsyncRemoteBackend.connect``'s options mean what ``RemoteBackend.connect``'s do: the cache bound, the
    deadline, copying the dataset after ``replicate_after`` misses unless it exceeds ``max_replica_bytes``."""
    import asyncio

    from nasbench import space
    from nasbench._backends.remote import AsyncRemoteBackend
    from nasbench.errors import ServiceUnavailableError

    stored = int(space.enumerate_cells().keys[7])  # the one cell a copy of the scripted server's dataset holds

    async def bounded() -> None:
        server = scripted([])
        server.stored_key = stored
        backend = await AsyncRemoteBackend.connect(f"127.0.0.1:{server.port}", cache_cells=4, replicate_after=None)
        columns = await backend.columns()
        assert columns.keys.tolist() == [stored]
        assert columns.metrics.ravel().tolist() == list(range(stored, stored + 24))
        server.batches = 0
        for key in range(1, 7):
            await backend.cell_by_key(key)
        for key in (3, 6, 5, 4):
            assert (await backend.cell_by_key(key)).key == key
        await backend.cell_by_key(1)
        assert server.keys == [1, 2, 3, 4, 5, 6, 1] and server.batches == 0
        await backend.close()

    async def deadline() -> None:
        server = scripted(["slow"])
        backend = await AsyncRemoteBackend.connect(f"127.0.0.1:{server.port}", timeout=2.0)
        started = time.monotonic()
        with pytest.raises(ServiceUnavailableError, match="DEADLINE_EXCEEDED"):
            await backend.cell_by_key(1)
        assert time.monotonic() - started < 10 and server.attempts == 1
        await backend.close()

    async def copied(replicate_after: int | None, max_replica_bytes: int) -> tuple[bool, list[int], list[bool]]:
        """Whether the dataset was copied, the keys fetched one by one, and which of 4 answers were absent."""
        server = scripted([])
        server.stored_key = stored
        backend = await AsyncRemoteBackend.connect(
            f"127.0.0.1:{server.port}", replicate_after=replicate_after, max_replica_bytes=max_replica_bytes
        )
        answers = [await backend.cell_by_key(key) for key in (1, 2, 3, stored)]
        await backend.close()
        return server.batches > 0, server.keys, [cell is None for cell in answers]

    asyncio.run(bounded())
    asyncio.run(deadline())
    # copied after the second miss: key 3 is absent from the copy, the stored cell in it
    assert asyncio.run(copied(2, 1 << 30)) == (True, [1, 2], [False, False, True, False])
    assert asyncio.run(copied(3, 1 << 30)) == (True, [1, 2, 3], [False] * 4)
    # the copy's size: 1 cell x (1 budget x 3 repeats x 8 values x 8 bytes + 37 bytes of key, hash and the rest)
    assert asyncio.run(copied(2, 229)) == (True, [1, 2], [False, False, True, False]), "a copy of exactly the bound"
    assert asyncio.run(copied(2, 228)) == (False, [1, 2, 3, stored], [False] * 4), "over the bound: never copied"
    assert asyncio.run(copied(None, 1 << 30)) == (False, [1, 2, 3, stored], [False] * 4)


# --- copying the dataset (``RemoteCells.columns``), driven by hand --------------------------------------------


def _drive(exchange, answer):
    """Run an exchange of ``RemoteCells``, answering each call with ``answer(call)``."""
    step = next(exchange)
    while True:
        try:
            step = exchange.send(answer(step))
        except StopIteration as stop:
            return stop.value


def _connected(info: pb.Info):
    from nasbench._backends.remote import RemoteCells

    cells = RemoteCells("grpc://scripted", "scripted", 8, 5.0)
    _drive(cells.connect(), lambda call: info)
    return cells


def _batch_answer(stored: dict[int, int], epochs: int):
    """QueryBatch answers of a store holding the keys of ``stored`` (key -> its value), asked calls kept."""
    asked: list[list[int]] = []

    def answer(call):
        assert call.method == "QueryBatch" and call.request.repeat == pb.REPEAT_ALL
        keys = list(call.request.keys)
        asked.append(keys)
        found = np.array([key in stored for key in keys])
        values = np.array([stored.get(key, 0) for key in keys], dtype="<f8")
        metrics = np.repeat(values, epochs * 3 * 8) + np.tile(np.arange(epochs * 3 * 8), len(keys))
        return pb.QueryBatchResponse(
            count=len(keys),
            found=found.astype(np.uint8).tobytes(),
            keys=np.array(keys, dtype="<u8").tobytes(),
            representatives=(np.array(keys, dtype="<u8") + 1).tobytes(),
            trainable_parameters=np.array(values, dtype="<i4").tobytes(),
            metrics=metrics.tobytes(),
            hashes=b"".join(key.to_bytes(16, "big") for key in keys),
        )

    return answer, asked


@pytest.mark.parametrize(
    ("budgets", "max_batch", "chunk"),
    [
        (4, 0, 16384),  # the client's chunk
        (4, 5000, 5000),  # the server's limit
        (12, 0, (32 << 20) // (12 * 3 * 8 * 8 + 16 + 8 + 8 + 4 + 1)),  # the message bound (a store of 12 budgets)
    ],
)
def test_copying_asks_every_key_once_in_chunks_and_keeps_the_stored_cells(budgets: int, max_batch: int, chunk: int):
    from nasbench import space

    every_key = space.enumerate_cells().keys.tolist()
    stored = {key: float(index % 1000) for index, key in enumerate(every_key) if index % 997 == 0}
    manifest = json.dumps({"source": {"file": "x.tfrecord"}})
    info = pb.Info(epochs=range(1, budgets + 1), cells=len(stored), max_batch=max_batch, manifest_json=manifest)
    cells = _connected(info)
    answer, asked = _batch_answer(stored, budgets)
    columns = _drive(cells.columns(), answer)
    assert [key for keys in asked for key in keys] == every_key, "every key of the space, once, in order"
    assert {len(keys) for keys in asked[:-1]} == {chunk} and 0 < len(asked[-1]) <= chunk
    assert columns.keys.tolist() == sorted(stored) and columns.epochs == tuple(range(1, budgets + 1))
    assert columns.hashes.tobytes() == b"".join(key.to_bytes(16, "big") for key in sorted(stored))
    assert columns.representatives.tolist() == [key + 1 for key in sorted(stored)]
    assert columns.parameters.tolist() == [int(stored[key]) for key in sorted(stored)]
    expected = np.array([stored[key] for key in sorted(stored)])[:, None] + np.arange(budgets * 3 * 8)
    assert np.array_equal(columns.metrics.reshape(len(stored), -1), expected)
    assert columns.metrics.shape == (len(stored), budgets, 3, 8) and columns.source == {"file": "x.tfrecord"}
    assert (columns.keys.dtype, columns.representatives.dtype, columns.metrics.dtype) == (np.uint64, np.uint64, float)


def test_copying_refuses_inconsistent_answers():
    from nasbench import space
    from nasbench.errors import RemoteError

    every_key = space.enumerate_cells().keys.tolist()
    stored = {key: 1.0 for key in every_key[:10]}
    answer, _ = _batch_answer(stored, 1)

    def short(call):
        response = answer(call)
        response.found = response.found[:-1]
        return response

    for info_cells, reply, message in [
        (10, short, "answered a batch of 16384 cells inconsistently"),
        (9, answer, "answered a batch of 16384 cells inconsistently"),  # more found than it holds
        (11, answer, "holds 11 cells but 10 of them are cells of the space"),
    ]:
        cells = _connected(pb.Info(epochs=[108], cells=info_cells))
        with pytest.raises(RemoteError, match=message):
            _drive(cells.columns(), reply)
    assert _drive(_connected(pb.Info(epochs=[108], cells=10)).columns(), answer).keys.tolist() == every_key[:10]
    assert _connected(pb.Info(manifest_json="[1]")).source() == {} and _connected(pb.Info()).source() == {}


# --- the transports: streams under the deadline and with the token; the counters -------------------------------


def test_both_transports_stream_with_the_token_and_within_the_deadline(scripted) -> None:
    """``collect`` (server streaming) and ``stream`` (bidirectional), sync and asyncio: every message, the token
    and the dataset pin sent with each, and a held stream ended by the transport's deadline."""
    import asyncio

    from nasbench._backends.transport import AsyncTransport, Transport
    from nasbench.errors import ServiceUnavailableError

    server = scripted([])
    address = f"127.0.0.1:{server.port}"
    requests = [pb.QueryRequest(request_id=4), pb.QueryRequest(request_id=12)]

    def check_metadata() -> None:
        for method in ("ListCells", "QueryStream"):
            sent = server.metadata.pop(method)
            assert sent["authorization"] == "Bearer s3cret" and sent["nasbench-dataset"] == "pinned", method

    transport = Transport(address, token="s3cret", timeout=2.0)
    transport.pin("pinned")
    assert [m.hashes for m in transport.collect("ListCells", pb.ListCellsRequest())] == [bytes(16), bytes(range(16))]
    assert [a.request_id for a in transport.stream("QueryStream", iter(requests))] == [4, 12]
    check_metadata()

    async def asynchronous(hold: bool) -> None:
        async def feed():
            for request in requests:
                yield request

        transport = AsyncTransport(address, token="s3cret", timeout=2.0)
        transport.pin("pinned")
        if hold:
            for call in (
                transport.collect("ListCells", pb.ListCellsRequest()),
                _drain(transport.stream("QueryStream", feed())),
            ):
                started = time.monotonic()
                with pytest.raises(ServiceUnavailableError, match="DEADLINE_EXCEEDED"):
                    await call
                assert time.monotonic() - started < 10
        else:
            messages = await transport.collect("ListCells", pb.ListCellsRequest())
            assert [m.hashes for m in messages] == [bytes(16), bytes(range(16))]
            assert [answer.request_id async for answer in transport.stream("QueryStream", feed())] == [4, 12]
            check_metadata()
        await transport.close()
        await transport.close()  # idempotent

    asyncio.run(asynchronous(hold=False))
    server.hold_streams = True
    asyncio.run(asynchronous(hold=True))
    for call in (
        lambda: transport.collect("ListCells", pb.ListCellsRequest()),
        lambda: list(transport.stream("QueryStream", iter(requests))),
    ):
        started = time.monotonic()
        with pytest.raises(ServiceUnavailableError, match="DEADLINE_EXCEEDED"):
            call()
        assert time.monotonic() - started < 10


async def _drain(answers) -> list:
    return [answer async for answer in answers]


def test_client_stats_count_calls_by_code_and_lookups_by_hit() -> None:
    """Calls by target, method and final code (UNKNOWN for an error without one); cache hits one by one and
    lookups in bulk, added up; ``reset`` starts again from nothing."""
    import grpc

    from nasbench._backends.transport import ClientStats

    class Failed(grpc.RpcError):
        def __init__(self, code) -> None:
            self._code = code

        def code(self):
            return self._code

    stats = ClientStats()
    assert stats.snapshot() == ({}, {})
    for _ in range(3):
        stats.hit("a")
    stats.hit("b")
    stats.lookups("a", 2, 5)
    stats.lookups("a", 1, 0)
    with stats.counted("a", "Query"):
        pass
    for code in (grpc.StatusCode.UNAVAILABLE, None):
        with pytest.raises(Failed), stats.counted("a", "Query"):
            raise Failed(code)
    calls, lookups = stats.snapshot()
    assert calls == {("a", "Query", "OK"): 1, ("a", "Query", "UNAVAILABLE"): 1, ("a", "Query", "UNKNOWN"): 1}
    assert lookups == {("a", True): 6, ("a", False): 5, ("b", True): 1}
    assert stats.snapshot() == (calls, lookups), "reading changes nothing"
    stats.reset()
    assert stats.snapshot() == ({}, {})
    stats.hit("a")
    assert stats.snapshot() == ({}, {("a", True): 1})


def test_asyncio_calls_are_counted_by_target_method_and_code(scripted) -> None:
    import asyncio

    import grpc

    from nasbench._backends.transport import STATS, AsyncTransport

    server = scripted([grpc.StatusCode.INVALID_ARGUMENT])
    target = f"127.0.0.1:{server.port}"

    async def calls() -> None:
        transport = AsyncTransport(target, timeout=5.0)
        await transport.call("GetInfo", pb.GetInfoRequest())
        with pytest.raises(Exception, match="scripted INVALID_ARGUMENT"):
            await transport.call("GetMetrics", pb.GetMetricsRequest(cell=pb.CellRef(key=1)))
        await transport.collect("ListCells", pb.ListCellsRequest())
        await transport.close()

    asyncio.run(calls())
    counted = {key: n for key, n in STATS.snapshot()[0].items() if key[0] == target}
    assert counted == {
        (target, "GetInfo", "OK"): 1,
        (target, "GetMetrics", "INVALID_ARGUMENT"): 1,
        (target, "ListCells", "OK"): 1,
    }


@pytest.mark.parametrize(
    ("dataset", "described"),
    [
        ("127.0.0.1:5000", "the server 127.0.0.1:5000"),
        ("grpc://h:1", "the server grpc://h:1"),
        ("only108", "the dataset only108"),
        ("absent/nasbench_full.tfrecord", "the dataset file absent/nasbench_full.tfrecord"),
        ("absent/store.lmdb", "the store absent/store.lmdb"),
    ],
)
def test_each_kind_of_location_describes_itself(dataset: str, described: str) -> None:
    from nasbench._backends.address import parse

    assert parse(dataset).describe() == described


def test_both_transports_speak_tls_with_a_ca_given_as_a_file_or_bytes(scripted, tmp_path) -> None:
    """Against a TLS server: ``grpcs://`` with the CA as a file or as bytes, sync and asyncio; the same address
    without TLS gets no answer (named as such)."""
    import asyncio

    from nasbench._backends.transport import AsyncTransport, Transport
    from nasbench.errors import ServiceUnavailableError
    from tests.server.test_security import _certificates

    ca, cert, key = _certificates(tmp_path)
    server = scripted([], tls=(cert.read_bytes(), key.read_bytes()))
    secure, plain = f"grpcs://localhost:{server.port}", f"grpc://localhost:{server.port}"

    async def info(address: str, **settings) -> pb.Info:
        transport = AsyncTransport(address, timeout=5.0, **settings)
        try:
            return await transport.call("GetInfo", pb.GetInfoRequest())
        finally:
            await transport.close()

    for tls_ca in (ca, ca.read_bytes(), str(ca)):
        assert Transport(secure, tls_ca=tls_ca, timeout=5.0).call("GetInfo", pb.GetInfoRequest()).cells == 1
        assert asyncio.run(info(secure, tls_ca=tls_ca)).cells == 1
    with pytest.raises(ServiceUnavailableError, match="no nasbench server answered"):
        asyncio.run(info(plain))


def test_a_remote_client_says_where_the_served_data_came_from(server_address, full_store) -> None:
    """``dataset_source`` over a server is the served store's manifest's, from the synchronous and asyncio APIs."""
    import asyncio

    from nasbench import aio

    expected = api.NASBench(full_store).dataset_source

    async def source_async() -> dict:
        async with await aio.AsyncNASBench.connect(server_address) as nasbench:
            return nasbench.dataset_source

    assert expected["synthetic"] is True
    assert api.NASBench(server_address).dataset_source == expected
    assert asyncio.run(source_async()) == expected
