#!/bin/sh
# Start the server on the best store available: NASBENCH_STORE if set; else NASBENCH_DATASET (downloaded and
# built once into NASBENCH_CACHE_DIR); else a store mounted read-only at NASBENCH_MOUNTED_STORE
# (/data/store.lmdb); else one baked into the image; else the synthetic demo store.
# exec: the server is PID 1 and receives SIGTERM itself (graceful drain).
set -eu
if [ -z "${NASBENCH_STORE:-}" ] && [ -z "${NASBENCH_DATASET:-}" ]; then
  if [ -f "${NASBENCH_MOUNTED_STORE}" ]; then
    NASBENCH_STORE="${NASBENCH_MOUNTED_STORE}"
    export NASBENCH_STORE
  elif [ -f "${NASBENCH_BAKED_STORE}" ]; then
    NASBENCH_STORE="${NASBENCH_BAKED_STORE}"
    export NASBENCH_STORE
  fi
fi
exec nasbench serve "$@"
