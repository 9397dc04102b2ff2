"""The generalization bootstrap: a real ``nasbench compare --bootstrap`` study whose report is recomputed from its
saved runs, the vectorized rank correlations against scipy's, and the agreement where it is certain or undefined."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from scipy import stats

from nasbench import api, canonical
from nasbench._cli import main
from nasbench_experiments.search import subspaces
from nasbench_experiments.search.problem import cell_id
from nasbench_experiments.studies import bootstrap

SPACE = "vertices=2-5+ops=conv1x1/maxpool3x3"
BUDGET = 3e4
STUDY = ["--optimizers", "rs,re,ls", "--runs", "6", "--budget", str(BUDGET), "--encoding", "cells", "--workers", "2"]


@pytest.fixture(scope="module")
def study(small_store: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A bootstrap study run by the command: the whole small store (cells of up to 5 vertices) and its cells
    without 1x1 convolutions; the folder and what the command printed."""
    out = tmp_path_factory.mktemp("bootstrap") / "study"
    arguments = ["compare", "--bootstrap", SPACE, *STUDY, "--store", str(small_store), "--out", str(out)]
    printed = io.StringIO()  # a module's fixture has no capsys
    with contextlib.redirect_stdout(printed):
        assert main([*arguments, "--no-progress"]) == 0
    return out, printed.getvalue()


def columns(results: Path) -> dict[str, np.ndarray]:
    table = pq.read_table(results)
    return {name: np.array(table.column(name).to_pylist()) for name in table.column_names}


def final_regrets(results: Path) -> dict[str, list[float]]:
    """Per optimizer, each run's final test regret read off the results table: the regret after the last
    evaluation finished by the budget (NaN if there is none)."""
    rows = columns(results)
    finals: dict[str, list[float]] = {}
    for optimizer, seed in dict.fromkeys(zip(rows["optimizer"].tolist(), rows["seed"].tolist(), strict=True)):
        run = (rows["optimizer"] == optimizer) & (rows["seed"] == seed)
        done = rows["test_regret"][run & (rows["time"] <= BUDGET)]
        finals.setdefault(optimizer, []).append(float(done[-1]) if len(done) else math.nan)
    return finals


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_the_report_is_the_rank_correlation_of_the_saved_runs(study: tuple[Path, str]):
    out, printed = study
    means = {}
    for name in (bootstrap.WHOLE, bootstrap.SUBSPACE):
        finals = final_regrets(out / name / "results.parquet")
        assert sorted(finals) == ["ls", "re", "rs"] and all(len(values) == 6 for values in finals.values())
        means[name] = np.array([np.nanmean(finals[optimizer]) for optimizer in ("rs", "re", "ls")])
    summary = {row["optimizer"]: row for row in read_csv(out / "summary.csv")}
    for index, optimizer in enumerate(("rs", "re", "ls")):
        for name in (bootstrap.WHOLE, bootstrap.SUBSPACE):
            assert float(summary[optimizer][f"mean_final_test_regret_{name}"]) == pytest.approx(means[name][index])
            assert float(summary[optimizer][f"rank_{name}"]) == stats.rankdata(means[name])[index]
    agreement = {row["statistic"]: row for row in read_csv(out / "agreement.csv")}
    expected = {
        "kendall_tau": stats.kendalltau(means[bootstrap.WHOLE], means[bootstrap.SUBSPACE]),
        "spearman_rho": stats.spearmanr(means[bootstrap.WHOLE], means[bootstrap.SUBSPACE]),
    }
    for statistic, result in expected.items():
        row = agreement[statistic]
        assert float(row["estimate"]) == pytest.approx(result.statistic)
        if statistic == "kendall_tau":
            assert float(row["p_value"]) == pytest.approx(result.pvalue)
        else:  # scipy's t approximation: not given
            assert math.isnan(float(row["p_value"]))
        assert -1 <= float(row["ci_low"]) <= float(row["ci_high"]) <= 1
        assert int(row["resamples"]) == bootstrap.RESAMPLES and 0 < int(row["defined"]) <= bootstrap.RESAMPLES
        assert f"{bootstrap.STATISTICS[statistic]} {result.statistic:.3f}, 95% CI [" in printed
    report = (out / "report.md").read_text()
    assert report.startswith(f"# Generalization bootstrap: the subspace `{SPACE}` against the whole space")
    assert f"| Kendall's tau-b | {expected['kendall_tau'].statistic:.3f} |" in report
    assert "[whole/report.md](whole/report.md)" in report


def test_the_subspace_study_searches_the_subspace_against_its_own_optimum(
    study: tuple[Path, str], small_nasbench: api.NASBench
):
    out, _ = study
    record = json.loads((out / bootstrap.SUBSPACE / "study.json").read_text())
    whole = json.loads((out / bootstrap.WHOLE / "study.json").read_text())
    assert record["subspace"] == SPACE and whole["subspace"] is None
    keys = subspaces.parse(SPACE).keys()
    best = max(
        sum(small_nasbench.query(api.ModelSpec(*canonical.decode(key)), 108, repeat="all")["test_accuracy"]) / 3
        for key in keys.tolist()
    )
    assert record["optimum"]["best_test_accuracy"] == best < whole["optimum"]["best_test_accuracy"]
    assert record["optimum"]["cells"] == len(keys)
    rows = columns(out / bootstrap.SUBSPACE / "results.parquet")
    members = {cell_id(*canonical.decode(key)) for key in keys.tolist()}
    assert set(rows["cell"].tolist()) <= members  # encoding cells: every proposal is a cell of the subspace
    incumbent = rows["incumbent"] == rows["step"]
    assert incumbent.any()
    assert (rows["test_regret"][incumbent] == best - rows["mean_test_accuracy"][incumbent]).all()
    assert f"- subspace: `{SPACE}`" in (out / bootstrap.SUBSPACE / "report.md").read_text()


def test_the_report_is_redrawn_identically_and_a_rerun_runs_nothing(study: tuple[Path, str], small_store: Path, capsys):
    out, _ = study
    before = {name: (out / name).read_bytes() for name in ("report.md", "summary.csv", "agreement.csv")}
    assert main(["compare", "--report", str(out)]) == 0
    assert {name: (out / name).read_bytes() for name in before} == before  # the resampling is seeded
    arguments = ["compare", "--bootstrap", SPACE, *STUDY, "--store", str(small_store), "--out", str(out)]
    capsys.readouterr()
    assert main([*arguments, "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith("0 runs done now")


def test_a_study_folder_refuses_another_subspace(small_store: Path, tmp_path: Path, capsys):
    out = tmp_path / "study"
    common = ["compare", "--optimizers", "rs", "--runs", "1", "--budget", "1e4", "--encoding", "cells"]
    assert (
        main([*common, "--space", "vertices=2-4", "--store", str(small_store), "--out", str(out), "--no-progress"]) == 0
    )
    capsys.readouterr()
    assert main([*common, "--space", "vertices=2-3", "--store", str(small_store), "--out", str(out)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "holds a study with subspace = 'vertices=2-4', not 'vertices=2-3'" in lines[0]


def test_a_subspace_of_cells_the_store_lacks_is_refused_for_a_whole_space_encoding(small_store: Path, tmp_path, capsys):
    out = tmp_path / "study"
    assert main(["compare", "--space", "vertices=5-6", "--store", str(small_store), "--out", str(out)]) == 2
    line = capsys.readouterr().err.strip()
    assert "encoding A searches every cell of the subspace vertices=5-6" in line and "\n" not in line
    assert not (out / "runs").exists()


def test_the_vectorized_correlations_are_scipys():
    rng = np.random.default_rng(5)
    first = rng.integers(0, 4, size=(300, 6)).astype(float)  # small integers: many ties
    second = rng.integers(0, 4, size=(300, 6)).astype(float)
    first[0] = 2.0  # a row tied everywhere: no correlation
    taus, rhos = bootstrap.kendall_tau_b(first, second), bootstrap.spearman_rho(first, second)
    assert math.isnan(taus[0]) and math.isnan(rhos[0])
    for row in range(1, len(first)):
        assert taus[row] == pytest.approx(stats.kendalltau(first[row], second[row]).statistic, nan_ok=True)
        assert rhos[row] == pytest.approx(stats.spearmanr(first[row], second[row]).statistic, nan_ok=True)


def test_the_same_clear_ranking_agrees_with_certainty():
    rng = np.random.default_rng(0)
    whole = {name: level + rng.uniform(0, 1e-3, 20) for name, level in (("a", 0.01), ("b", 0.02), ("c", 0.03))}
    sub = {name: level + rng.uniform(0, 1e-3, 20) for name, level in (("a", 0.1), ("b", 0.2), ("c", 0.3))}
    for item in bootstrap.agreement(whole, sub, resamples=500):
        assert (item.estimate, item.ci_low, item.ci_high, item.defined) == (1.0, 1.0, 1.0, 500)


def test_an_agreement_with_no_ranking_on_one_side_is_undefined():
    whole = {"a": np.array([0.01, 0.02]), "b": np.array([0.03, 0.04])}
    sub = {"a": np.zeros(2), "b": np.zeros(2)}  # every run found the subspace's best cell: all tie
    items = bootstrap.agreement(whole, sub, resamples=200)
    assert all(math.isnan(item.estimate) and item.defined == 0 for item in items)
    assert (
        bootstrap.lines(items)[0]
        == "Kendall's tau-b undefined, 95% CI [undefined, undefined] (0 of 200 resamples defined)"
    )
