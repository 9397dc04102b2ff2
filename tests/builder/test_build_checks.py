"""Every check of the builder, on corrupted copies of a real generated file: the message names the record, the
build exits with status 2, and no store (nor temporary file) is left behind."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from nasbench import _cli, canonical
from nasbench.lib.model_metrics_pb2 import ModelMetrics
from nasbench_builder import tfrecord

Records = list[bytes]


def _fields(payload: bytes) -> list:
    return json.loads(payload)


def _dump(fields: list) -> bytes:
    return json.dumps(fields).encode()


def _edit(index: int, change: Callable[[list], None]) -> Callable[[Records], Records]:
    def apply(payloads: Records) -> Records:
        fields = _fields(payloads[index])
        change(fields)
        return [*payloads[:index], _dump(fields), *payloads[index + 1 :]]

    return apply


def _set(position: int, value: object) -> Callable[[list], None]:
    def change(fields: list) -> None:
        fields[position] = value

    return change


def _metrics_edit(edit: Callable[[ModelMetrics], None]) -> Callable[[list], None]:
    def change(fields: list) -> None:
        message = ModelMetrics.FromString(base64.b64decode(fields[4]))
        edit(message)
        fields[4] = base64.b64encode(message.SerializeToString()).decode()

    return change


def _replace_op(fields: list) -> None:
    fields[3] = fields[3].replace("conv3x3-bn-relu", "conv5x5", 1)


def _drop_point(message: ModelMetrics) -> None:
    del message.evaluation_data[2]


def _nan_metric(message: ModelMetrics) -> None:
    message.evaluation_data[2].validation_accuracy = float("nan")


def _relabelled(fields: list) -> None:
    """An isomorphic relabelling of the record's cell: the hash still matches, the stored strings differ."""
    code = records_code(fields)
    matrix, ops = canonical.decode(code)
    for a in range(1, len(matrix) - 1):
        for b in range(a + 1, len(matrix) - 1):
            order = list(range(len(matrix)))
            order[a], order[b] = b, a
            permuted = matrix[np.ix_(order, order)]
            if not np.tril(permuted).any() and [ops[v] for v in order] != ops:
                fields[2] = "".join(str(x) for x in permuted.ravel())
                fields[3] = ",".join(ops[v] for v in order)
                return
    raise AssertionError("no relabelling found")


def records_code(fields: list) -> int:
    from nasbench_builder import records

    return records.cell_code(fields[2], fields[3])


def _find(payloads: Records, predicate: Callable[[list], bool]) -> int:
    return next(i for i, p in enumerate(payloads) if predicate(_fields(p)))


def _with_swappable_cell(payloads: Records) -> int:
    """Index of the first record (a repeat, not the first one of its hash) whose cell has a relabelling."""
    for index, payload in enumerate(payloads):
        fields = _fields(payload)
        _, bits, labels = canonical.unpack(records_code(fields))
        if len(labels) >= 2 and len(set(labels)) > 1 and index % 3 == 1 and not bits & (1 << canonical.edge_bit(1, 2)):
            return index
    raise AssertionError("no suitable cell")


CASES = [
    pytest.param(_edit(7, lambda f: f.append(1)), "a JSON list of 5 fields, got a list of 6", 7, id="6-fields"),
    pytest.param(_edit(8, _set(1, "108")), r"field 2 \(epochs\) must be a positive integer", 8, id="epochs-str"),
    pytest.param(_edit(9, _set(0, "xyz")), r"field 1 \(module hash\) must be 32", 9, id="bad-hash-format"),
    pytest.param(_edit(10, _set(2, "0100010")), "square number of 0/1", 10, id="adjacency-not-square"),
    pytest.param(_edit(11, _set(3, "input,output")), "name 2 ops for a", 11, id="ops-count"),
    pytest.param(
        lambda p: _edit(_find(p, lambda f: "conv3x3-bn-relu" in f[3]), _replace_op)(p),
        "unknown operation 'conv5x5'",
        None,
        id="unknown-op",
    ),
    pytest.param(_edit(13, _set(0, "0" * 32)), "does not match the hash .* recomputed", 13, id="hash-mismatch"),
    pytest.param(_edit(14, _metrics_edit(_drop_point)), "2 evaluation points, need 3", 14, id="two-points"),
    pytest.param(_edit(15, _metrics_edit(_nan_metric)), "final_validation_accuracy is not finite", 15, id="nan"),
    pytest.param(_edit(16, _set(4, "@@@")), "not valid base64", 16, id="bad-base64"),
    pytest.param(
        lambda p: [*p[:17], b'["28cfc7874f6d200472e1a9dcd8650aa0", 108', *p[18:]], "not valid JSON", 17, id="bad-json"
    ),
    pytest.param(
        lambda p: [*p[:18], b"[" * 100_000 + b"]" * 100_000, *p[19:]], "its JSON nests too deeply", 18, id="deep-json"
    ),
    pytest.param(lambda p: p[:20] + p[21:], "has 2 repeats for .* epochs, expected 3", 19, id="fewer-repeats"),
    pytest.param(lambda p: [*p[:25], p[24], *p[25:]], "has more than 3 repeats", 27, id="more-repeats"),
    pytest.param(
        lambda p: _edit(_find(p, lambda f: len(f[3].split(",")) == 4), _set(2, "0110000100000000"))(p),
        "outside the space: it is not pruned",
        None,
        id="not-pruned",
    ),
    pytest.param(
        lambda p: _edit(_with_swappable_cell(p), _relabelled)(p),
        "is stored with a different adjacency or operations than in its first record",
        None,
        id="representative-differs",
    ),
]


@pytest.mark.parametrize(("corrupt", "message", "record"), CASES)
def test_build_rejects_bad_records(
    tiny_tfrecord: Path, tmp_path: Path, capsys, corrupt, message: str, record: int | None
) -> None:
    payloads = [payload for _, _, payload in tfrecord.read_records(tiny_tfrecord)]
    broken = tmp_path / "broken.tfrecord"
    with tfrecord.TFRecordWriter(broken) as writer:
        writer.write_many(corrupt(payloads))
    store = tmp_path / "store.lmdb"
    assert _cli.main(["build", str(broken), str(store), "--workers", "1"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("nasbench build: error: ") and error.count("\n") == 1, error
    assert re.search(message, error), error
    assert "record " in error
    if record is not None:
        assert f"record {record}:" in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.tfrecord"]


def test_deeply_nested_json_read_by_worker_processes_is_one_line(tiny_tfrecord: Path, tmp_path: Path) -> None:
    """The recursion limit is met in a worker process of its own: the error still comes back as one line, no
    traceback, from the command as users run it."""
    payloads = [payload for _, _, payload in tfrecord.read_records(tiny_tfrecord)]
    broken = tmp_path / "broken.tfrecord"
    with tfrecord.TFRecordWriter(broken) as writer:
        writer.write_many([*payloads[:18], b"[" * 100_000 + b"]" * 100_000, *payloads[19:]])
    command = [sys.executable, "-m", "nasbench._cli", "build", str(broken), str(tmp_path / "s.lmdb"), "--workers", "2"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 2
    # off a terminal, progress lines come first (the log); then the one error line, and no traceback
    problems = [line for line in done.stderr.splitlines() if not re.match(r"\d{4}-\d\d-\d\d [\d:,]+ INFO ", line)]
    assert len(problems) == 1 and problems[0].startswith("nasbench build: error: "), done.stderr
    assert "record 18: payload is not a record: its JSON nests too deeply" in problems[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.tfrecord"]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        pytest.param(lambda data: data[: len(data) - 100], "truncated file", id="truncated"),
        pytest.param(lambda data: data[:5000] + bytes([data[5000] ^ 0x40]) + data[5001:], "CRC mismatch", id="flip"),
        pytest.param(lambda data: b"", "the file is empty", id="empty"),
    ],
)
def test_build_rejects_damaged_files(tiny_tfrecord: Path, tmp_path: Path, capsys, damage, message: str) -> None:
    broken = tmp_path / "broken.tfrecord"
    broken.write_bytes(damage(tiny_tfrecord.read_bytes()))
    store = tmp_path / "store.lmdb"
    assert _cli.main(["build", str(broken), str(store)]) == 2
    assert message in capsys.readouterr().err
    assert not store.exists()


def test_errors_in_later_pieces_carry_absolute_record_indices(tiny_tfrecord: Path, tmp_path: Path) -> None:
    """With many small pieces read by two workers, the index of a bad record is still its index in the file."""
    from nasbench.errors import SourceError
    from nasbench_builder import source

    payloads = [payload for _, _, payload in tfrecord.read_records(tiny_tfrecord)]
    broken = tmp_path / "broken.tfrecord"
    with tfrecord.TFRecordWriter(broken) as writer:
        writer.write_many(_edit(1000, _set(2, "01"))(payloads))
    with pytest.raises(SourceError, match="record 1000:") as info:
        source.read_dataset(broken, workers=2, piece_size=16 << 10)
    assert (info.value.path, info.value.record) == (str(broken), 1000)
    assert str(info.value).startswith(f"{broken}: record 1000: ")


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        pytest.param(b"\x00" * 5, "truncated file: the record at byte {size} lacks its 12-byte header", id="5-bytes"),
        pytest.param(b"\x00" * 40, "CRC mismatch in the length header at byte {size}", id="40-zeros"),
        pytest.param(
            b"\x05" + b"\x00" * 7 + b"\x00" * 4 + b"abc",
            "CRC mismatch in the length header at byte {size}",
            id="header-with-a-wrong-crc",
        ),
    ],
)
def test_trailing_bytes_after_the_last_record(tiny_tfrecord: Path, tmp_path: Path, tail: bytes, message: str) -> None:
    """Bytes after the last record are never ignored: the error names the byte where they start."""
    from nasbench.errors import SourceError
    from nasbench_builder import source

    data = tiny_tfrecord.read_bytes()
    broken = tmp_path / "tail.tfrecord"
    broken.write_bytes(data + tail)
    with pytest.raises(SourceError, match=re.escape(message.format(size=len(data)))) as info:
        source.read_dataset(broken, workers=1)
    assert info.value.record == 1092


def test_a_truncated_last_record_is_named(tiny_tfrecord: Path, tmp_path: Path) -> None:
    from nasbench.errors import SourceError
    from nasbench_builder import source

    data = tiny_tfrecord.read_bytes()
    broken = tmp_path / "cut.tfrecord"
    broken.write_bytes(data[:-3])
    with pytest.raises(SourceError, match="record 1091: truncated file: the record at byte") as info:
        source.read_dataset(broken, workers=1)
    assert info.value.record == 1091


def test_two_hashes_naming_one_cell_are_refused(tiny_tfrecord: Path, tmp_path: Path, space_table) -> None:
    """Grouping refuses two different hashes whose records describe the same cell (isomorphic duplicates).
    Records cannot carry such a pair past the per-record hash check, so the parsed columns are changed here."""
    from nasbench.errors import SourceError
    from nasbench_builder import source

    source._init_worker(space_table.keys, space_table.hashes)
    piece = source.read_piece(str(tiny_tfrecord), 0, tiny_tfrecord.stat().st_size)
    digests, keys, codes = piece.digests.copy(), piece.keys.copy(), piece.codes.copy()
    keys[12:24], codes[12:24] = keys[0], codes[0]  # the second cell's 12 records now describe the first cell
    assert (digests[12] != digests[0]).any()
    changed = source.Piece(**{**vars(piece), "digests": digests, "keys": keys, "codes": codes})
    with pytest.raises(SourceError) as info:
        source.group_records([changed], tmp_path / "x.tfrecord", {})
    where = tmp_path / "x.tfrecord"
    assert str(info.value) == f"{where}: two different hashes name the same cell (isomorphic duplicates)"
    assert info.value.path == str(where)
    source.group_records([piece], tmp_path / "x.tfrecord", {})  # the columns as read group fine


@pytest.mark.parametrize(
    ("sha256", "official"),
    [
        # the two files of the dataset (google-research/nasbench README.md), recognized by their SHA-256
        ("3d64db8180fb1b0207212f9032205064312b6907a3bbc81eabea10db2f5c7e9c", "nasbench_full.tfrecord"),
        ("4c39c3936e36a85269881d659e44e61a245babcb72cb374eacacf75d0e5f4fd1", "nasbench_only108.tfrecord"),
        ("0" * 64, None),
    ],
)
def test_official_files_are_named_by_sha256(
    tiny_tfrecord: Path, tmp_path: Path, monkeypatch, capsys, sha256: str, official: str | None
) -> None:
    """The manifest records the file's SHA-256 and, for the two published files, which one it is; ``verify``
    says so. (The real files cannot be downloaded here: the digest of the small file is replaced.)"""
    import hashlib

    from nasbench_builder import source

    assert source.file_sha256(tiny_tfrecord) == hashlib.sha256(tiny_tfrecord.read_bytes()).hexdigest()
    monkeypatch.setattr(source, "file_sha256", lambda path: sha256)
    store = tmp_path / "store.lmdb"
    assert _cli.main(["build", str(tiny_tfrecord), str(store), "--workers", "1"]) == 0
    assert _cli.main(["verify", str(store), "--json"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert (manifest["source"]["sha256"], manifest["source"]["official"]) == (sha256, official)
    assert manifest["source"]["records"] == 1092 and manifest["source"]["size"] == tiny_tfrecord.stat().st_size
    assert _cli.main(["verify", str(store)]) == 0
    printed = capsys.readouterr().out
    assert (f"  official file: {official}\n" in printed) is (official is not None)
    assert f"sha256: {sha256}" in printed


def _read(payloads: Records, tmp_path: Path):
    from nasbench_builder import source

    path = tmp_path / "records.tfrecord"
    with tfrecord.TFRecordWriter(path) as writer:
        writer.write_many(payloads)
    return path, lambda: source.read_dataset(path, workers=1)


def test_a_wrong_hash_is_named_with_the_recomputed_one(tiny_tfrecord: Path, tmp_path: Path) -> None:
    from nasbench.errors import SourceError

    payloads = [payload for _, _, payload in tfrecord.read_records(tiny_tfrecord)]
    right = _fields(payloads[13])[0]
    path, read = _read(_edit(13, _set(0, "0" * 32))(payloads), tmp_path)
    with pytest.raises(SourceError) as info:
        read()
    assert str(info.value) == (
        f"{path}: record 13: hash {'0' * 32} does not match the hash {right} recomputed from the record's own "
        "adjacency and operations"
    )


@pytest.mark.parametrize(
    ("adjacency", "ops", "why"),
    [
        # 7 vertices, 11 edges, all on input→output paths
        (
            "0111111000000100000010000001000000100000010000000",
            "input,conv3x3-bn-relu,conv3x3-bn-relu,conv3x3-bn-relu,conv3x3-bn-relu,conv3x3-bn-relu,output",
            "it has 11 edges (max edges = 9)",
        ),
        # 7 vertices, exactly 9 edges, vertex 5 on no path to the output: too big only because it is not pruned
        (
            "0111110000000100000010000001000000100000000000000",
            "input,conv3x3-bn-relu,conv3x3-bn-relu,conv3x3-bn-relu,conv3x3-bn-relu,maxpool3x3,output",
            "it is not pruned: some vertex is not on an input→output path",
        ),
    ],
)
def test_cells_outside_the_space_say_why(
    tiny_tfrecord: Path, tmp_path: Path, adjacency: str, ops: str, why: str
) -> None:
    from nasbench.errors import SourceError

    assert adjacency.count("1") in (9, 11)
    payloads = [payload for _, _, payload in tfrecord.read_records(tiny_tfrecord)]
    path, read = _read(_edit(5, lambda f: f.__setitem__(slice(2, 4), [adjacency, ops]))(payloads), tmp_path)
    with pytest.raises(SourceError) as info:
        read()
    assert str(info.value) == f"{path}: record 5: adjacency and operations describe a cell outside the space: {why}"


def test_the_first_problem_in_file_order_is_reported(tiny_tfrecord: Path, tmp_path: Path) -> None:
    """A non-finite metric (found when the piece is done) is reported before a malformed record after it."""
    from nasbench.errors import SourceError

    payloads = [payload for _, _, payload in tfrecord.read_records(tiny_tfrecord)]
    broken = _edit(3, _metrics_edit(_nan_metric))(payloads)
    broken[10] = b"[not json"
    path, read = _read(broken, tmp_path)
    with pytest.raises(SourceError) as info:
        read()
    assert str(info.value) == f"{path}: record 3: metric final_validation_accuracy is not finite (nan)"
    broken[3] = payloads[3]  # only the malformed record remains
    path, read = _read(broken, tmp_path)
    with pytest.raises(SourceError, match=r"record 10: payload is not valid JSON"):
        read()


def test_read_piece_needs_the_space_table(tiny_tfrecord: Path, monkeypatch) -> None:
    from nasbench_builder import source

    monkeypatch.setattr(source, "_table", None)
    with pytest.raises(RuntimeError) as info:
        source.read_piece(str(tiny_tfrecord), 0, 100)
    assert str(info.value) == "read_piece needs _init_worker first"


def test_progress_is_logged_every_tenth_of_the_file(caplog, monkeypatch) -> None:
    import logging

    from nasbench_builder import source

    monkeypatch.setattr(source.sys.stderr, "isatty", lambda: False, raising=False)
    update, close = source.progress_printer(1000)
    with caplog.at_level(logging.INFO, logger="nasbench_builder.source"):
        for records, done in ((10, 50), (20, 100), (25, 150), (40, 230), (41, 231), (100, 1000)):
            update(records, done)
        close()
    assert [record.getMessage() for record in caplog.records] == [
        "read 20 records (10% of the file)",
        "read 40 records (23% of the file)",
        "read 100 records (100% of the file)",
    ]


def test_progress_bar_on_a_terminal(monkeypatch, capsys) -> None:
    from nasbench_builder import source

    monkeypatch.setattr(source.sys.stderr, "isatty", lambda: True, raising=False)
    update, close = source.progress_printer(2000)
    update(150, 500)
    update(300, 1000)
    close()
    err = capsys.readouterr().err
    assert "300 records" in err and "records/s" in err and "1.00k/2.00k" in err


def test_workers_read_pieces_in_spawned_processes_and_one_worker_in_this_one(tiny_tfrecord: Path, monkeypatch) -> None:
    """``workers=1`` (or a file within one piece) is read in this process, never through a pool; more workers
    read pieces in that many spawned processes (fork is unsafe once grpc or threads run). Same dataset."""
    import multiprocessing

    from nasbench_builder import source

    contexts: list[tuple[str | None, int | None]] = []
    real = multiprocessing.get_context

    class Recording:
        def __init__(self, method: str | None) -> None:
            self._context = real(method)
            self._method = method

        def Pool(self, processes=None, *args, **kwargs):
            contexts.append((self._method, processes))
            return self._context.Pool(processes, *args, **kwargs)

    monkeypatch.setattr(source.multiprocessing, "get_context", Recording)
    single = source.read_dataset(tiny_tfrecord, workers=1, piece_size=16 << 10)
    whole = source.read_dataset(tiny_tfrecord, workers=2, piece_size=tiny_tfrecord.stat().st_size + 1)
    assert contexts == []
    pooled = source.read_dataset(tiny_tfrecord, workers=2, piece_size=16 << 10)
    assert contexts == [("spawn", 2)]
    for other in (whole, pooled):
        np.testing.assert_array_equal(other.hashes, single.hashes)
        np.testing.assert_array_equal(other.metrics, single.metrics)
    assert single.source["records"] == pooled.source["records"] == 1092


def test_read_dataset_names_the_file_in_its_own_errors(tmp_path: Path) -> None:
    from nasbench.errors import SourceError
    from nasbench_builder import source

    missing, empty, fifo = tmp_path / "missing.tfrecord", tmp_path / "empty.tfrecord", tmp_path / "fifo.tfrecord"
    empty.touch()
    os.mkfifo(fifo)
    not_regular = "not a regular file (a .tfrecord file is expected)"
    cases = ((missing, "no such file"), (empty, "the file is empty"), (fifo, not_regular), (tmp_path, not_regular))
    for path, reason in cases:
        with pytest.raises(SourceError) as info:
            source.read_dataset(path, workers=1)
        assert (info.value.path, info.value.record, info.value.reason) == (str(path), None, reason)
        assert str(info.value) == f"{path}: {reason}"


def test_pieces_that_do_not_meet_are_refused(tiny_tfrecord: Path, monkeypatch) -> None:
    """A cut that is no record boundary (two CRCs colliding could fake one): the first piece ends past it, so the
    pieces do not meet, and the file is refused rather than read twice or with a gap."""
    from nasbench.errors import SourceError
    from nasbench_builder import source

    offsets = [offset for _, offset, _ in tfrecord.read_records(tiny_tfrecord)]
    cut = offsets[500] + 1
    monkeypatch.setattr(source, "split_points", lambda path, size, piece_size: [0, cut])
    with pytest.raises(SourceError) as info:
        source.read_dataset(tiny_tfrecord, workers=2, piece_size=16 << 10)
    message = f"could not split the file at record boundaries (byte {offsets[501]} vs {cut})"
    assert (info.value.path, info.value.record, info.value.reason) == (str(tiny_tfrecord), None, message)


def test_a_last_piece_ending_before_the_file_does_is_refused(tiny_tfrecord: Path, monkeypatch) -> None:
    """The reader's own guard: pieces that stop short of the end of the file (nothing read past them) are an
    error naming the byte, never a silently shorter dataset."""
    from nasbench.errors import SourceError
    from nasbench_builder import source

    real = source.read_piece
    size = tiny_tfrecord.stat().st_size
    offsets = [offset for _, offset, _ in tfrecord.read_records(tiny_tfrecord)]
    monkeypatch.setattr(source, "read_piece", lambda path, start, stop: real(path, start, offsets[-1]))
    with pytest.raises(SourceError) as info:
        source.read_dataset(tiny_tfrecord, workers=1)
    assert offsets[-1] < size
    assert (info.value.path, info.value.record, info.value.reason) == (
        str(tiny_tfrecord),
        None,
        f"trailing bytes after the last record (byte {offsets[-1]})",
    )


def test_progress_is_reported_after_each_piece(tiny_tfrecord: Path) -> None:
    from nasbench_builder import source

    calls: list[tuple[int, int]] = []
    dataset = source.read_dataset(tiny_tfrecord, workers=2, piece_size=16 << 10, progress=lambda *a: calls.append(a))
    size = tiny_tfrecord.stat().st_size
    assert len(calls) >= 3 and calls[-1] == (1092, size)
    assert [c[0] for c in calls] == sorted({c[0] for c in calls}) and [c[1] for c in calls] == sorted(
        {c[1] for c in calls}
    )
    assert dataset.source["records"] == 1092 and dataset.source["name"] == tiny_tfrecord.name
    assert dataset.source["size"] == size and dataset.source["mtime_ns"] == tiny_tfrecord.stat().st_mtime_ns


def _read_broken(tmp_path: Path, payloads: Records):
    from nasbench.errors import SourceError
    from nasbench_builder import source

    broken = tmp_path / "repeats.tfrecord"
    with tfrecord.TFRecordWriter(broken) as writer:
        writer.write_many(payloads)
    with pytest.raises(SourceError) as info:
        source.read_dataset(broken, workers=1)
    assert info.value.path == str(broken)
    return info.value


def test_repeat_counts_are_named_whole(tiny_tfrecord: Path, tmp_path: Path) -> None:
    """Too many, too few, and no repeats of a (hash, epochs): the message names the hash, the budget and the
    records (file indices, at most six listed), and the error points at the record where the problem shows."""
    payloads = [payload for _, _, payload in tfrecord.read_records(tiny_tfrecord)]
    fields = [_fields(p) for p in payloads]

    def members(records: Records, module_hash: str, epochs: int) -> list[int]:
        return [i for i, p in enumerate(records) if _fields(p)[:2] == [module_hash, epochs]]

    module_hash, epochs = fields[30][:2]
    group = members(payloads, module_hash, epochs)
    assert len(group) == 3
    more = [*payloads, *[payloads[group[0]]] * 4]  # seven records of one (hash, epochs)
    error = _read_broken(tmp_path, more)
    seven = members(more, module_hash, epochs)
    assert len(seven) == 7
    assert error.reason == (
        f"hash {module_hash} has more than 3 repeats for {epochs} epochs (records {', '.join(map(str, seven[:6]))})"
    )
    assert error.record == seven[3]

    fewer = [p for i, p in enumerate(payloads) if i != group[1]]
    error = _read_broken(tmp_path, fewer)
    two = members(fewer, module_hash, epochs)
    assert (
        error.reason == f"hash {module_hash} has 2 repeats for {epochs} epochs, expected 3 (records {two[0]}, {two[1]})"
    )
    assert error.record == two[1]

    single = [p for i, p in enumerate(payloads) if i not in group[1:]]
    error = _read_broken(tmp_path, single)
    [one] = members(single, module_hash, epochs)
    assert error.reason == f"hash {module_hash} has 1 repeats for {epochs} epochs, expected 3 (records {one})"
    assert error.record == one

    other = next(e for e in sorted({f[1] for f in fields}) if e != epochs)
    none = [p for p in payloads if _fields(p)[:2] != [module_hash, other]]
    error = _read_broken(tmp_path, none)
    assert error.reason == f"hash {module_hash} has 0 repeats for {other} epochs, expected 3"
    assert error.record == next(i for i, p in enumerate(none) if _fields(p)[0] == module_hash)


def test_progress_on_a_terminal_is_a_bar_of_bytes_and_records(monkeypatch) -> None:
    import io
    import re as regex

    from nasbench_builder import source

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    update, close = source.progress_printer(4_000_000)
    update(1_000, 2_000_000)
    update(2_000, 4_000_000)
    close()
    last = terminal.getvalue().replace("\r", "\n").strip().splitlines()[-1]
    match = regex.fullmatch(r"records: 100%\|.*\| 4\.00M/4\.00M \[.*, 2,000 records, ([\d,]+) records/s\]", last)
    assert match, last
    assert int(match.group(1).replace(",", "")) > 2_000  # two thousand records in well under a second


def test_progress_elsewhere_is_a_log_line_per_tenth(monkeypatch, caplog) -> None:
    import io
    import logging

    from nasbench_builder import source

    monkeypatch.setattr("sys.stderr", io.StringIO())
    update, close = source.progress_printer(1_000)
    with caplog.at_level(logging.INFO):
        for step in range(1, 11):
            update(step * 7, step * 100)
        close()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("read ")]
    assert lines == [f"read {step * 7} records ({step * 10}% of the file)" for step in range(1, 11)]
