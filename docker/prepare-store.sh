#!/bin/sh
# Bake a store into the image at build time, as BAKE_STORE says:
#   none        nothing (the lean default): mount a store at /data/store.lmdb, or the first start builds the
#               synthetic demo store into NASBENCH_CACHE_DIR (about a minute)
#   synthetic   the synthetic demo store, built into NASBENCH_CACHE_DIR, so containers serve within a second
#   PATH        an original .tfrecord at PATH in the build context, built into NASBENCH_BAKED_STORE
#   prepare-store.sh CONTEXT_DIR
set -eu
case "${BAKE_STORE:-none}" in
  none) ;;
  synthetic) nasbench serve --prepare ;;
  *) nasbench build "$1/${BAKE_STORE}" "${NASBENCH_BAKED_STORE}" ;;
esac
