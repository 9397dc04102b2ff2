"""The notebook workload: the same seeds walk the same trajectories on our API and on the baseline model."""

from __future__ import annotations

import json
from pathlib import Path

from nasbench_bench import notebook


def test_both_sides_walk_the_same_trajectories(full_store: Path, tmp_path: Path) -> None:
    ours = notebook.run_side("ours", str(full_store), seeds=1, budget=1e5, rows=None)
    assert ours["queries"] > 40 and ours["specs"] >= ours["queries"]
    rows = notebook._rows_of_cells(str(full_store), ours["cells"])
    assert len(rows) == len(ours["cells"])
    theirs = notebook.run_side("baseline", str(full_store), seeds=1, budget=1e5, rows=rows)
    assert theirs["digest"] == ours["digest"]
    assert (theirs["queries"], theirs["specs"]) == (ours["queries"], ours["specs"])
    other_seed = notebook.run_side("ours", str(full_store), seeds=2, budget=1e5, rows=None)
    assert other_seed["digest"] != ours["digest"]
    assert json.dumps(ours)  # what a side process prints
