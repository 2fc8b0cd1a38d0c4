# ferroserve container image: the release binary plus the ONNX Runtime
# library taken from the PyPI wheel (no other download), on Debian bookworm
# slim, run as uid/gid 10001 with a read-only root filesystem in mind.
#
# Default, the full multi-stage build (compiles in the `build` stage):
#
#   docker build -t ferroserve .            # or: podman build --format docker
#
# Runtime stage only, from a binary built elsewhere: a folder holding
# `ferroserve` and `libonnxruntime.so` replaces the `artifacts` stage, and
# neither the compiler nor the Python stage runs:
#
#   docker build --target runtime --build-context artifacts=DIR -t ferroserve .
#
# scripts/container-image.sh does the latter (and makes a local base image
# when no registry can be reached); scripts/container-test.sh checks an image.
# The base images are build arguments, so a mirror or a local image can
# stand in for Docker Hub (fully qualified: podman resolves no short names).
# podman/buildah keep HEALTHCHECK only with `--format docker` (OCI image
# configs have no health check).
ARG RUST_IMAGE=docker.io/library/rust:1-bookworm
ARG PYTHON_IMAGE=docker.io/library/python:3.11-slim-bookworm
ARG RUNTIME_IMAGE=docker.io/library/debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
# Release builds keep line tables (profile.release debug = line-tables-only:
# 350+ MB); the image keeps the symbols (function names in backtraces) and
# drops the debug sections: about 80 MB.
RUN cargo build --release --locked -p ferroserve \
    && mkdir -p /out \
    && objcopy --strip-debug target/release/ferroserve /out/ferroserve

FROM ${PYTHON_IMAGE} AS onnxruntime
COPY requirements/runtime.txt /tmp/runtime.txt
# Only the wheel's shared library is used: its Python dependencies are not
# needed.
RUN pip install --no-cache-dir --no-deps --only-binary=:all: --target /opt/ort -r /tmp/runtime.txt \
    && mkdir -p /out \
    && cp /opt/ort/onnxruntime/capi/libonnxruntime.so.* /out/libonnxruntime.so

# What the runtime stage takes: replace it with
# `--build-context artifacts=DIR` (DIR/ferroserve, DIR/libonnxruntime.so).
FROM scratch AS artifacts
COPY --from=build /out/ferroserve /ferroserve
COPY --from=onnxruntime /out/libonnxruntime.so /libonnxruntime.so

# The CA bundle alone, for https S3 endpoints, JWKS URLs and webhooks
# (ferroserve trusts the system's CA store): the ca-certificates package
# itself would bring openssl into the image.
FROM ${RUNTIME_IMAGE} AS certs
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*

FROM ${RUNTIME_IMAGE} AS runtime
# uid and gid 10001 (deploy/kubernetes: runAsUser/runAsGroup 10001). The
# image keeps /bin/sh, grep and sleep: the Kubernetes init container and
# preStop hook use them. /data is the data dir (a volume or tmpfs when the
# root filesystem is read-only); the working directory is empty and
# read-only for the server: nothing is ever looked up relative to it (model
# external data included).
RUN groupadd --system --gid 10001 ferroserve \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --no-log-init \
        --home-dir /var/empty/ferroserve --shell /usr/sbin/nologin ferroserve \
    && mkdir -p /data /models /var/empty/ferroserve \
    && chown 10001:10001 /data && chmod 0700 /data && chmod 0555 /var/empty/ferroserve \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/*
COPY --from=certs /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=artifacts --chmod=0755 /ferroserve /usr/local/bin/ferroserve
COPY --from=artifacts --chmod=0644 /libonnxruntime.so /usr/local/lib/libonnxruntime.so
ENV FERROSERVE_HTTP=0.0.0.0:8080 \
    FERROSERVE_DATA_DIR=/data \
    FERROSERVE_ORT_LIBRARY=/usr/local/lib/libonnxruntime.so
USER 10001:10001
WORKDIR /var/empty/ferroserve
EXPOSE 8080 8081
# GET /livez over plain HTTP on the port of FERROSERVE_HTTP, with bash's
# /dev/tcp: no curl or wget in the image. (With --tls-cert, or --http given
# as a flag instead of FERROSERVE_HTTP, give the container a health check
# of its own.)
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/\"${FERROSERVE_HTTP##*:}\" && printf 'GET /livez HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && read -r -t 2 _ code _ <&3 && [ \"$code\" = 200 ]"]
ENTRYPOINT ["ferroserve", "serve"]
