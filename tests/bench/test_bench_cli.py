"""``nasbench bench --quick`` end to end against a real server: complete, consistent results; valid plots; a report."""

from __future__ import annotations

import json
import struct

import pytest

from nasbench import _cli
from nasbench_bench import results
from nasbench_bench.cli import OPT_IN, SCENARIOS


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path.name} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    assert data.rstrip(b"\x00")[-8:-4] == b"IEND"
    return width, height


@pytest.mark.timeout(300)
def test_quick_run_against_a_server(server, full_store, tmp_path, capsys) -> None:
    out = tmp_path / "bench"
    code = _cli.main(
        [
            "bench",
            "--quick",
            "--store",
            str(full_store),
            "--target",
            server.address,
            "--out",
            str(out),
            "--duration",
            "1.5",
            "--concurrency",
            "2",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    data = json.loads((out / "results.json").read_text())
    assert results.validate(data) == []
    assert set(data["scenarios"]) == set(SCENARIOS) - OPT_IN
    assert data["quick"] is True and data["target"] == server.address and data["store"]["cells"] == 423_624
    assert data["machine"]["cpus"] >= 1 and data["versions"]["grpcio"] != "absent"
    for scenario in data["scenarios"].values():
        for figure in scenario["figures"]:
            assert figure["count"] >= 1 and figure["unit"]
    remote = {f["name"]: f for f in data["scenarios"]["remote"]["figures"]}
    assert remote["unary Query"]["count"] == remote["unary Ping"]["count"] == 600
    assert data["scenarios"]["build"]["params"]["small_round_trip_bit_identical"] is True
    assert data["scenarios"]["load"]["params"]["requests"] > 0 and not data["scenarios"]["load"]["params"]["errors"]
    assert data["scenarios"]["notebook"]["params"]["same_trajectories"] is True
    assert data["scenarios"]["compare"]["params"]["identical_tables"] is True
    assert data["scenarios"]["memory"]["params"]["key_table_shared"] is True
    local = {f["name"] for f in data["scenarios"]["query_local"]["figures"]}
    assert {"cold query, ModelSpec included", "baseline cold query, ModelSpec included"} <= local
    assert {"warm query, ModelSpec included", "baseline warm query, ModelSpec included"} <= local
    for name in (
        "remote_latency.png",
        "batch_cost.png",
        "concurrency_throughput.png",
        "concurrency_latency.png",
        "load_latency.png",
    ):
        width, height = _png_size(out / name)
        assert width > 300 and height > 200
    report = (out / "report.md").read_text()
    assert report.startswith("# nasbench-server benchmark report")
    for name in set(SCENARIOS) - OPT_IN:
        assert f"## {name}" in report
    assert "| figure | unit | n | min | p50 | p90 | p99 | p99.9 | max |" in report
    assert "](remote_latency.png)" in report
    _check_targets(data, printed, report)
    assert printed.rstrip().endswith(f"wrote {out / 'results.json'} and {out / 'report.md'}")


def _check_targets(data: dict, printed: str, report: str) -> None:
    """Each target's verdict follows from its measurement and bound, and is printed and reported as such,
    one line per target (whatever this loaded machine measured)."""
    printed_lines = printed.splitlines()
    count = 0
    for name, scenario in data["scenarios"].items():
        for target in scenario["targets"]:
            count += 1
            operator, bound = target["target"].split()
            assert operator in ("<=", ">=")
            met = target["measured"] <= float(bound) if operator == "<=" else target["measured"] >= float(bound)
            assert target["met"] is met, target
            line = (
                f"{name:<16} {target['name']:<48} {target['measured']:>14,.4g} {target['unit']:<10} "
                f"{target['target']:<12} {'met' if met else 'NOT MET'}"
            )
            assert printed_lines.count(line) == 1, line
            note = f" ({target['note']})" if target.get("note") else ""
            row = (
                f"| {name} | {target['name']} {target['target']} {target['unit']}{note} | {target['measured']:,.4g} | "
                f"{'met' if met else '**not met**'} |"
            )
            assert row in report.splitlines(), row
    assert count >= 5
    verdicts = [line for line in printed_lines if line.endswith((" met", " NOT MET"))]
    assert len(verdicts) == count, "one printed verdict per target, no other"


def test_validate_catches_inconsistencies() -> None:
    figure = {"name": "x", "unit": "µs", "count": 3, "min": 1, "median": 2, "p90": 3, "p99": 2.5, "p999": 4, "max": 5}
    data = {
        "schema": 1,
        "machine": {},
        "versions": {},
        "scenarios": {
            "a": {"figures": [figure], "ratios": {"r": 0}, "targets": [{"name": "t"}], "params": {}},
            "b": {"figures": [], "ratios": {}, "targets": [], "params": {}},
            "c": {"figures": [dict(figure, p99=3, unit="", count=0)], "ratios": {}, "targets": []},
        },
    }
    problems = " | ".join(results.validate(data))
    for expected in (
        "a/x: percentiles out of order",
        "a: ratio r",
        "a: incomplete target",
        "b: no figures",
        "c/x: no unit",
        "c/x: count 0",
        "c: missing params",
    ):
        assert expected in problems


def test_unknown_scenario_and_bad_mix(capsys) -> None:
    with pytest.raises(SystemExit, match="unknown scenario 'fast'"):
        _cli.main(["bench", "fast", "--store", "x"])
    with pytest.raises(ValueError, match="mix entries"):
        _cli.main(["bench", "load", "--mix", "query=1,delete=2", "--store", "x"])
