"""Read an original NAS-Bench-101 TFRecord file into a Dataset, checking every record.

Works for ``nasbench_full.tfrecord`` (budgets 4, 12, 36, 108), ``nasbench_only108.tfrecord`` and any subset.
The file is cut into pieces at record boundaries; worker processes frame, CRC-check and parse their pieces; the
main process groups records into cells (vectorized) and checks the groups. Every check fails with a
``SourceError`` naming the file, the record index and what is wrong.

Kept, as the original API keeps them (google-research/nasbench, ``nasbench/api.py``): the first record's fixed
statistics per hash, the file order of the three repeats per (hash, epochs), and the order of first appearance of
hashes.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nasbench import canonical, space
from nasbench._store import layout
from nasbench.errors import SourceError
from nasbench.lib import config
from nasbench_builder import records, tfrecord

log = logging.getLogger(__name__)

OFFICIAL_FILES = {
    "3d64db8180fb1b0207212f9032205064312b6907a3bbc81eabea10db2f5c7e9c": "nasbench_full.tfrecord",
    "4c39c3936e36a85269881d659e44e61a245babcb72cb374eacacf75d0e5f4fd1": "nasbench_only108.tfrecord",
}
_PIECE_SIZE = 16 << 20


@dataclass
class Piece:
    """What a worker found in one byte range of the file (per-record columns)."""

    start: int
    end: int  # offset just past the last record read
    count: int
    digests: np.ndarray  # uint8[n, 16]
    epochs: np.ndarray  # int64[n]
    codes: np.ndarray  # uint64[n] cell code of the record's own adjacency/ops
    keys: np.ndarray  # uint64[n] canonical key
    parameters: np.ndarray  # int64[n]
    values: np.ndarray  # float64[n, 8]
    error: tuple[int, str] | None = None  # (index within the piece, message)


_table: space.SpaceTable | None = None


def _init_worker(keys: np.ndarray, hashes: np.ndarray) -> None:
    global _table
    _table = space.SpaceTable(keys=keys, hashes=hashes)


def _outside_space(code: int) -> str:
    """Why a well-formed cell is not one of the space's cells."""
    edges = canonical.unpack(code)[1].bit_count()
    if edges > config.MAX_EDGES:
        return f"it has {edges} edges (max edges = {config.MAX_EDGES})"
    return "it is not pruned: some vertex is not on an input→output path"


def read_piece(path: str, start: int, stop: int) -> Piece:
    """Parse and check the records starting in ``[start, stop)`` (runs in a worker process)."""
    table = _table
    if table is None:
        raise RuntimeError("read_piece needs _init_worker first")
    digests, epochs, codes, keys, parameters, values = bytearray(), [], [], [], [], []
    last: tuple[str, str, str] | None = None
    code = key = 0
    end = start
    local = 0  # index within the piece of the record being read
    try:
        for _, offset, payload in tfrecord.read_records(path, start, stop):
            fields = records.split_payload(payload)
            cell = (fields.module_hash, fields.adjacency, fields.operations)
            if cell != last:
                code = records.cell_code(fields.adjacency, fields.operations)
                key = canonical.canonicalize(code)
                expected = table.digest_of_key(key)
                if expected is None:
                    raise ValueError(
                        f"adjacency and operations describe a cell outside the space: {_outside_space(code)}"
                    )
                digest = bytes.fromhex(fields.module_hash)
                if expected != digest:
                    raise ValueError(
                        f"hash {fields.module_hash} does not match the hash {expected.hex()} recomputed from the "
                        "record's own adjacency and operations"
                    )
                last = cell
            params, run = records.metrics_of(fields.metrics)
            digests += digest
            epochs.append(fields.epochs)
            codes.append(code)
            keys.append(key)
            parameters.append(params)
            values.append(run)
            end = offset + tfrecord.HEADER_SIZE + len(payload) + tfrecord.FOOTER_SIZE
            local += 1
        error = None
    except SourceError as exc:
        error = (local if exc.record is None else exc.record, exc.reason)
    except ValueError as exc:
        error = (local, str(exc))
    count = len(epochs)
    value_array = np.array(values, dtype=np.float64).reshape(count, len(layout.METRIC_FIELDS))
    non_finite = records.first_non_finite(value_array)
    if non_finite is not None and (error is None or non_finite[0] < error[0]):
        error = non_finite
    return Piece(
        start=start,
        end=end,
        count=count,
        digests=np.frombuffer(bytes(digests), dtype=np.uint8).reshape(count, 16),
        epochs=np.array(epochs, dtype=np.int64),
        codes=np.array(codes, dtype=np.uint64),
        keys=np.array(keys, dtype=np.uint64),
        parameters=np.array(parameters, dtype=np.int64),
        values=value_array,
        error=error,
    )


def split_points(path: Path, size: int, piece_size: int = _PIECE_SIZE) -> list[int]:
    """Record boundaries cutting the file into pieces of about ``piece_size`` bytes (always starting at 0)."""
    points = [0]
    for target in range(piece_size, size, piece_size):
        boundary = tfrecord.find_boundary(path, target)
        if boundary is not None and boundary > points[-1]:
            points.append(boundary)
    return points


def _pieces(path: Path, size: int, workers: int, table: space.SpaceTable, piece_size: int) -> Iterator[Piece]:
    points = split_points(path, size, piece_size) if workers > 1 else [0]
    ranges = list(zip(points, [*points[1:], size], strict=True))
    if len(ranges) == 1:
        _init_worker(table.keys, table.hashes)
        yield read_piece(str(path), 0, size)
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_init_worker, initargs=(table.keys, table.hashes)) as pool:
        yield from pool.imap(_read_piece_args, [(str(path), a, b) for a, b in ranges])


def _read_piece_args(args: tuple[str, int, int]) -> Piece:
    return read_piece(*args)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(8 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def check_source_file(path: Path) -> None:
    """A missing source and one that is no regular file (a folder, a pipe) are told apart, before any read."""
    if not path.exists():
        raise SourceError("no such file", path=str(path))
    if not path.is_file():
        raise SourceError("not a regular file (a .tfrecord file is expected)", path=str(path))


def read_dataset(
    path: str | os.PathLike[str],
    *,
    workers: int | None = None,
    table: space.SpaceTable | None = None,
    progress: Callable[[int, int], None] | None = None,
    piece_size: int = _PIECE_SIZE,
) -> layout.Dataset:
    """Read and check a whole file. ``progress(records_done, bytes_done)`` is called after each piece.

    Files up to ``piece_size`` bytes, or ``workers=1``, are read in this process; larger ones in pieces of
    about ``piece_size`` bytes by ``workers`` processes.

    Raises:
      SourceError: the first problem found, with the record index and a precise message.
    """
    path = Path(path)
    check_source_file(path)
    size = path.stat().st_size
    if size == 0:
        raise SourceError("the file is empty", path=str(path))
    table = table if table is not None else space.load_space()
    workers = workers or os.cpu_count() or 1
    pieces: list[Piece] = []
    done = 0
    for piece in _pieces(path, size, workers, table, piece_size):
        if pieces and piece.start != pieces[-1].end and pieces[-1].error is None:
            raise SourceError(
                f"could not split the file at record boundaries (byte {pieces[-1].end} vs {piece.start})",
                path=str(path),
            )
        if piece.error is not None:
            local, message = piece.error
            raise SourceError(message, path=str(path), record=done + local)
        done += piece.count
        pieces.append(piece)
        if progress is not None:
            progress(done, piece.end)
    if pieces[-1].end != size:
        raise SourceError(f"trailing bytes after the last record (byte {pieces[-1].end})", path=str(path))
    sha256 = file_sha256(path)
    source = {
        "name": path.name,
        "size": size,
        "mtime_ns": path.stat().st_mtime_ns,
        "sha256": sha256,
        "records": done,
        "official": OFFICIAL_FILES.get(sha256),
    }
    mark = None if source["official"] else _synthetic_mark(path)
    if mark is not None:
        source.update(synthetic=True, synthetic_mark=mark)
    return group_records(pieces, path, source)


def _synthetic_mark(path: Path) -> str | None:
    """The synthetic-data mark of the file's first record (``nasbench synth`` marks every record), or None."""
    for _, _, payload in tfrecord.read_records(path, 0, 1):
        return records.synthetic_mark(records.split_payload(payload).metrics)
    return None


def _concat(pieces: list[Piece], name: str) -> np.ndarray:
    return np.concatenate([getattr(piece, name) for piece in pieces])


def group_records(pieces: list[Piece], path: Path, source: dict[str, Any]) -> layout.Dataset:
    """Group per-record columns into cells and check every (hash, epochs) has exactly three repeats."""
    digests = _concat(pieces, "digests")
    epochs_of = _concat(pieces, "epochs")
    codes = _concat(pieces, "codes")
    record_keys = _concat(pieces, "keys")
    parameters = _concat(pieces, "parameters")
    values = _concat(pieces, "values")

    _, first, inverse = np.unique(
        np.ascontiguousarray(digests).view("V16").ravel(), return_index=True, return_inverse=True
    )
    order = np.argsort(first, kind="stable")  # unique index -> row, rows in order of first appearance
    row_of_unique = np.empty_like(order)
    row_of_unique[order] = np.arange(len(order))
    row = row_of_unique[inverse.ravel()]
    first_record = first[order]
    cells = len(first_record)

    mismatch = np.flatnonzero(codes != codes[first_record[row]])
    if mismatch.size:
        index = int(mismatch[0])
        raise SourceError(
            f"hash {digests[index].tobytes().hex()} is stored with a different adjacency or operations than in its "
            f"first record (record {int(first_record[row[index]])})",
            path=str(path),
            record=index,
        )

    budgets = tuple(int(e) for e in np.unique(epochs_of))
    budget = np.searchsorted(np.array(budgets), epochs_of)
    group = row * len(budgets) + budget
    counts = np.bincount(group, minlength=cells * len(budgets))
    _check_repeats(counts, group, budgets, first_record, digests, path)
    by_group = np.argsort(group, kind="stable")
    starts = np.searchsorted(group[by_group], np.arange(cells * len(budgets)))
    repeat = np.empty(len(group), dtype=np.int64)
    repeat[by_group] = np.arange(len(group)) - starts[group[by_group]]
    metrics = np.empty((cells, len(budgets), layout.NUM_REPEATS, len(layout.METRIC_FIELDS)), dtype=np.float64)
    metrics[row, budget, repeat] = values

    keys = record_keys[first_record]
    if len(np.unique(keys)) != cells:
        raise SourceError("two different hashes name the same cell (isomorphic duplicates)", path=str(path))
    return layout.Dataset(
        hashes=digests[first_record],
        keys=keys,
        representatives=codes[first_record],
        parameters=parameters[first_record].astype(np.int32),
        metrics=metrics,
        epochs=budgets,
        source=source,
    )


def _check_repeats(
    counts: np.ndarray,
    group: np.ndarray,
    budgets: tuple[int, ...],
    first_record: np.ndarray,
    digests: np.ndarray,
    path: Path,
) -> None:
    bad = np.flatnonzero(counts != layout.NUM_REPEATS)
    if not bad.size:
        return
    slot = int(bad[0])
    row, budget = divmod(slot, len(budgets))
    module_hash = digests[first_record[row]].tobytes().hex()
    members = np.flatnonzero(group == slot)
    found = int(counts[slot])
    if found > layout.NUM_REPEATS:
        raise SourceError(
            f"hash {module_hash} has more than {layout.NUM_REPEATS} repeats for {budgets[budget]} epochs "
            f"(records {', '.join(map(str, members[:6].tolist()))})",
            path=str(path),
            record=int(members[layout.NUM_REPEATS]),
        )
    where = f" (records {', '.join(map(str, members.tolist()))})" if found else ""
    raise SourceError(
        f"hash {module_hash} has {found} repeats for {budgets[budget]} epochs, expected {layout.NUM_REPEATS}{where}",
        path=str(path),
        record=int(members[-1]) if found else int(first_record[row]),
    )


def progress_printer(total_bytes: int) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A tqdm bar (records/s, ETA) on a terminal; a log line per 10% otherwise. Returns (update, close)."""
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=total_bytes, unit="B", unit_scale=True, desc="records", dynamic_ncols=True)

        def update(records_done: int, bytes_done: int) -> None:
            bar.update(bytes_done - bar.n)
            rate = records_done / max(bar.format_dict["elapsed"], 1e-9)
            bar.set_postfix_str(f"{records_done:,} records, {rate:,.0f} records/s", refresh=False)

        return update, bar.close

    marks = {"next": 1}  # in tenths of the file: integers, so 30 % is never skipped by a rounding error

    def log_update(records_done: int, bytes_done: int) -> None:
        if 10 * bytes_done >= marks["next"] * total_bytes:
            log.info("read %d records (%.0f%% of the file)", records_done, 100.0 * bytes_done / total_bytes)
            marks["next"] = 10 * bytes_done // total_bytes + 1

    return log_update, lambda: None
