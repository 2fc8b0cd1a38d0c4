#!/usr/bin/env bash
# What tracing costs when no OTLP endpoint is configured: a ferroserve
# binary without trace spans (BEFORE) against one with them (AFTER), each
# serving the bundled iris in turn, driven by `ferroserve bench` (KServe v2
# JSON, 64 connections), in the order before, after, after, before, RUNS
# runs of DURATION each after a 2 s warm-up; then `bench compare` gives the
# verdict of each pair. Usage:
#   bench/traces_ab.sh BEFORE_BINARY AFTER_BINARY OUT_DIR [RUNS] [DURATION]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
before="$1" after="$2" out="$3" runs="${4:-3}" duration="${5:-5s}"
mkdir -p "$out"

run() { # side binary
    local side="$1" binary="$2"
    local port=$((20000 + RANDOM % 20000)) data
    data="$(mktemp -d)"
    "$binary" serve --http "127.0.0.1:$port" --data-dir "$data" --no-example \
        --anonymous-role predictor --model iris=examples/iris/model.onnx \
        --log-level warn >/dev/null 2>&1 &
    local pid=$!
    for _ in $(seq 600); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
    "$after" bench --url "http://127.0.0.1:$port" --model iris --protocol http-json \
        -c 64 --duration "$duration" --warmup 2s --runs "$runs" --anonymous \
        -o "$out/iris-$side.json" >/dev/null
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    rm -rf "$data"
}

run before-1 "$before"
run after-1 "$after"
run after-2 "$after"
run before-2 "$before"
for pair in 1 2; do
    echo "== iris JSON, pair $pair: before → after (no OTLP endpoint)"
    "$after" bench compare "$out/iris-before-$pair.json" "$out/iris-after-$pair.json"
done
