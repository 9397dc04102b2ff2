"""``nasbench_server.cells``: wire references to store rows, called directly over a store of cells up to five
vertices (so valid cells absent from the data exist), with the field names a batch puts in its messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nasbench import canonical
from nasbench._backends.wire import packed_spec
from nasbench._engine.engine import Engine
from nasbench.errors import InvalidSpecError, UnknownCellError
from nasbench.lib import config
from nasbench.v1 import nasbench_pb2 as pb
from nasbench_server import cells

CFG = config.build_config()


@pytest.fixture(scope="module")
def engine(small_store: Path):
    opened = Engine.open(small_store)
    yield opened
    opened.close()


def _matrix_ref(code: int) -> pb.CellRef:
    matrix, ops = canonical.decode(code)
    return pb.CellRef(matrix=pb.MatrixSpec(num_vertices=len(ops), adjacency=matrix.astype(np.uint8).tobytes(), ops=ops))


def test_every_row_is_named_by_each_kind_of_reference(engine: Engine) -> None:
    store = engine.store
    for row in (0, 1, store.cells - 1):
        key = store.keys.item(row)
        digest = store.hashes[row].tobytes()
        for ref in (
            pb.CellRef(key=key),
            pb.CellRef(hash=digest),
            pb.CellRef(hash_hex=digest.hex()),
            pb.CellRef(packed=packed_spec(key)),
            _matrix_ref(key),
        ):
            assert cells.row_of_ref(ref, engine, CFG) == row, (row, ref)
    two = canonical.pack(2, 1, ())  # input -> output: the smallest cell
    assert cells.row_of_ref(pb.CellRef(packed=packed_spec(two)), engine, CFG) == store.row_of_key(two) >= 0


def test_valid_cells_absent_from_the_data_are_unknown_by_hash(engine: Engine) -> None:
    """A cell of six vertices is valid but not in this store: UnknownCellError with its original hash."""
    matrix = np.eye(6, k=1, dtype=np.int8)
    ops = [config.INPUT, config.CONV3X3, config.CONV1X1, config.MAXPOOL3X3, config.CONV3X3, config.OUTPUT]
    code = canonical.canonical_key(matrix, ops)
    from nasbench.lib.model_spec import ModelSpec

    expected_hash = ModelSpec(matrix, ops).hash_spec(CFG["available_ops"])
    for ref in (pb.CellRef(packed=packed_spec(code)), _matrix_ref(code)):
        with pytest.raises(UnknownCellError) as info:
            cells.row_of_ref(ref, engine, CFG)
        assert info.value.args[0] == expected_hash
    with pytest.raises(UnknownCellError) as info:
        cells.row_of_ref(pb.CellRef(key=code), engine, CFG)
    assert info.value.args[0] == code


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        pytest.param(pb.CellRef(packed=pb.PackedSpec(num_vertices=9)), "{f}.packed.num_vertices must be 2 to 7, got 9"),
        pytest.param(pb.CellRef(packed=pb.PackedSpec(num_vertices=1)), "{f}.packed.num_vertices must be 2 to 7, got 1"),
        pytest.param(
            pb.CellRef(matrix=pb.MatrixSpec(num_vertices=3, adjacency=b"\0" * 8)),
            "{f}.matrix.adjacency must hold 9 bytes for 3 vertices, got 8",
        ),
        pytest.param(pb.CellRef(hash=b"\1" * 15), "{f}.hash must be 16 bytes (an MD5 digest), got 15"),
        pytest.param(
            pb.CellRef(hash_hex="A" * 32), "{f}.hash_hex must be 32 lowercase hex characters, got " + repr("A" * 32)
        ),
        pytest.param(
            pb.CellRef(hash_hex="a" * 31), "{f}.hash_hex must be 32 lowercase hex characters, got " + repr("a" * 31)
        ),
        pytest.param(
            pb.CellRef(hash_hex="b" * 50), "{f}.hash_hex must be 32 lowercase hex characters, got " + repr("b" * 40)
        ),
        pytest.param(pb.CellRef(), "{f} is required: set one of key, hash, hash_hex, packed, matrix"),
    ],
)
def test_malformed_references_name_their_field(engine: Engine, ref: pb.CellRef, message: str) -> None:
    for field in ("cell", "cells[3]"):
        with pytest.raises(InvalidSpecError) as info:
            if field == "cell":
                cells.row_of_ref(ref, engine, CFG)
            else:
                cells.row_of_ref(ref, engine, CFG, field)
        assert str(info.value) == message.format(f=field)


def test_spec_builders_name_the_cell_field_by_default() -> None:
    with pytest.raises(InvalidSpecError) as info:
        cells.spec_of_packed(pb.PackedSpec(num_vertices=8))
    assert str(info.value) == "cell.packed.num_vertices must be 2 to 7, got 8"
    with pytest.raises(InvalidSpecError) as info:
        cells.spec_of_matrix(pb.MatrixSpec(num_vertices=65))
    assert str(info.value) == "cell.matrix.num_vertices must be 1 to 64, got 65"
    two = cells.spec_of_packed(pb.PackedSpec(num_vertices=2, edges=1))
    assert two.ops == [config.INPUT, config.OUTPUT] and two.matrix.tolist() == [[0, 1], [0, 0]]
