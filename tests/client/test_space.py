"""The whole search space: the counts and digests of reference §4.2, and key/hash partitions."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from nasbench import canonical, space


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
    assert sum(enumeration.labelled_per_vertices.values()) == space.NUM_LABELLED_GRAPHS
    assert len(enumeration.keys) == space.NUM_CELLS


def test_counts_per_edge_number(enumeration: space.Enumeration) -> None:
    edges = collections.Counter(bin(canonical.unpack(key)[1]).count("1") for key in enumeration.keys.tolist())
    assert dict(edges) == {1: 1, 2: 3, 3: 12, 4: 60, 5: 339, 6: 2134, 7: 13984, 8: 78822, 9: 328269}


def test_keys_are_unique_and_in_enumeration_order(enumeration: space.Enumeration) -> None:
    keys = enumeration.keys
    assert np.all(keys[1:] > keys[:-1])


def test_hashes_give_both_reference_digests(table: space.SpaceTable) -> None:
    """SHA-256 of the sorted hashes and of the first representatives (hash, adjacency, ops), §4.2."""
    hexes = table.hex_hashes()
    assert len(set(hexes)) == space.NUM_CELLS
    assert min(hexes) == "00005c142e6f48ac74fdcf73e3439874"
    assert max(hexes) == "ffff76fafa7b0cdf545fd7feee9c8bf9"
    assert space.sorted_hashes_digest(table.hashes) == space.SORTED_HASHES_SHA256
    assert space.representatives_digest(table.keys, table.hashes) == space.REPRESENTATIVES_SHA256


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


def test_corrupt_cache_is_recomputed(tmp_path, table: space.SpaceTable, monkeypatch) -> None:
    """A damaged cache file is never trusted: the table is rebuilt and the file replaced atomically."""
    path = tmp_path / "space-v1.npz"
    path.write_bytes(b"not an npz file")
    computed = []
    monkeypatch.setattr(space, "compute_hashes", lambda keys, processes=None: computed.append(1) or table.hashes)
    rebuilt = space.load_space(cache_dir=tmp_path)
    assert computed == [1]
    np.testing.assert_array_equal(rebuilt.hashes, table.hashes)
    assert [p.name for p in tmp_path.iterdir()] == ["space-v1.npz"]
    again = space.load_space(cache_dir=tmp_path)
    assert computed == [1]
    np.testing.assert_array_equal(again.keys, table.keys)


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
    assert len(np.unique(table.hashes, axis=0)) == space.NUM_CELLS
