#!/bin/sh
# The image's install step, shared by the Dockerfile's build stage and the test that replays it:
#   install.sh SOURCE VENV
# A virtual environment without pip or setuptools, holding exactly the packages pinned in
# docker/requirements.lock (wheels only, --no-deps: nothing unpinned comes in), then the project itself without
# dependencies (its build backend pinned by docker/build-constraints.txt). pip check proves the lock complete,
# the server and builder modules must import, and numpy's own test suites (17 MB never imported) are removed.
set -eu
SOURCE=$1
VENV=$2
python -m venv --without-pip "$VENV"
pip_in_venv() { python -m pip --python "$VENV/bin/python" --disable-pip-version-check "$@"; }
pip_in_venv install --no-cache-dir --no-deps --only-binary=:all: --requirement "$SOURCE/docker/requirements.lock"
PIP_CONSTRAINT="$SOURCE/docker/build-constraints.txt" pip_in_venv install --no-cache-dir --no-deps "$SOURCE"
pip_in_venv check
"$VENV/bin/python" -c "import nasbench_server.app, nasbench_server.metrics, nasbench_builder.writer"
find "$VENV" -type d -path "*/site-packages/numpy/*" -name tests -prune -exec rm -rf {} +
