"""Neighbours by value: the cells one edit away (one edge flipped or one interior op changed, pruned, inside the
space, the cell itself excluded), computed here from the definition with the original's pruning and the
reference text's hash, equal the API's answer on both backends and the server's raw answer."""

from __future__ import annotations

import pytest

from nasbench import api
from nasbench.v1 import nasbench_pb2 as pb
from tests.client.scenarios import INCEPTION, ISSUE_23, I, O, neighbour_hashes, spec, spec_hash

CELLS = [
    pytest.param(INCEPTION, id="inception"),
    pytest.param(ISSUE_23, id="issue-23"),
    pytest.param(([[0, 1], [0, 0]], [I, O]), id="2-vertices"),
    pytest.param(([[0, 1, 1], [0, 0, 1], [0, 0, 0]], [I, api.MAXPOOL3X3, O]), id="triangle"),
]


def test_the_definition_on_the_smallest_cell() -> None:
    """input→output has no neighbour (removing its only edge disconnects it; it has no interior op); the
    3-vertex chain has its two other ops and the triangle (input→output added)."""
    assert neighbour_hashes(spec([[0, 1], [0, 0]], [I, O])) == set()
    chain = spec([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [I, api.CONV3X3, O])
    assert neighbour_hashes(chain) == {
        "d1269d9156ddc027c40473008192958a",  # input→conv1x1→output (the original graph_util.hash_module's)
        "53cee42601ad14d661bb6878031d6acb",  # input→maxpool→output
        "d32d0b26d534203b48d866facd98cc3e",  # the chain plus input→output
    }


@pytest.mark.parametrize("cell", CELLS)
def test_neighbors_equal_the_definition(open_nasbench, cell) -> None:
    nasbench = open_nasbench(seed=0)
    model_spec = spec(*cell)
    neighbors = nasbench.neighbors(model_spec)
    hashes = [spec_hash(neighbor) for neighbor in neighbors]
    assert len(hashes) == len(set(hashes))
    assert set(hashes) == neighbour_hashes(model_spec)


def test_neighbors_of_sampled_cells_equal_the_definition(open_nasbench) -> None:
    nasbench = open_nasbench(seed=0)
    for model_spec in nasbench.sample(25, seed=31):
        assert {spec_hash(n) for n in nasbench.neighbors(model_spec)} == neighbour_hashes(model_spec)


def test_raw_neighbors_rpc_equals_the_definition(server) -> None:
    import grpc

    from nasbench.v1 import nasbench_pb2_grpc as pb_grpc

    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.NasbenchStub(channel)
        response = stub.Neighbors(pb.NeighborsRequest(cell=pb.CellRef(hash_hex="28cfc7874f6d200472e1a9dcd8650aa0")))
    assert {cell.hash.hex() for cell in response.cells} == neighbour_hashes(spec(*INCEPTION))
