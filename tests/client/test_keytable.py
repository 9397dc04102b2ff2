"""The precomputed key table: equal to a fresh enumeration, shared through its file, never trusted when damaged."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
import xxhash

from nasbench import canonical, space
from nasbench._cells import codes, keytable
from nasbench.lib import config
from tests import oracles
from tests.unprivileged import AS_NOBODY

I, O = config.INPUT, config.OUTPUT
C3, C1, MP = config.CONV3X3, config.CONV1X1, config.MAXPOOL3X3


@pytest.fixture(scope="module")
def payload() -> bytes:
    """The payload of the shared table file (checked against the digest when it was mapped)."""
    table = keytable.table()
    assert table.path is not None, "the cache folder should be writable in tests"
    return table.path.read_bytes()[64:]


def _write_table(path: Path, payload: bytes, header: bytes | None = None) -> None:
    head = (
        header
        if header is not None
        else keytable._HEADER.pack(
            keytable._MAGIC, keytable.FORMAT, keytable.NUM_STRUCTURES, keytable.NUM_LABELLED_GRAPHS
        )
    )
    path.write_bytes(head.ljust(64, b"\0") + payload)


@pytest.mark.slow
def test_table_equals_a_fresh_enumeration() -> None:
    """Every labelled graph of the space, in enumeration order: the table's key is the key the search over vertex
    orders finds (``oracles.labelled_graphs``, an independent implementation), and the digest is the constant;
    ``nasbench.space`` reads the same keys from the table."""
    table = keytable.table()
    payload = keytable.compute_payload()
    assert xxhash.xxh3_128_hexdigest(payload) == keytable.TABLE_XXH3_128
    codes, keys = [], []
    for num_vertices in range(canonical.MIN_VERTICES, canonical.MAX_VERTICES + 1):
        labelled, labelled_keys = oracles.labelled_graphs(num_vertices)
        from_space = space.labelled_graphs(num_vertices)
        np.testing.assert_array_equal(from_space[0], labelled)
        np.testing.assert_array_equal(from_space[1], labelled_keys)
        codes.append(labelled)
        keys.append(labelled_keys)
    all_codes, all_keys = np.concatenate(codes), np.concatenate(keys)
    assert len(all_keys) == space.NUM_LABELLED_GRAPHS == keytable.NUM_LABELLED_GRAPHS
    np.testing.assert_array_equal(table.keys, all_keys)
    structures = np.unique(all_codes >> np.uint64(canonical.BITS_SHIFT))
    np.testing.assert_array_equal(table.structures, structures)
    # Each labelled graph's own code finds its key through the table, and its matrix through by_matrix.
    looked_up = np.array([table.key_of_code(code) for code in all_codes.tolist()], dtype=np.uint64)
    np.testing.assert_array_equal(looked_up, all_keys)
    for index, code in enumerate(table.structures.tolist()):
        size = code >> (canonical.VERTICES_SHIFT - canonical.BITS_SHIFT)
        matrix, _ = canonical.decode(code << canonical.BITS_SHIFT)
        assert table.matrix_bytes[index] == matrix.astype(np.uint8).tobytes() and len(matrix) == size
        assert table.by_matrix[table.matrix_bytes[index]] == table.offsets[index]
    assert set(np.unique(all_keys).tolist()) == set(space.enumerate_cells().keys.tolist())


def test_small_cells_equal_the_enumeration() -> None:
    """The quick version of the slow test: every labelled graph of 2 to 5 vertices, and random ones of 6 and 7."""
    table = keytable.table()
    rng = np.random.default_rng(0)
    for num_vertices in range(canonical.MIN_VERTICES, canonical.MAX_VERTICES + 1):
        codes, keys = space.labelled_graphs(num_vertices) if num_vertices <= 5 else _some_labelled(num_vertices, rng)
        for code, key in zip(codes.tolist(), keys.tolist(), strict=True):
            assert table.key_of_code(code) == key == canonical.solve(code)
            matrix, ops = canonical.decode(code)
            assert keytable.key_of(matrix, ops) == key


def _some_labelled(num_vertices: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    structures = space.structures(num_vertices)
    codes = []
    for bits in rng.choice(structures, size=40, replace=False).tolist():
        labels = rng.integers(0, 3, size=num_vertices - 2).tolist()
        codes.append(canonical.pack(num_vertices, bits, labels))
    keys = [canonical.solve(code) for code in codes]
    return np.array(codes, dtype=np.uint64), np.array(keys, dtype=np.uint64)


def test_every_integer_dtype_finds_the_same_key() -> None:
    matrix = np.array([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]])
    ops = [I, C1, MP, O]
    expected = canonical.solve(canonical.cell_code(matrix, ops))
    for dtype in (bool, np.int8, np.uint8, np.int16, ">i2", np.uint32, ">u4", np.int64, ">i8"):
        assert keytable.key_of(matrix.astype(dtype), ops) == expected, dtype
        assert canonical.canonical_key(matrix.astype(dtype), ops) == expected, dtype
    assert keytable.key_of(np.asfortranarray(matrix), ops) == expected
    assert keytable.key_of(matrix, tuple(ops)) == expected


@pytest.mark.parametrize(
    ("matrix", "ops"),
    [
        pytest.param(np.triu(np.ones((6, 6), dtype=int), 1), [I, C3, C3, C1, MP, O], id="15-edges"),
        pytest.param(np.array([[0, 1], [0, 0]], dtype=float), [I, O], id="float"),
        pytest.param(np.array([[0, 2, 0], [0, 0, 1], [0, 0, 0]]), [I, C3, O], id="entry-2"),
        pytest.param(np.array([[0, 257, 0], [0, 0, 1], [0, 0, 0]]), [I, C3, O], id="entry-257"),
        pytest.param(np.array([[0, -1, 0], [0, 0, 1], [0, 0, 0]], dtype=np.int8), [I, C3, O], id="entry-minus-1"),
        pytest.param(np.array([[0, 1, 0], [0, 0, 0], [0, 0, 0]]), [I, C3, O], id="not-a-full-dag"),
        pytest.param(np.array([[0, 0], [1, 0]]), [I, O], id="lower"),
        pytest.param(np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]]), [I, "conv5x5", O], id="unknown-op"),
        pytest.param(np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]]), [I, [C3], O], id="unhashable-op"),
        pytest.param(np.array([[0, 1, 0, 0, 1, 0, 0, 0, 1]]), [I, C3, O], id="not-square"),
        pytest.param(np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]]), [I, C3, C3, O], id="ops-mismatch"),
    ],
)
def test_cells_outside_the_table_are_left_to_the_slow_path(matrix: np.ndarray, ops: list) -> None:
    assert keytable.key_of(matrix, ops) is None


def test_keys_beyond_the_table_are_still_exact() -> None:
    """More than 9 edges: the table has no entry; canonical_key solves it, invariant under relabelling."""
    matrix = np.triu(np.ones((6, 6), dtype=np.int8), 1)
    matrix[1, 2] = matrix[3, 4] = 0  # 13 edges
    ops = [I, C3, C1, C1, MP, O]
    key = canonical.canonical_key(matrix, ops)
    assert key == canonical.solve(canonical.cell_code(matrix, ops))
    rng = random.Random(3)
    for _ in range(20):
        order = [0, *rng.sample(range(1, 5), 4), 5]
        permuted = matrix[np.ix_(order, order)]
        if np.any(np.tril(permuted)):
            continue
        assert canonical.canonical_key(permuted, [ops[v] for v in order]) == key


def test_codes_with_unknown_labels_are_solved_as_before() -> None:
    """A label digit 3 names no op: the table refuses it and canonicalize answers as the search did."""
    code = canonical.pack(4, 0b111101, [3, 0])
    assert keytable.table().key_of_code(code) is None
    assert canonical.canonicalize(code) == canonical.solve(code)
    clean = canonical.pack(4, 0b111101, [2, 1])
    assert canonical.canonicalize(clean | 0b1111 << 4) == canonical.canonicalize(clean)  # digits past the interior


def test_the_table_is_mapped_from_its_file(payload: bytes) -> None:
    table = keytable.table()
    assert table.path is not None
    with open("/proc/self/maps") as maps:
        assert str(table.path) in maps.read()
    assert len(payload) == keytable.payload_size()


@pytest.mark.parametrize("damage", ["flipped-key", "truncated", "stale-format", "wrong-magic", "empty", "garbage"])
def test_a_damaged_or_stale_table_is_rebuilt_not_used(
    tmp_path: Path, payload: bytes, damage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "keytable-v1.bin"
    if damage == "flipped-key":
        broken = bytearray(payload)
        broken[-5000] ^= 0x10
        _write_table(path, bytes(broken))
    elif damage == "truncated":
        _write_table(path, payload[:-8])
    elif damage == "stale-format":
        _write_table(path, payload, keytable._HEADER.pack(keytable._MAGIC, keytable.FORMAT - 1, 6472, 1293208))
    elif damage == "wrong-magic":
        _write_table(path, payload, keytable._HEADER.pack(b"NOTATABL", keytable.FORMAT, 6472, 1293208))
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        path.write_bytes(os.urandom(4096))
    assert keytable._map(path) is None
    computed = []
    monkeypatch.setattr(keytable, "compute_payload", lambda: computed.append(1) or payload)
    rebuilt = keytable._open(path)
    assert computed == [1]
    assert rebuilt.path == path and keytable.is_valid(path.read_bytes())
    np.testing.assert_array_equal(rebuilt.keys, keytable.table().keys)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left behind
    again = keytable._open(path)
    assert computed == [1]  # a valid file is mapped, not recomputed
    assert again.key_of_code(canonical.pack(3, 0b111, [1])) == canonical.pack(3, 0b111, [1])


# Opens the table in a folder it cannot write, its payload from a file (computing it takes seconds): where the
# table lives (None: in memory) and the digest of its keys.
_OPEN_UNWRITABLE = """
import hashlib, sys
from pathlib import Path
from nasbench._cells import keytable
payload = Path(sys.argv[2]).read_bytes()
keytable.compute_payload = lambda: payload
table = keytable._open(Path(sys.argv[1]) / "keytable-v1.bin")
print(table.path, hashlib.sha256(table.keys.tobytes()).hexdigest())
"""


@pytest.mark.unprivileged
def test_an_unwritable_cache_keeps_the_table_in_memory(payload: bytes) -> None:
    """A process that cannot write its cache folder computes the table and keeps it in memory, the same keys. Run
    as nobody (root writes anywhere)."""
    root = Path(tempfile.mkdtemp(prefix="nasbench-unwritable-"))
    try:
        root.chmod(0o755)
        folder = root / "read-only"
        folder.mkdir(mode=0o555)
        (root / "payload.bin").write_bytes(payload)
        command = [*AS_NOBODY, sys.executable, "-c", _OPEN_UNWRITABLE, str(folder), str(root / "payload.bin")]
        env = {**os.environ, "HOME": str(root), "NASBENCH_CACHE_DIR": str(folder)}
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, cwd=root)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["None", hashlib.sha256(keytable.table().keys.tobytes()).hexdigest()]
        assert list(folder.iterdir()) == []
    finally:
        shutil.rmtree(root)


def test_an_unwritable_cache_folder_path_keeps_the_table_in_memory(
    tmp_path: Path, payload: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache 'folder' that is a file cannot hold the table: it is computed and kept in memory."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_bytes(b"x")
    monkeypatch.setattr(keytable, "compute_payload", lambda: payload)
    table = keytable._open(blocker / "keytable-v1.bin")
    assert table.path is None
    assert table.key_of_code(canonical.pack(2, 1, [])) == canonical.pack(2, 1, [])


def test_threads_share_one_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keytable, "_table", None)
    found: list[keytable.KeyTable] = []
    threads = [threading.Thread(target=lambda: found.append(keytable.table())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 8 and all(table is found[0] for table in found)


def test_cell_of_code_decodes_like_canonical() -> None:
    table = keytable.table()
    for key in space.enumerate_cells().keys[::4001].tolist():
        matrix, ops = table.cell_of_code(key)
        expected_matrix, expected_ops = canonical.decode(key)
        np.testing.assert_array_equal(matrix, expected_matrix)
        assert matrix.dtype == np.int8 and not matrix.flags.writeable
        assert list(ops) == expected_ops
    assert table.cell_of_code(canonical.pack(3, 0b1, [0])) is None  # not a full DAG: no structure of the space


def _matrix_of_bits(num_vertices: int, bits: int) -> np.ndarray:
    matrix = np.zeros((num_vertices, num_vertices), dtype=np.int8)
    for src, dst in canonical.edges_of(num_vertices, bits):
        matrix[src, dst] = 1
    return matrix


def _check_pruning(num_vertices: int, patterns: list[int]) -> None:
    from nasbench.lib import model_spec

    table = keytable.table()
    for bits in patterns:
        matrix = _matrix_of_bits(num_vertices, bits)
        lanes = codes.lanes01(matrix)
        assert codes.lanes_bits(lanes, num_vertices) == bits
        expected = model_spec._analyze_lanes(lanes, num_vertices)  # the integer loop, not the table
        assert table.extraneous(num_vertices, bits) == expected == model_spec._analyze_rows(matrix.tolist())


def test_pruning_table_of_small_matrices() -> None:
    """Every upper-triangular 0/1 matrix of 2 to 5 vertices, and random ones of 6 and 7."""
    rng = np.random.default_rng(5)
    for num_vertices in range(canonical.MIN_VERTICES, canonical.MAX_VERTICES + 1):
        count = 1 << (num_vertices * (num_vertices - 1) // 2)
        patterns = range(count) if num_vertices <= 5 else rng.integers(0, count, 3000).tolist()
        _check_pruning(num_vertices, list(patterns))


@pytest.mark.slow
def test_pruning_table_of_every_matrix() -> None:
    """All 2,131,018 upper-triangular 0/1 matrices of 2 to 7 vertices against the integer-loop pruning."""
    from nasbench.lib import model_spec

    table = keytable.table()
    for num_vertices in range(canonical.MIN_VERTICES, canonical.MAX_VERTICES + 1):
        size = num_vertices * num_vertices
        count = 1 << (num_vertices * (num_vertices - 1) // 2)
        for start in range(0, count, 1 << 16):
            bits = np.arange(start, min(start + (1 << 16), count), dtype=np.uint32)
            lanes = np.zeros((len(bits), size), dtype=np.uint8)
            for src, dst in canonical.edges_of(num_vertices, (1 << (num_vertices * (num_vertices - 1) // 2)) - 1):
                lanes[:, src * num_vertices + dst] = (bits >> np.uint32(canonical.edge_bit(src, dst))) & 1
            raw = lanes.tobytes()
            for index, pattern in enumerate(bits.tolist()):
                expected = model_spec._analyze_lanes(raw[index * size : (index + 1) * size], num_vertices)
                assert table.extraneous(num_vertices, pattern) == expected, (num_vertices, pattern)
