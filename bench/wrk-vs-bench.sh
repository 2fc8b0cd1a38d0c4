#!/usr/bin/env bash
# The served cases of docs/PERFORMANCE.md measured twice on the same server:
# with wrk (bench/wrk/post.lua, fixed bodies from bench/make_bodies.py), then
# with `ferroserve bench` in closed loop at the same concurrency (random
# tensors of the model's signature, one pre-built body per key).
# Usage: bench/wrk-vs-bench.sh [DURATION_S] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
duration="${1:-10}"
connections="${2:-64}"
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
scripts/python-env.sh runtime >/dev/null
cargo build --release --locked -p ferroserve >/dev/null
bin=target/release/ferroserve
bodies=target/bench-bodies
python3 bench/make_bodies.py "$bodies"
port=$((20000 + RANDOM % 20000))
url="http://127.0.0.1:$port"

run() { # label, model name, model file, wrk body, bench protocol
    local label="$1" model="$2" file="$3" body="$4" protocol="$5"
    "$bin" serve --http "127.0.0.1:$port" --no-example --model "$model=$file" \
        --max-batch-size 32 --log-level warn >/dev/null 2>&1 &
    local pid=$!
    for _ in $(seq 100); do curl -sf "$url/readyz" >/dev/null && break; sleep 0.1; done
    BODY="$bodies/$body" wrk -t2 -c"$connections" -d2s -s bench/wrk/post.lua \
        "$url/v2/models/$model/infer" >/dev/null
    echo "== $label: wrk"
    BODY="$bodies/$body" wrk -t2 -c"$connections" -d"${duration}s" --latency -s bench/wrk/post.lua \
        "$url/v2/models/$model/infer" | grep -E "Requests/sec|50%|99%|Non-2xx|Socket errors"
    echo "== $label: ferroserve bench"
    "$bin" bench --url "$url" --model "$model" --protocol "$protocol" -c "$connections" \
        --warmup 2s --duration "${duration}s" --keys 1 --quiet
    kill "$pid"; wait "$pid" 2>/dev/null || true
}

run "mlp json, batching on" mlp testdata/models/mlp.onnx mlp.json http-json
run "mlp binary, batching on" mlp testdata/models/mlp.onnx mlp.bin http-binary
run "iris json, batching on" iris examples/iris/model.onnx iris.json http-json
