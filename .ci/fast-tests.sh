#!/usr/bin/env bash
# The fast test subset on another Python, in a fresh venv holding only what the subset needs (the builder and
# server extras and the fast-tests extra): shows that the packages install, import and work on that version.
#   .ci/fast-tests.sh prepare VERSION DIR   copy the checkout's files (tracked and not ignored) to DIR/src, make
#                                            DIR/venv with Python VERSION (pyenv's, else pythonVERSION on PATH) and
#                                            install DIR/src into it; fails if that Python is not on the machine
#   .ci/fast-tests.sh run DIR [ARGS...]      run the subset in DIR/src with DIR/venv's Python (ARGS go to pytest)
# The subset: tests/client, tests/builder, tests/proto and tests/server, less the tests marked slow (the
# exhaustive checks over the whole space) and the tests needing torch. The full suite runs on the default Python
# (.ci/run). The copy keeps installs and runs apart from the checkout's own (.ci/run installs the dev venv there
# at the same time).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# The tests of nasbench.model that need torch are left out: only Python 3.11 has a CPU build of torch on the
# machine (the full suite runs them). So are the tests run as an unprivileged user (marker 'unprivileged'): pyenv's
# 3.10 and 3.13 load their libpython from under /root, which that user cannot read (3.11 has Debian's); the full
# suite runs them.
FAST_TESTS=(tests/client tests/builder tests/proto tests/server -m "not slow and not unprivileged"
  --ignore=tests/client/model/test_network.py --ignore=tests/client/model/test_training.py
  --ignore=tests/builder/test_train_cli.py)
export PIP_DISABLE_PIP_VERSION_CHECK=1

find_python() {
  local version=$1 candidate
  local is_it="import sys; sys.exit('%d.%d' % sys.version_info[:2] != '$version')"
  for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$version".*/bin/python"$version" \
    "$(command -v "python$version" || true)"; do
    if [ -x "$candidate" ] && "$candidate" -c "$is_it" 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  echo "fast-tests: no Python $version on this machine (looked in pyenv's versions and on PATH)" >&2
  return 1
}

case ${1:-} in
  prepare)
    [ $# -eq 3 ] || { echo "usage: $0 prepare VERSION DIR" >&2; exit 2; }
    python=$(find_python "$2")
    dir=$3
    rm -rf "$dir/src" "$dir/venv"
    mkdir -p "$dir/src"
    git -C "$ROOT" ls-files -z --cached --others --exclude-standard \
      | tar -C "$ROOT" --null -T - --ignore-failed-read -cf - | tar -C "$dir/src" -xf -
    "$python" -m venv "$dir/venv"
    "$dir/venv/bin/pip" install -q -e "$dir/src[builder,server,fast-tests]"
    echo "fast-tests: $("$dir/venv/bin/python" --version) ready in $dir"
    ;;
  run)
    [ $# -ge 2 ] || { echo "usage: $0 run DIR [PYTEST ARGS...]" >&2; exit 2; }
    dir=$2
    shift 2
    cd "$dir/src"
    "$dir/venv/bin/python" -m pytest -q -p no:cacheprovider "${FAST_TESTS[@]}" "$@"
    ;;
  *)
    echo "usage: $0 prepare VERSION DIR | run DIR [PYTEST ARGS...]" >&2
    exit 2
    ;;
esac
