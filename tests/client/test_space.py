"""The whole search space: the counts and digests of the original enumeration (google-research/nasbench
nasbench/scripts/generate_graphs.py, run once), and key/hash partitions."""

from __future__ import annotations

import collections
import hashlib

import numpy as np
import pytest

from nasbench import canonical, space

# from the original enumeration, pinned here rather than read from the module under test
SORTED_HASHES_SHA256 = "a7f10bf770c1b5b8a221e37824e42b3b1a237a5d21ccf545bbe8e23abd933403"
REPRESENTATIVES_SHA256 = "a4b03be715389467a9493a99f50528baef335fc17cbe9d7498d28e3aa278bca1"
# the table's raw bytes in enumeration order (checked against the two reference digests below)
KEYS_SHA256 = "45a91694182b2f0594fb89e5e797cbfbaf559c65c61b12fc1e1f6e1d2bdd5dd9"
HASHES_SHA256 = "1f4a7db984f8bb44da50e51b6c7e830bd26a761a39d60997ef500b7610ef0449"


@pytest.fixture(scope="module")
def enumeration() -> space.Enumeration:
    return space.enumerate_cells()


@pytest.fixture(scope="module")
def table() -> space.SpaceTable:
    return space.load_space()


def test_counts_per_vertex_number(enumeration: space.Enumeration) -> None:
    """Labelled graphs met and unique cells per V, as the original generator logs them."""
    assert enumeration.labelled_per_vertices == {2: 1, 3: 6, 4: 90, 5: 3267, 6: 125145, 7: 1164699}
    assert enumeration.cells_per_vertices == {2: 1, 3: 6, 4: 84, 5: 2441, 6: 62010, 7: 359082}
    assert sum(enumeration.labelled_per_vertices.values()) == 1_293_208
    assert len(enumeration.keys) == 423_624


def test_counts_per_edge_number(enumeration: space.Enumeration) -> None:
    edges = collections.Counter(bin(canonical.unpack(key)[1]).count("1") for key in enumeration.keys.tolist())
    assert dict(edges) == {1: 1, 2: 3, 3: 12, 4: 60, 5: 339, 6: 2134, 7: 13984, 8: 78822, 9: 328269}


def test_keys_are_unique_and_in_enumeration_order(enumeration: space.Enumeration) -> None:
    keys = enumeration.keys
    assert np.all(keys[1:] > keys[:-1])


def test_hashes_give_both_reference_digests(table: space.SpaceTable) -> None:
    """SHA-256 of the sorted hashes and of the first representatives (hash, adjacency, ops),
    as the original enumeration gives them."""
    hexes = table.hex_hashes()
    assert len(set(hexes)) == 423_624
    assert min(hexes) == "00005c142e6f48ac74fdcf73e3439874"
    assert max(hexes) == "ffff76fafa7b0cdf545fd7feee9c8bf9"
    assert space.sorted_hashes_digest(table.hashes) == SORTED_HASHES_SHA256
    assert space.representatives_digest(table.keys, table.hashes) == REPRESENTATIVES_SHA256
    # the digests computed here, independently of the module's helpers, from the reference's definitions
    assert hashlib.sha256("\n".join(sorted(hexes)).encode()).hexdigest() == SORTED_HASHES_SHA256
    assert space.SORTED_HASHES_SHA256 == SORTED_HASHES_SHA256 and space.REPRESENTATIVES_SHA256 == REPRESENTATIVES_SHA256


def test_first_line_of_representatives(table: space.SpaceTable) -> None:
    smallest = int(np.argmin([h for h in table.hex_hashes()]))
    key = int(table.keys[smallest])
    assert canonical.adjacency_string(key) == "0100110001000000010010000010000001000000010000000"
    assert canonical.ops_string(key) == (
        "input,conv3x3-bn-relu,maxpool3x3,conv3x3-bn-relu,conv3x3-bn-relu,conv1x1-bn-relu,output"
    )


def test_hash_of_key_lookup(table: space.SpaceTable) -> None:
    key = int(table.keys[12345])
    assert table.hash_of_key(key) == space.original_hash(key)
    codes, keys = space.labelled_graphs(4)
    not_canonical = int(codes[codes != keys][0])
    assert table.hash_of_key(not_canonical) is None


def test_table_bytes_have_the_pinned_digests(enumeration: space.Enumeration, table: space.SpaceTable) -> None:
    """The cache check compares raw bytes with two pinned digests: they are those of the enumeration's keys and
    of the table whose hashes give both reference digests (test above)."""
    np.testing.assert_array_equal(table.keys, enumeration.keys)
    assert hashlib.sha256(enumeration.keys.astype("<u8").tobytes()).hexdigest() == KEYS_SHA256
    assert hashlib.sha256(table.hashes.tobytes()).hexdigest() == HASHES_SHA256
    assert (space.KEYS_SHA256, space.HASHES_SHA256) == (KEYS_SHA256, HASHES_SHA256)


def _damaged(table: space.SpaceTable, damage: str) -> dict[str, np.ndarray]:
    keys, hashes = table.keys.copy(), table.hashes.copy()
    if damage == "flipped-hash-bit":
        hashes[1000, 3] ^= 0x10
    elif damage == "two-hashes-swapped":  # the sorted-hash digest cannot see this: the same set of hashes
        hashes[[7, 8]] = hashes[[8, 7]]
    elif damage == "keys-as-int64":
        keys = keys.astype(np.int64)
    elif damage == "one-cell-missing":
        keys, hashes = keys[:-1], hashes[:-1]
    return {"keys": keys, "hashes": hashes}


@pytest.mark.parametrize(
    "damage", ["not-an-npz", "flipped-hash-bit", "two-hashes-swapped", "keys-as-int64", "one-cell-missing", "absent"]
)
def test_damaged_cache_is_recomputed(tmp_path, table: space.SpaceTable, monkeypatch, damage: str) -> None:
    """A cache file that is not exactly the table is never trusted: the table is recomputed and the file
    replaced atomically; the next load trusts the new file."""
    path = tmp_path / "space-v1.npz"
    if damage == "not-an-npz":
        path.write_bytes(b"not an npz file")
    elif damage != "absent":
        np.savez(path, **_damaged(table, damage))
    computed = []
    monkeypatch.setattr(space, "compute_hashes", lambda keys, processes=None: computed.append(1) or table.hashes)
    monkeypatch.setattr(space, "enumerate_cells", lambda: space.Enumeration(table.keys, {}, {}))  # tested above
    rebuilt = space.load_space(cache_dir=tmp_path)
    assert computed == [1]
    np.testing.assert_array_equal(rebuilt.hashes, table.hashes)
    np.testing.assert_array_equal(rebuilt.keys, table.keys)
    assert [p.name for p in tmp_path.iterdir()] == ["space-v1.npz"]
    again = space.load_space(cache_dir=tmp_path)
    assert computed == [1]
    np.testing.assert_array_equal(again.hashes, table.hashes)


def test_intact_cache_is_trusted(tmp_path, table: space.SpaceTable, monkeypatch) -> None:
    np.savez(tmp_path / "space-v1.npz", keys=table.keys, hashes=table.hashes)
    monkeypatch.setattr(space, "compute_hashes", lambda *args, **kwargs: pytest.fail("recomputed an intact cache"))
    np.testing.assert_array_equal(space.load_space(cache_dir=tmp_path).hashes, table.hashes)


@pytest.mark.slow
def test_keys_and_hashes_partition_every_labelled_graph_identically(table: space.SpaceTable) -> None:
    """Hash all 1,293,208 labelled graphs of the enumeration: same key ⇔ same original hash.

    Same key ⇒ same hash: every labelled graph hashes like the cell its key names. Same hash ⇒ same key: the
    423,624 keys carry 423,624 distinct hashes (checked by the digest test).
    """
    for num_vertices in range(canonical.MIN_VERTICES, canonical.MAX_VERTICES + 1):
        codes, keys = space.labelled_graphs(num_vertices)
        hashes = space.compute_hashes(codes)
        rows = np.searchsorted(table.keys, keys)
        np.testing.assert_array_equal(table.keys[rows], keys)
        np.testing.assert_array_equal(hashes, table.hashes[rows])
    assert len(np.unique(table.hashes, axis=0)) == 423_624
