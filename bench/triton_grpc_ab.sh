#!/usr/bin/env bash
# ferroserve's gRPC against Triton Inference Server's on the same model:
# the MLP (testdata/models/mlp.onnx) served by a ferroserve release binary
# and by Triton through PyTriton (Python backend, ONNX Runtime, dynamic
# batching up to 32 rows, like ferroserve's default), both driven by
# `ferroserve bench --protocol grpc` with single-row requests and 64 in
# flight, alternately (ferroserve, Triton, Triton, ferroserve), RUNS runs
# of DURATION each after a 2 s warm-up; then `bench compare` per pair.
# PYTHON is an interpreter with requirements/triton-bench.txt installed, made
# from the system's own Python (Triton's Python backend stub links the
# system's libpython, whose standard library must match it):
#   /usr/bin/python3.11 -m venv /tmp/pytriton
#   /tmp/pytriton/bin/pip install -r requirements/triton-bench.txt
# Usage: bench/triton_grpc_ab.sh BINARY PYTHON OUT_DIR [RUNS] [DURATION]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
binary="$1" python="$2" out="$3" runs="${4:-3}" duration="${5:-5s}"
mkdir -p "$out"
port=$((20000 + RANDOM % 20000))
data="$(mktemp -d)"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$data"' EXIT

"$binary" serve --http "127.0.0.1:$port" --grpc "127.0.0.1:$((port + 1))" --data-dir "$data" \
    --no-example --model mlp=testdata/models/mlp.onnx --log-level warn >/dev/null 2>&1 &
pids+=($!)
"$python" bench/pytriton_mlp.py testdata/models/mlp.onnx mlp \
    "$((port + 2))" "$((port + 3))" "$((port + 4))" >"$out/triton.log" 2>&1 &
pids+=($!)
for _ in $(seq 600); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null \
        && curl -sf "http://127.0.0.1:$((port + 2))/v2/models/mlp/ready" >/dev/null && break
    sleep 0.2
done
export FERROSERVE_API_KEY="$(cat "$data/admin.key")"

run() { # side http_port grpc_port
    "$binary" bench --url "http://127.0.0.1:$2" --grpc-url "http://127.0.0.1:$3" --model mlp \
        --protocol grpc -c 64 --duration "$duration" --warmup 2s --runs "$runs" \
        --quiet -o "$out/$1.json" >/dev/null
}
run ferroserve-1 "$port" "$((port + 1))"
run triton-1 "$((port + 2))" "$((port + 3))"
run triton-2 "$((port + 2))" "$((port + 3))"
run ferroserve-2 "$port" "$((port + 1))"
for pair in 1 2; do
    echo "== MLP gRPC, pair $pair: Triton → ferroserve"
    "$binary" bench compare "$out/triton-$pair.json" "$out/ferroserve-$pair.json"
done
