#!/usr/bin/env bash
# Same-machine A/B of two ferroserve release binaries with `ferroserve bench`:
# the MLP (testdata/models/mlp.onnx) with single-row KServe v2 JSON and
# binary requests, and the bundled iris with JSON, 64 connections. Each case
# runs the servers in the order before, after, after, before (so drift of a
# shared machine shows as an order effect), RUNS runs of DURATION each after
# a 2 s warm-up, all driven by the BEFORE binary's client so that only the
# server differs; then `bench compare` gives the verdict of each pair.
# Usage: bench/ab.sh BEFORE_BIN AFTER_BIN OUT_DIR [RUNS] [DURATION]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
before="$1" after="$2" out="$3" runs="${4:-3}" duration="${5:-5s}"
client="$before"
mkdir -p "$out"
port=$((20000 + RANDOM % 20000))

serve_and_bench() { # side binary label model file protocol
    local side="$1" binary="$2" label="$3" model="$4" file="$5" protocol="$6"
    local data
    data="$(mktemp -d)"
    "$binary" serve --http "127.0.0.1:$port" --data-dir "$data" --no-example \
        --model "$model=$file" --log-level warn >/dev/null 2>&1 &
    local pid=$!
    for _ in $(seq 300); do curl -sf "127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
    "$client" bench --url "http://127.0.0.1:$port" --model "$model" --protocol "$protocol" \
        -c 64 --duration "$duration" --warmup 2s --runs "$runs" -o "$out/$label-$side.json" >/dev/null
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -rf "$data"
}

case_ab() { # label model file protocol
    local label="$1" model="$2" file="$3" protocol="$4"
    serve_and_bench before-1 "$before" "$label" "$model" "$file" "$protocol"
    serve_and_bench after-1 "$after" "$label" "$model" "$file" "$protocol"
    serve_and_bench after-2 "$after" "$label" "$model" "$file" "$protocol"
    serve_and_bench before-2 "$before" "$label" "$model" "$file" "$protocol"
    for pair in 1 2; do
        echo "== $label, pair $pair"
        "$client" bench compare "$out/$label-before-$pair.json" "$out/$label-after-$pair.json"
    done
}

case_ab mlp-json mlp testdata/models/mlp.onnx http-json
case_ab mlp-binary mlp testdata/models/mlp.onnx http-binary
case_ab iris-json iris examples/iris/model.onnx http-json
