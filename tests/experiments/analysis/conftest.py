"""Columns of the session's stores, a 108-epoch-only store, and a hand-built store with a known frontier."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nasbench import canonical, space
from nasbench._store import layout
from nasbench_builder import synthetic, writer
from nasbench_experiments.analysis import columns, pareto

# The hand-built store: name -> (parameters, mean validation, mean test, training time). ResNet-like and
# Inception-like are the reference cells of the Pareto analysis.
HAND_CELLS = {
    "A": (100, 0.80, 0.79, 1000.0),
    "B": (200, 0.85, 0.84, 900.0),
    "C": (200, 0.84, 0.83, 800.0),
    "ResNet-like": (300, 0.85, 0.84, 700.0),
    "E": (400, 0.90, 0.89, 2000.0),
    "F": (400, 0.90, 0.89, 2500.0),
    "Inception-like": (500, 0.89, 0.97, 600.0),
    "H": (600, 0.95, 0.94, 3000.0),
}


@pytest.fixture(scope="session")
def small_columns(small_store: Path) -> columns.Columns:
    return columns.load(small_store)


@pytest.fixture(scope="session")
def full_columns(full_store: Path) -> columns.Columns:
    return columns.load(full_store)


@pytest.fixture(scope="session")
def only108_store(tmp_path_factory: pytest.TempPathFactory, space_table: space.SpaceTable) -> Path:
    """Cells up to 5 vertices at 108 epochs only (like nasbench_only108)."""
    data = synthetic.synthesize(epochs=(108,), max_vertices=5, seed=3, table=space_table)
    path = tmp_path_factory.mktemp("only108") / "only108.lmdb"
    writer.write_store(data.dataset, path)
    return path


def hand_keys() -> dict[str, int]:
    """Canonical keys of the hand-built cells: the reference cells and six 5-vertex cells of the space."""
    keys = {name: canonical.canonical_key(*spec) for name, spec in pareto.REFERENCE_CELLS.items()}
    others = [int(k) for k in space.enumerate_cells(max_vertices=5).keys[-6:]]
    for name, key in zip([n for n in HAND_CELLS if n not in keys], others, strict=True):
        keys[name] = key
    return keys


@pytest.fixture(scope="session")
def hand_store(tmp_path_factory: pytest.TempPathFactory, space_table: space.SpaceTable) -> Path:
    """Eight cells whose frontier and optima are known (see HAND_CELLS): 108 epochs, repeats spread ±0.01."""
    keys = hand_keys()
    names = list(HAND_CELLS)
    metrics = np.zeros((len(names), 1, layout.NUM_REPEATS, len(layout.METRIC_FIELDS)))
    spread = np.array([-0.01, 0.0, 0.01])
    for row, name in enumerate(names):
        _, validation, test, time = HAND_CELLS[name]
        metrics[row, 0, :, 4] = time
        metrics[row, 0, :, 0] = time / 2
        metrics[row, 0, :, 6] = validation + spread
        metrics[row, 0, :, 7] = test + spread
        metrics[row, 0, :, 5] = 1.0
    key_array = np.array([keys[name] for name in names], dtype=np.uint64)
    dataset = layout.Dataset(
        hashes=np.stack([np.frombuffer(space_table.digest_of_key(int(k)), dtype=np.uint8) for k in key_array]),
        keys=key_array,
        representatives=key_array,
        parameters=np.array([HAND_CELLS[name][0] for name in names], dtype=np.int32),
        metrics=metrics,
        epochs=(108,),
        source={"name": "hand-built"},
    )
    path = tmp_path_factory.mktemp("hand") / "hand.lmdb"
    writer.write_store(dataset, path)
    return path
