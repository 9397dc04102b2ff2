#!/bin/sh
# The image's install steps, shared by the Dockerfile and the test that replays them in a fresh virtualenv.
#   install.sh wheels SOURCE WHEELS   build wheels of the project and its pinned dependencies (build stage)
#   install.sh install WHEELS         install them, offline (runtime stage)
set -eu
case "$1" in
  wheels)
    pip wheel --no-cache-dir --wheel-dir "$3" --constraint "$2/docker/constraints.txt" "$2[server,builder]"
    ;;
  install)
    pip install --no-cache-dir --no-index --find-links "$2" "nasbench-server[server,builder]"
    ;;
  *)
    echo "usage: install.sh wheels SOURCE WHEELS | install.sh install WHEELS" >&2
    exit 2
    ;;
esac
