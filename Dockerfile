# ferroserve container image: the release binary plus the ONNX Runtime
# library taken from the PyPI wheel (no other download).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p ferroserve

FROM python:3.11-slim-bookworm AS onnxruntime
COPY requirements/runtime.txt /tmp/runtime.txt
RUN pip install --no-cache-dir --target /opt/ort -r /tmp/runtime.txt \
    && cp /opt/ort/onnxruntime/capi/libonnxruntime.so.* /opt/libonnxruntime.so

FROM debian:bookworm-slim
# The working directory is empty and read-only for the server: nothing is
# ever looked up relative to it (model external data included).
RUN useradd --system --uid 10001 ferroserve && mkdir -p /data /models /var/empty/ferroserve \
    && chown ferroserve /data && chmod 0555 /var/empty/ferroserve
COPY --from=build /src/target/release/ferroserve /usr/local/bin/ferroserve
COPY --from=onnxruntime /opt/libonnxruntime.so /usr/local/lib/libonnxruntime.so
ENV FERROSERVE_HTTP=0.0.0.0:8080 \
    FERROSERVE_DATA_DIR=/data \
    FERROSERVE_ORT_LIBRARY=/usr/local/lib/libonnxruntime.so
USER ferroserve
WORKDIR /var/empty/ferroserve
EXPOSE 8080
ENTRYPOINT ["ferroserve", "serve"]
