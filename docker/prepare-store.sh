#!/bin/sh
# Bake a store into the image at build time: from an original .tfrecord in the build context when TFRECORD
# names one, else the synthetic demo store (built into NASBENCH_CACHE_DIR) so containers start at once.
#   prepare-store.sh CONTEXT_DIR
set -eu
if [ -n "${TFRECORD:-}" ]; then
  nasbench build "$1/${TFRECORD}" "${NASBENCH_BAKED_STORE}"
else
  nasbench serve --prepare
fi
