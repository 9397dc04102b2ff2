# nasbench-server: the gRPC server of NAS-Bench-101, non-root, configured by NASBENCH_* environment variables,
# with Prometheus metrics on port 9464. The build needs no image registry beyond its base (PYTHON_IMAGE), and
# every package installed is pinned (docker/requirements.lock).
#   docker build -t nasbench-server .                                                # lean: no store inside
#   docker build --build-arg BAKE_STORE=synthetic -t nasbench-server:synthetic .      # + the synthetic demo store
#   docker build --build-arg BAKE_STORE=data/nasbench_full.tfrecord -t nasbench-server:full .  # + the real one
#   docker run -v /srv/nasbench:/data:ro -p 50051:50051 -e NASBENCH_TOKEN=secret nasbench-server  # /data/store.lmdb
#   docker run -v nasbench-cache:/opt/nasbench/cache -e NASBENCH_DATASET=only108 -e NASBENCH_TOKEN=secret \
#     nasbench-server   # the real data, downloaded, verified and built once into the volume; later starts instant
# No VOLUME instruction on purpose: an anonymous volume per container would copy the baked store on every run.
# The lean image with no store mounted builds the synthetic demo store at its first start (about a minute).
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY client client
COPY builder builder
COPY server server
COPY docker/install.sh docker/requirements.lock docker/build-constraints.txt docker/
RUN sh docker/install.sh /src /opt/nasbench/venv

FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/nasbench/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NASBENCH_HOST=0.0.0.0 \
    NASBENCH_PORT=50051 \
    NASBENCH_METRICS_PORT=9464 \
    NASBENCH_WORKERS=1 \
    NASBENCH_LOG_LEVEL=INFO \
    NASBENCH_CACHE_DIR=/opt/nasbench/cache \
    NASBENCH_MOUNTED_STORE=/data/store.lmdb \
    NASBENCH_BAKED_STORE=/opt/nasbench/store.lmdb
# Further settings, unset by default: NASBENCH_STORE, NASBENCH_TOKEN or NASBENCH_TOKEN_FILE, NASBENCH_TLS_CERT
# and NASBENCH_TLS_KEY (NASBENCH_TLS_CA for the health check), NASBENCH_INSECURE=1, NASBENCH_MAX_BATCH, ...
# Beyond loopback the server refuses to start without a token or TLS unless NASBENCH_INSECURE=1.
RUN groupadd --system --gid 10001 nasbench \
    && useradd --system --uid 10001 --gid 10001 --home-dir /opt/nasbench --create-home nasbench \
    && mkdir -p /data /opt/nasbench/cache \
    && chown nasbench:nasbench /opt/nasbench/cache
COPY --from=build /opt/nasbench/venv /opt/nasbench/venv
COPY docker/prepare-store.sh docker/entrypoint.sh /usr/local/lib/nasbench/
COPY examples /opt/nasbench/examples
USER 10001:10001
WORKDIR /opt/nasbench
# the store to bake in (none, synthetic, or a .tfrecord in the build context): see docker/prepare-store.sh
ARG BAKE_STORE=none
RUN --mount=type=bind,target=/context sh /usr/local/lib/nasbench/prepare-store.sh /context
EXPOSE 50051 9464
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=180s --retries=3 CMD ["nasbench", "health"]
ENTRYPOINT ["sh", "/usr/local/lib/nasbench/entrypoint.sh"]
