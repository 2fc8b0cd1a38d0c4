#!/usr/bin/env bash
# Served throughput and latency with wrk (Debian package `wrk`): the MLP
# (testdata/models/mlp.onnx) with single-row KServe v2 JSON and binary
# requests, with dynamic batching on (max 32 rows, no delay) and off (1 row);
# then, when redis-server is installed, the same fixed request answered from
# the result cache: L1 (in process) and L2 (Redis; L1 made too small to hold
# an entry, so every request goes to Redis); and the iris request through
# the protections: rate limits that never refuse (in process, then shared
# through Redis) and a fresh Idempotency-Key on every request.
# Usage: bench/http.sh [DURATION_S] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
duration="${1:-10}"
connections="${2:-64}"
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
scripts/python-env.sh runtime >/dev/null
cargo build --release --locked -p ferroserve >/dev/null
bodies=target/bench-bodies
python3 bench/make_bodies.py "$bodies"
port=$((20000 + RANDOM % 20000))

run() { # label, batch size, model name, model file, body, extra serve flags...
    local label="$1" batch="$2" model="$3" file="$4" body="$5"
    local script="${SCRIPT:-bench/wrk/post.lua}"
    shift 5
    target/release/ferroserve serve --http "127.0.0.1:$port" --no-example \
        --model "$model=$file" --max-batch-size "$batch" \
        --log-level warn "$@" >/dev/null 2>&1 &
    local pid=$!
    for _ in $(seq 100); do curl -sf "127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
    # Warm-up, then the measured run.
    BODY="$bodies/$body" wrk -t2 -c"$connections" -d2s -s "$script" \
        "http://127.0.0.1:$port/v2/models/$model/infer" >/dev/null
    echo "== $label"
    BODY="$bodies/$body" wrk -t2 -c"$connections" -d"${duration}s" --latency -s "$script" \
        "http://127.0.0.1:$port/v2/models/$model/infer" | grep -E "Requests/sec|50%|99%|Non-2xx|Socket errors"
    curl -s "127.0.0.1:$port/metrics" | grep -E '^ferroserve_(batch_size_(sum|count)|cache_requests_total|rate_limit_checks_total|idempotency_total)' | tr '\n' ' '
    echo
    kill "$pid"; wait "$pid" 2>/dev/null || true
}

mlp=testdata/models/mlp.onnx
run "mlp json, batching on" 32 mlp "$mlp" mlp.json
run "mlp json, batching off" 1 mlp "$mlp" mlp.json
run "mlp binary, batching on" 32 mlp "$mlp" mlp.bin
run "mlp binary, batching off" 1 mlp "$mlp" mlp.bin
iris=examples/iris/model.onnx
limits=(--client-rate-limit 1000000 --model-rate-limit 1000000)
run "iris json, batching on" 32 iris "$iris" iris.json
run "iris json, rate limits (in process)" 32 iris "$iris" iris.json "${limits[@]}"
SCRIPT=bench/wrk/idempotent.lua run "iris json, Idempotency-Key (in process)" 32 iris "$iris" iris.json

command -v redis-server >/dev/null || { echo "redis-server not found (apt-get install redis-server): cache cases skipped" >&2; exit 0; }
redis_port=$((port + 1))
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
redis_pid=$!
trap 'kill "$redis_pid" 2>/dev/null || true' EXIT
sleep 0.3
l2=(--cache --redis-url "redis://127.0.0.1:$redis_port" --cache-cost-aware false --cache-max-bytes 1)
run "mlp json, cache hit L1" 32 mlp "$mlp" mlp.json --cache
run "mlp json, cache hit L2 (redis)" 32 mlp "$mlp" mlp.json "${l2[@]}"
run "iris json, cache hit L1" 32 iris "$iris" iris.json --cache
run "iris json, cache hit L2 (redis)" 32 iris "$iris" iris.json "${l2[@]}"
shared=(--redis-url "redis://127.0.0.1:$redis_port" --redis-timeout-ms 50)
run "iris json, rate limits (redis)" 32 iris "$iris" iris.json "${shared[@]}" "${limits[@]}"
SCRIPT=bench/wrk/idempotent.lua run "iris json, Idempotency-Key (redis)" 32 iris "$iris" iris.json "${shared[@]}"
