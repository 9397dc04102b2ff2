"""Mutation testing of the core modules with mutmut, one module at a time, each with the tests that concern it.

Usage (from the repository root, with the dev environment)::

    .venv/bin/python tools/mutation.py run                 # every core module (about an hour on 2 idle cores)
    .venv/bin/python tools/mutation.py run canonical verify  # some modules
    .venv/bin/python tools/mutation.py report              # killed / survived per module (markdown)
    .venv/bin/python tools/mutation.py survivors verify    # the surviving mutants of a module, as diffs
    .venv/bin/python tools/mutation.py hand                # seven hand-made mutations: each must fail

The modules and their tests are listed in pyproject.toml (``[tool.nasbench.mutation]``); mutmut's own settings
are in ``[tool.mutmut]``. mutmut names mutants after file paths and wants packages at the root, while this
repository keeps them under client/, builder/ and server/: each module therefore runs in its own staging folder,
``.mutation/<module>/``, holding copies of the packages and tests side by side (results stay there between
runs; ``run`` starts a module afresh). See docs/mutation-testing.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import tomllib

ROOT = Path(__file__).resolve().parents[1]
STAGING = ROOT / ".mutation"
KILLED = {"killed", "timeout", "caught by type check", "segfault"}


def settings() -> dict[str, Any]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return {
        "mutmut": data["tool"].get("mutmut", {}),
        "pytest": data["tool"]["pytest"]["ini_options"],
        "mutation": data["tool"]["nasbench"]["mutation"],
    }


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def _table(name: str, values: dict[str, Any]) -> str:
    return f"[{name}]\n" + "".join(f"{key} = {_toml_value(value)}\n" for key, value in values.items())


def stage(name: str, config: dict[str, Any], fresh: bool) -> Path:
    """The staging folder of one module: packages at the root, tests, and a pyproject.toml for mutmut."""
    module = config["mutation"]["modules"][name]
    folder = STAGING / name
    if fresh and folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    packages = []
    for root in config["mutation"]["package_roots"]:
        for package in sorted((ROOT / root).iterdir()):
            if (package / "__init__.py").exists():
                target = folder / package.name
                if target.exists():
                    shutil.rmtree(target)
                shutil.copytree(package, target, ignore=shutil.ignore_patterns("__pycache__"))
                packages.append(package.name)
    if (folder / "tests").exists():
        shutil.rmtree(folder / "tests")
    shutil.copytree(ROOT / "tests", folder / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    mutmut = dict(config["mutmut"])
    mutmut["source_paths"] = packages
    mutmut["only_mutate"] = [_staged_path(path, config) for path in module["files"]]
    mutmut["pytest_add_cli_args_test_selection"] = list(module["tests"])
    (folder / "pyproject.toml").write_text(
        _table("tool.mutmut", mutmut) + "\n" + _table("tool.pytest.ini_options", config["pytest"])
    )
    return folder


def _staged_path(path: str, config: dict[str, Any]) -> str:
    """``client/nasbench/canonical.py`` -> ``nasbench/canonical.py`` (the path inside the staging folder)."""
    for root in config["mutation"]["package_roots"]:
        if path.startswith(root + "/"):
            return path[len(root) + 1 :]
    raise SystemExit(f"{path} is not under one of the package roots {config['mutation']['package_roots']}")


def _environment(cache: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    env["NASBENCH_TEST_FIXTURE_CACHE"] = str(cache)
    env["NASBENCH_TEST_INPROCESS_SERVER"] = "1"
    env["NASBENCH_TEST_FORGET_MEMOS"] = "1"
    return env


def mutmut_command() -> list[str]:
    executable = Path(sys.executable).with_name("mutmut")
    return [str(executable)] if executable.exists() else [sys.executable, "-m", "mutmut"]


def run(
    names: list[str],
    config: dict[str, Any],
    children: int,
    fresh: bool,
    survivors_only: bool = False,
    keep_fixtures: bool = False,
) -> int:
    cache = STAGING / "fixture-cache"
    if fresh and not keep_fixtures and cache.exists():
        shutil.rmtree(cache)
    _derived_tables(cache)
    status = 0
    missing = [
        path
        for name in names
        for path in [*config["mutation"]["modules"][name]["files"], *config["mutation"]["modules"][name]["tests"]]
        if not path.startswith("-") and " " not in path and "/" in path and not (ROOT / path.split("::")[0]).exists()
    ]
    if missing:
        raise SystemExit(f"pyproject.toml [tool.nasbench.mutation] names paths that do not exist: {missing}")
    for name in names:
        again = sorted(mutant for mutant, found in results(name, config).items() if found not in KILLED)
        if survivors_only and not again:
            print(f"== {name}: no survivor to test again", flush=True)
            continue
        folder = stage(name, config, fresh)
        print(f"== {name}: mutmut in {folder.relative_to(ROOT)}", flush=True)
        command = [*mutmut_command(), "run", "--max-children", str(children)]
        result = subprocess.run([*command, *(again if survivors_only else [])], cwd=folder, env=_environment(cache))
        status = status or result.returncode
        print(summary_line(name, results(name, config)), flush=True)
    return status


def _derived_tables(cache: Path) -> None:
    """The key table and the space table, computed once with the unmutated code into ``<cache>/derived``: each
    mutant's pytest session copies them into its own cache folder (tests/conftest.py) instead of computing them."""
    derived = cache / "derived"
    if derived.is_dir():
        return
    cache.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=".derived-", dir=cache))
    code = "from nasbench import space; from nasbench._cells import keytable; space.load_space(); keytable.table()"
    environment = {**os.environ, "NASBENCH_CACHE_DIR": str(temp)}
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment, check=True)
    os.replace(temp, derived)


def results(name: str, config: dict[str, Any]) -> dict[str, str]:
    """mutant name -> status, from mutmut's files in the module's staging folder."""
    from mutmut.stats import status_by_exit_code

    folder = STAGING / name
    found: dict[str, str] = {}
    for path in config["mutation"]["modules"][name]["files"]:
        meta = folder / "mutants" / (_staged_path(path, config) + ".meta")
        if not meta.exists():
            continue
        for mutant, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            found[mutant] = status_by_exit_code[code]
    return found


def counts(found: dict[str, str]) -> dict[str, int]:
    total = len(found)
    killed = sum(1 for status in found.values() if status in KILLED)
    survived = sum(1 for status in found.values() if status == "survived")
    return {"total": total, "killed": killed, "survived": survived, "other": total - killed - survived}


def summary_line(name: str, found: dict[str, str]) -> str:
    c = counts(found)
    score = 100.0 * c["killed"] / c["total"] if c["total"] else 0.0
    return f"{name}: {c['killed']} killed, {c['survived']} survived, {c['other']} other, of {c['total']} ({score:.1f}%)"


def report(config: dict[str, Any]) -> None:
    print("| module | files | mutants | killed | survived | other | killed % |")
    print("|---|---|---|---:|---:|---:|---:|")
    total = {"total": 0, "killed": 0, "survived": 0, "other": 0}
    for name, module in config["mutation"]["modules"].items():
        c = counts(results(name, config))
        for key in total:
            total[key] += c[key]
        score = f"{100.0 * c['killed'] / c['total']:.1f}" if c["total"] else "-"
        files = ", ".join(Path(path).name for path in module["files"])
        print(f"| {name} | {files} | {c['total']} | {c['killed']} | {c['survived']} | {c['other']} | {score} |")
    score = f"{100.0 * total['killed'] / total['total']:.1f}" if total["total"] else "-"
    print(f"| **all** | | {total['total']} | {total['killed']} | {total['survived']} | {total['other']} | {score} |")


def survivors(name: str, config: dict[str, Any], show: bool) -> None:
    found = results(name, config)
    folder = STAGING / name
    for mutant, status in sorted(found.items()):
        if status in KILLED:
            continue
        print(f"# {mutant}: {status}")
        if show:
            diff = subprocess.run([*mutmut_command(), "show", mutant], cwd=folder, capture_output=True, text=True)
            lines = [
                line
                for line in diff.stdout.splitlines()
                if line.startswith(("-", "+")) and not line.startswith(("---", "+++"))
            ]
            print("\n".join(lines))


# --- seven mutations, made by hand --------------------------------------------------------------

HAND_MUTATIONS = [
    {
        "name": "checksums of 8 of the 12 store arrays skipped",
        "file": "client/nasbench/_store/integrity.py",
        "old": 'for name, spec in manifest["arrays"].items():',
        "new": 'for name, spec in list(manifest["arrays"].items())[:4]:',
        "tests": ["tests/builder/test_verify.py::test_flipped_byte_fails_the_checksum"],
    },
    {
        "name": "a batch of exactly max_batch cells refused (> turned into >=)",
        "file": "server/nasbench_server/servicer.py",
        "old": "if count > self.config.max_batch:",
        "new": "if count >= self.config.max_batch:",
        "tests": ["tests/server/test_service.py::test_a_batch_of_exactly_the_documented_maximum_is_answered"],
    },
    {
        "name": "the hashed repeat policy ignores the seed",
        "file": "client/nasbench/_engine/answers.py",
        "old": "index = repeat.index if repeat.mode == \"index\" else hashed_repeat(key, epochs, repeat.seed)",
        "new": "index = repeat.index if repeat.mode == \"index\" else hashed_repeat(key, epochs, 0)",
        "tests": ["tests/server/test_service.py::test_hashed_repeat_by_value"],
    },
    {
        "name": "nasbench verify's invariant checks made a no-op",
        "file": "builder/nasbench_builder/verify.py",
        "old": "def _check(store: Store, table: space.SpaceTable) -> None:\n",
        "new": "def _check(store: Store, table: space.SpaceTable) -> None:\n    return\n",
        "tests": ["tests/builder/test_verify_invariants.py"],
    },
    {
        "name": "store rows in hash order instead of file order",
        "file": "builder/nasbench_builder/source.py",
        "old": 'order = np.argsort(first, kind="stable")',
        "new": "order = np.arange(len(first))",
        "tests": ["tests/builder/test_file_order.py"],
    },
    {
        "name": "sample returns the first k rows instead of a uniform draw",
        "file": "client/nasbench/_engine/engine.py",
        "old": "return rng.choice(rows, size=k, replace=False)",
        "new": "return rows[:k]",
        "tests": ["tests/client/test_sampling.py"],
    },
    {
        "name": "repeat='all' charges repeat 0's time instead of the mean",
        "file": "client/nasbench/_surface.py",
        "old": "charged = sum(values[0]) / len(values[0])",
        "new": "charged = values[0][0]",
        "tests": ["tests/client/test_api.py::test_repeat_policies"],
    },
]


def hand(config: dict[str, Any]) -> int:
    """Apply each hand-made mutation to a scratch copy of the packages and run the tests meant to kill it."""
    failures = 0
    for mutation in HAND_MUTATIONS:
        with tempfile.TemporaryDirectory(prefix="nasbench-hand-mutation-") as scratch:
            folder = Path(scratch)
            for root in config["mutation"]["package_roots"]:
                for package in (ROOT / root).iterdir():
                    if (package / "__init__.py").exists():
                        shutil.copytree(package, folder / package.name, ignore=shutil.ignore_patterns("__pycache__"))
            shutil.copytree(ROOT / "tests", folder / "tests", ignore=shutil.ignore_patterns("__pycache__"))
            shutil.copy(ROOT / "pyproject.toml", folder / "pyproject.toml")
            target = folder / _staged_path(mutation["file"], config)
            text = target.read_text()
            if text.count(mutation["old"]) != 1:
                print(
                    f"!! {mutation['name']}: the code to mutate is not in {mutation['file']} exactly once "
                    "(update HAND_MUTATIONS in tools/mutation.py)"
                )
                failures += 1
                continue
            target.write_text(text.replace(mutation["old"], mutation["new"]))
            env = {**os.environ, "PYTHONPATH": str(folder)}
            command = [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-x",
                "-p",
                "no:randomly",
                "-p",
                "no:cacheprovider",
                *mutation["tests"],
            ]
            result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
            failed = [line for line in result.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
            if result.returncode == 1 and failed:
                print(f"killed: {mutation['name']}\n    {mutation['file']}: {mutation['old']!r} -> {mutation['new']!r}")
                for line in failed:
                    print(f"    {line}")
            else:
                failures += 1
                print(f"SURVIVED (exit {result.returncode}): {mutation['name']}\n{result.stdout[-2000:]}")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="run mutmut on modules (all core modules by default)")
    run_parser.add_argument("modules", nargs="*")
    run_parser.add_argument("--children", type=int, default=os.cpu_count() or 2, help="parallel mutants")
    run_parser.add_argument("--resume", action="store_true", help="keep earlier results; test only new mutants")
    run_parser.add_argument(
        "--survivors", action="store_true", help="with the current tests, test again only the mutants that survived"
    )
    run_parser.add_argument(
        "--keep-fixture-cache",
        action="store_true",
        help="reuse the cached session fixtures (another run is building or using them; the product is unchanged)",
    )
    commands.add_parser("report", help="killed / survived per module, as a markdown table")
    survivors_parser = commands.add_parser("survivors", help="surviving mutants of a module")
    survivors_parser.add_argument("module")
    survivors_parser.add_argument("--diff", action="store_true", help="show each mutant's diff")
    commands.add_parser("hand", help="the hand-made mutations (docs/mutation-testing.md), each must fail its test")
    args = parser.parse_args(argv)
    config = settings()
    modules = config["mutation"]["modules"]
    if args.command == "run":
        names = args.modules or list(modules)
        unknown = [name for name in names if name not in modules]
        if unknown:
            parser.error(f"unknown module {unknown[0]!r} (choose from {', '.join(modules)})")
        return run(
            names,
            config,
            args.children,
            fresh=not (args.resume or args.survivors),
            survivors_only=args.survivors,
            keep_fixtures=args.keep_fixture_cache,
        )
    if args.command == "report":
        report(config)
        return 0
    if args.command == "survivors":
        survivors(args.module, config, args.diff)
        return 0
    return hand(config)


if __name__ == "__main__":
    sys.exit(main())
