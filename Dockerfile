# syntax=docker/dockerfile:1.7
# nasbench-server: the gRPC server of NAS-Bench-101, non-root, configured by NASBENCH_* environment variables.
#   docker build -t nasbench-server .                                   # synthetic demo store baked in
#   docker build --build-arg TFRECORD=data/nasbench_full.tfrecord -t nasbench-server .   # the real one baked in
#   docker run -p 50051:50051 -e NASBENCH_TOKEN=secret nasbench-server
#   docker run -v /srv/nasbench:/data:ro -e NASBENCH_TOKEN=secret nasbench-server   # /data/store.lmdb mounted
#   docker run -v nasbench-cache:/opt/nasbench/cache -e NASBENCH_DATASET=only108 -e NASBENCH_TOKEN=secret \
#     nasbench-server   # the real data, downloaded, verified and built once into the volume; later starts instant
# No VOLUME instruction on purpose: an anonymous volume per container would copy the baked store on every run.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY client client
COPY builder builder
COPY server server
COPY bench bench
COPY docker docker
RUN sh docker/install.sh wheels /src /wheels

FROM ${PYTHON_IMAGE} AS runtime
ARG TFRECORD=""
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NASBENCH_HOST=0.0.0.0 \
    NASBENCH_PORT=50051 \
    NASBENCH_WORKERS=1 \
    NASBENCH_LOG_LEVEL=INFO \
    NASBENCH_CACHE_DIR=/opt/nasbench/cache \
    NASBENCH_MOUNTED_STORE=/data/store.lmdb \
    NASBENCH_BAKED_STORE=/opt/nasbench/store.lmdb
# Further settings, unset by default: NASBENCH_STORE, NASBENCH_TOKEN or NASBENCH_TOKEN_FILE, NASBENCH_TLS_CERT
# and NASBENCH_TLS_KEY (NASBENCH_TLS_CA for the health check), NASBENCH_INSECURE=1, NASBENCH_MAX_BATCH, ...
# NASBENCH_DATASET=only108|full (with NASBENCH_DATASET_URL and NASBENCH_DATASET_SHA256 for a mirror): download
# and build into NASBENCH_CACHE_DIR (mount a volume there) on the first start, then serve.
# Beyond loopback the server refuses to start without a token or TLS unless NASBENCH_INSECURE=1.
COPY --from=build /wheels /wheels
COPY docker/install.sh docker/prepare-store.sh docker/entrypoint.sh /usr/local/lib/nasbench/
RUN sh /usr/local/lib/nasbench/install.sh install /wheels \
    && rm -rf /wheels \
    && groupadd --system --gid 10001 nasbench \
    && useradd --system --uid 10001 --gid 10001 --home-dir /opt/nasbench --create-home nasbench \
    && mkdir -p /data
COPY examples /opt/nasbench/examples
RUN --mount=type=bind,target=/context sh /usr/local/lib/nasbench/prepare-store.sh /context \
    && chown -R nasbench:nasbench /opt/nasbench
USER 10001:10001
WORKDIR /opt/nasbench
EXPOSE 50051
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 CMD ["nasbench", "health"]
ENTRYPOINT ["sh", "/usr/local/lib/nasbench/entrypoint.sh"]
