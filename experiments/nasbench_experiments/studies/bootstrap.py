"""The seed paper's generalization bootstrap: the same optimizers and seeds on a subspace and on the whole space,
and how well the optimizers' ranking on one agrees with their ranking on the other.

The NAS-Bench-101 poster (Ying et al., 2019) reports a "generalization bootstrap by comparing search trajectories
of similar algorithms on subset vs. whole dataset", which "suggests that results from NAS-Bench-101 may generalize
to larger search spaces": if optimizers rank the same on a part of the space as on the whole, a ranking measured on
NAS-Bench-101 says something about spaces it is a part of. Here that agreement is a number with an uncertainty:

- the two studies are ordinary studies (``runner``) in ``OUT/whole`` and ``OUT/subspace``, with the same
  optimizers, encoding, budget and seeds; the subspace study's regrets are against the subspace's own optimum;
- each optimizer's score on a space is its **mean final test regret** (at the budget, over its runs; the poster's
  regret plot shows means), and ranks the optimizers on that space (1: the lowest regret, ties share the mean rank);
- the agreement is **Kendall's tau-b** (with scipy's exact p-value) and **Spearman's rho** between the two scores
  (``scipy.stats``), with a percentile **bootstrap confidence interval** over runs: each optimizer's runs on each
  space are resampled with replacement (``RESAMPLES`` times, a generator seeded with ``SEED``: the report is
  reproducible), the scores and both correlations recomputed. A resample whose scores tie on every optimizer of a
  space has no correlation and is left out (the report counts them).

Outputs in ``OUT``: ``report.md`` (settings, per-optimizer scores and ranks, the agreement), ``summary.csv`` (one row
per optimizer), ``agreement.csv`` (one row per statistic), both written atomically, and each study's own report in
its folder.

Usage::

    from nasbench_experiments.studies import bootstrap
    bootstrap.run(study, "vertices=2-6", Path("study"))    # both studies (resumable), then
    bootstrap.render(Path("study"))                         # the report
"""

from __future__ import annotations

import csv
import io
import math
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from nasbench.errors import ConfigurationError
from nasbench_experiments.search import subspaces
from nasbench_experiments.studies import bookkeeping, report, runner, table

WHOLE = "whole"
SUBSPACE = "subspace"
RESAMPLES = 10_000
SEED = 0
CONFIDENCE = 0.95
STATISTICS = {"kendall_tau": "Kendall's tau-b", "spearman_rho": "Spearman's rho"}


def parts(study: runner.Study, subspace: str, out: Path) -> Iterator[tuple[str, runner.Study, Path]]:
    """The two studies of a bootstrap, ``(name, study, folder)``: the whole space first, then the subspace.

    Raises:
      ConfigurationError: the subspace is malformed, or is the whole space.
    """
    text = subspaces.parse(subspace).text
    if text == "all":
        raise ConfigurationError("a bootstrap compares a subspace with the whole space: give a subspace, not 'all'")
    yield WHOLE, replace(study, subspace=None), out / WHOLE
    yield SUBSPACE, replace(study, subspace=text), out / SUBSPACE


def is_bootstrap(out: Path) -> bool:
    """True iff ``out`` holds a bootstrap (its two study folders), not a single study."""
    return (out / WHOLE / runner.STUDY_FILE).exists() and (out / SUBSPACE / runner.STUDY_FILE).exists()


def run(study: runner.Study, subspace: str, out: Path, **options: Any) -> list[runner.RunSummary]:
    """Run (or resume) both studies, one after the other, and write each one's results table; ``options`` go to
    ``runner.run_study``. Returns the summaries of the runs done by this call."""
    studies = list(parts(study, subspace, out))
    for _, each, _folder in studies:  # both checked before either runs: a bad setting costs no run
        each.check()
        runner.check_dataset(each, runner.open_dataset(each.dataset))
    done = []
    for _, each, folder in studies:
        done += runner.run_study(each, folder, **options)
        runner.write_results(folder)
    return done


@dataclass(frozen=True)
class Agreement:
    """One rank correlation between the two spaces' scores, with its bootstrap confidence interval."""

    statistic: str  # a key of STATISTICS
    estimate: float  # on the runs as they are
    p_value: float  # Kendall's: scipy's test of no association (exact for few optimizers); Spearman's: NaN
    ci_low: float
    ci_high: float
    confidence: float
    resamples: int
    defined: int  # resamples in which both rankings had at least two distinct scores


def final_regrets(runs: list[report.Run], budget_s: float) -> dict[str, np.ndarray]:
    """Per optimizer (in study order), the final test regret of each run: at the budget (NaN: no valid cell yet)."""
    finals: dict[str, list[float]] = {}
    for run_ in runs:
        at = bookkeeping.regret_at(run_.time, run_.test_regret, np.array([budget_s]))[0]
        finals.setdefault(run_.optimizer, []).append(float(at))
    return {name: np.array(values) for name, values in finals.items()}


def scores(finals: dict[str, np.ndarray]) -> np.ndarray:
    """float64[optimizers]: each optimizer's mean final test regret (runs with no valid cell left out)."""
    with warnings.catch_warnings():  # an optimizer whose runs all lack a valid cell scores NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.array([np.nanmean(values) if len(values) else math.nan for values in finals.values()])


def agreement(
    whole: dict[str, np.ndarray],
    subspace: dict[str, np.ndarray],
    resamples: int = RESAMPLES,
    seed: int = SEED,
    confidence: float = CONFIDENCE,
) -> list[Agreement]:
    """Kendall's tau-b and Spearman's rho between the optimizers' scores on the two spaces (the optimizers both
    have runs of), each with a percentile bootstrap interval over runs (see the module docstring)."""
    names = [name for name in whole if name in subspace]
    first, second = ({name: finals[name] for name in names} for finals in (whole, subspace))
    point = scores(first), scores(second)
    rng = np.random.default_rng(seed)
    resampled = [_resampled_scores(finals, rng, resamples) for finals in (first, second)]
    found = []
    for statistic, vectorized in (("kendall_tau", kendall_tau_b), ("spearman_rho", spearman_rho)):
        estimate, p_value = _point(statistic, *point)
        values = vectorized(*resampled)
        values = values[np.isfinite(values)]
        tail = (1 - confidence) / 2
        low, high = np.quantile(values, [tail, 1 - tail]) if len(values) else (math.nan, math.nan)
        found.append(
            Agreement(statistic, estimate, p_value, float(low), float(high), confidence, resamples, len(values))
        )
    return found


def _point(statistic: str, first: np.ndarray, second: np.ndarray) -> tuple[float, float]:
    """A statistic and its p-value from scipy.stats on the scores as they are (NaN when undefined). Spearman's
    p-value is left out (NaN): scipy computes it from a t approximation, meaningless for a handful of optimizers
    (rho = 1 over 5 optimizers would get p = 1e-24), while Kendall's test is exact for so few."""
    known = np.isfinite(first) & np.isfinite(second)
    if known.sum() < 2 or len(set(first[known])) < 2 or len(set(second[known])) < 2:
        return math.nan, math.nan
    test = stats.kendalltau if statistic == "kendall_tau" else stats.spearmanr
    result = test(first[known], second[known])
    return float(result.statistic), float(result.pvalue) if statistic == "kendall_tau" else math.nan


def _resampled_scores(finals: dict[str, np.ndarray], rng: np.random.Generator, resamples: int) -> np.ndarray:
    """float64[resamples, optimizers]: the scores of ``resamples`` bootstrap samples of each optimizer's runs."""
    columns = []
    for values in finals.values():
        picks = values[rng.integers(len(values), size=(resamples, len(values)))]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            columns.append(np.nanmean(picks, axis=1))
    return np.stack(columns, axis=1) if columns else np.zeros((resamples, 0))


def kendall_tau_b(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Kendall's tau-b of each row pair (as ``scipy.stats.kendalltau``, vectorized over rows): concordant minus
    discordant pairs over the square root of the untied pairs of each side. NaN where a row has a NaN or ties
    everywhere."""
    rows, cols = np.triu_indices(first.shape[1], k=1)
    one = np.sign(first[:, rows] - first[:, cols])
    two = np.sign(second[:, rows] - second[:, cols])
    with np.errstate(invalid="ignore", divide="ignore"):
        tau: np.ndarray = (one * two).sum(axis=1) / np.sqrt((one**2).sum(axis=1) * (two**2).sum(axis=1))
    return tau


def spearman_rho(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row pair (as ``scipy.stats.spearmanr``, vectorized over rows): the Pearson
    correlation of the average ranks. NaN where a row has a NaN or ties everywhere."""
    bad = np.isnan(first).any(axis=1) | np.isnan(second).any(axis=1)
    one = stats.rankdata(first, axis=1)
    two = stats.rankdata(second, axis=1)
    one -= one.mean(axis=1, keepdims=True)
    two -= two.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho: np.ndarray = (one * two).sum(axis=1) / np.sqrt((one**2).sum(axis=1) * (two**2).sum(axis=1))
    rho[bad] = math.nan
    return rho


def summarize(out: Path) -> tuple[dict[str, Any], list[dict[str, Any]], list[Agreement]]:
    """The two studies' records, one row per optimizer (runs, score and rank on each space), and the agreement."""
    records, finals = {}, {}
    for name in (WHOLE, SUBSPACE):
        records[name] = runner.load_study(out / name)
        finals[name] = final_regrets(report.load_runs(out / name), float(records[name]["budget_s"]))
    names = [name for name in finals[WHOLE] if name in finals[SUBSPACE]]
    rows: list[dict[str, Any]] = [{"optimizer": name} for name in names]
    for space_name in (WHOLE, SUBSPACE):
        common = {name: finals[space_name][name] for name in names}
        score = scores(common)
        ranks = _ranks(score)
        for row, name, value, rank in zip(rows, names, score, ranks, strict=True):
            row[f"runs_{space_name}"] = len(common[name])
            row[f"mean_final_test_regret_{space_name}"] = float(value)
            row[f"rank_{space_name}"] = float(rank)
    return records, rows, agreement(finals[WHOLE], finals[SUBSPACE])


def _ranks(score: np.ndarray) -> np.ndarray:
    """1 for the lowest score, ties sharing the mean rank; NaN for an undefined score."""
    ranks = np.full(len(score), math.nan)
    known = np.isfinite(score)
    ranks[known] = stats.rankdata(score[known])
    return ranks


def render(out: Path) -> dict[str, Path]:
    """Write each study's report, then ``report.md``, ``summary.csv`` and ``agreement.csv`` of the bootstrap.

    Raises:
      ConfigurationError: ``out`` does not hold both studies of a bootstrap.
    """
    if not is_bootstrap(out):
        raise ConfigurationError(f"{out} holds no bootstrap (no {WHOLE}/ and {SUBSPACE}/ studies)")
    for name in (WHOLE, SUBSPACE):
        report.render(out / name)
    records, rows, agreements = summarize(out)
    written = {"summary": out / "summary.csv", "agreement": out / "agreement.csv", "report": out / "report.md"}
    table.write_atomic(written["summary"], _csv(rows, ["optimizer"]))
    table.write_atomic(
        written["agreement"], _csv([asdict(item) for item in agreements], list(Agreement.__annotations__))
    )
    table.write_atomic(written["report"], markdown(records, rows, agreements).encode())
    return written


def _csv(rows: list[dict[str, Any]], header: list[str]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else header)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def lines(agreements: list[Agreement]) -> list[str]:
    """One line per statistic, as the report and the command's summary print it."""
    return [
        f"{STATISTICS[item.statistic]} {_number(item.estimate)}, {item.confidence:.0%} CI "
        f"[{_number(item.ci_low)}, {_number(item.ci_high)}] ({item.defined:,} of {item.resamples:,} resamples defined)"
        for item in agreements
    ]


def _number(value: float) -> str:
    return "undefined" if math.isnan(value) else f"{value:.3f}"


def markdown(records: dict[str, dict[str, Any]], rows: list[dict[str, Any]], agreements: list[Agreement]) -> str:
    whole, sub = records[WHOLE], records[SUBSPACE]
    expected = len(whole["optimizers"]) * whole["runs"]
    done = {name: sum(row[f"runs_{name}"] for row in rows) for name in (WHOLE, SUBSPACE)}
    lines_ = [
        f"# Generalization bootstrap: the subspace `{sub['subspace']}` against the whole space",
        "",
        f"- dataset: `{whole['dataset']}`; whole space: {whole['optimum']['cells']:,} cells, best mean test accuracy "
        f"{whole['optimum']['best_test_accuracy']:.6f}; subspace `{sub['subspace']}`: {sub['optimum']['cells']:,} "
        f"cells, best mean test accuracy {sub['optimum']['best_test_accuracy']:.6f}",
        f"- optimizers: {', '.join(whole['optimizers'])}; encoding {whole['encoding']}; budget "
        f"{whole['budget_s']:.3g} simulated seconds per run; seeds {whole['first_seed']} to "
        f"{whole['first_seed'] + whole['runs'] - 1} on both spaces",
        f"- runs finished: {done[WHOLE]} of {expected} on the whole space, {done[SUBSPACE]} of {expected} on the "
        "subspace",
        "",
        "Each optimizer's score on a space is its mean final test regret (at the budget, over its runs), against "
        "that space's own optimum; the scores rank the optimizers (1: the lowest regret). The agreement of the two "
        "rankings is the rank correlation of the scores (1: the same order, 0: unrelated, −1: reversed), with a "
        f"{CONFIDENCE:.0%} percentile bootstrap interval over runs (each optimizer's runs on each space resampled "
        f"with replacement, {RESAMPLES:,} resamples, seed {SEED}). The p-value is that of Kendall's test of no "
        "association (scipy, exact for few optimizers) on the runs as they are; Spearman's is not given (scipy's "
        "t approximation does not hold for a handful of optimizers).",
        "",
    ]
    if rows:
        headers = list(rows[0])
        lines_ += ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines_ += ["| " + " | ".join(_cell(row[h]) for h in headers) + " |" for row in rows]
        lines_ += [""]
    lines_ += ["| statistic | estimate | p-value | confidence interval | resamples defined |", "|---|---|---|---|---|"]
    for item in agreements:
        lines_.append(
            f"| {STATISTICS[item.statistic]} | {_number(item.estimate)} | {_cell(item.p_value)} | "
            f"{item.confidence:.0%}: [{_number(item.ci_low)}, {_number(item.ci_high)}] | "
            f"{item.defined:,} of {item.resamples:,} |"
        )
    lines_ += [
        "",
        f"Each study's own report: [{WHOLE}/report.md]({WHOLE}/report.md), "
        f"[{SUBSPACE}/report.md]({SUBSPACE}/report.md).",
        "",
    ]
    return "\n".join(lines_)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:.3g}" if not value.is_integer() else f"{value:g}"
    return str(value)
