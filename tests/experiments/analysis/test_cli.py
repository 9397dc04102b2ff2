"""``nasbench analyze`` end to end on real stores: the report and its files, and one clear error line (exit 2)
for every bad argument."""

from __future__ import annotations

import json
import struct

import pytest

from nasbench import _cli
from nasbench_experiments.analysis import analyses


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path.name} is not a PNG"
    return struct.unpack(">II", data[16:24])


def test_analyze_writes_the_report_tables_and_plots(small_store, tmp_path, capsys) -> None:
    out = tmp_path / "report"
    assert _cli.main(["analyze", "--store", str(small_store), "--out", str(out), "--walks", "100"]) == 0
    printed = capsys.readouterr()
    assert "| 36 / 108 |" in printed.out and f"wrote {out / 'report.md'}" in printed.out
    document = json.loads((out / "results.json").read_text())
    assert list(document["analyses"]) == list(analyses.NAMES) and document["skipped"] == {}
    assert document["data"]["cells"] == 2532 and set(document["timings_s"]) >= {"load", *analyses.NAMES}
    report = (out / "report.md").read_text()
    for title in ("## Summary", "## Budget correlation", "## Pareto frontier", "## Locality", "## Noise", "## Ops"):
        assert title in report
    assert report.count("*Rule: ") == len(analyses.NAMES)
    for image in ("summary_accuracy", "budget_correlation", "pareto", "locality", "noise", "ops"):
        width, height = _png_size(out / f"{image}.png")
        assert width > 300 and height > 200
        assert f"({image}.png)" in report


def test_analyze_one_analysis_without_plots(small_store, tmp_path) -> None:
    out = tmp_path / "one"
    assert _cli.main(["analyze", "ops", "--store", str(small_store), "--out", str(out), "--no-plots"]) == 0
    assert list(json.loads((out / "results.json").read_text())["analyses"]) == ["ops"]
    assert not list(out.glob("*.png"))


def test_analyze_skips_what_a_108_only_store_cannot_support(only108_store, tmp_path, capsys) -> None:
    out = tmp_path / "only108"
    assert _cli.main(["analyze", "--store", str(only108_store), "--out", str(out), "--no-plots", "--walks", "50"]) == 0
    document = json.loads((out / "results.json").read_text())
    assert (
        "budget-correlation" not in document["analyses"]
        and "needs budget 4" in document["skipped"]["budget-correlation"]
    )
    assert "Not run: needs budget 4 epochs" in (out / "report.md").read_text()
    assert "skipped budget-correlation" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        pytest.param(
            ["frontier"], "unknown analysis 'frontier' (choose from summary, budget-correlation", id="unknown"
        ),
        pytest.param(
            ["budget-correlation"],
            "budget-correlation needs budget 4 epochs, which this dataset does not hold (it holds: 108)",
            id="absent-budget",
        ),
        pytest.param(["pareto", "--budget", "36"], "pareto needs budget 36 epochs", id="absent-single-budget"),
        pytest.param(["--metric", "loss"], "unknown metric 'loss' (choose from validation, test, train)", id="metric"),
        pytest.param(["--walks", "0"], "--walks must be at least 1, got 0", id="walks"),
    ],
)
def test_bad_arguments_get_one_error_line(only108_store, tmp_path, capsys, arguments, message) -> None:
    code = _cli.main(["analyze", "--store", str(only108_store), "--out", str(tmp_path / "x"), *arguments])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("nasbench analyze: error: ") and message in err[0], err
    assert not (tmp_path / "x").exists()


def test_a_missing_store_is_one_error_line(tmp_path, capsys) -> None:
    assert _cli.main(["analyze", "--store", str(tmp_path / "nothing.lmdb"), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no store at" in err[0]


def test_an_output_path_that_is_a_file_is_one_error_line(small_store, tmp_path, capsys) -> None:
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    assert _cli.main(["analyze", "summary", "--store", str(small_store), "--out", str(taken), "--no-plots"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"cannot write the report into {taken}" in err[0]
