#!/usr/bin/env bash
# Server CPU time per request, before vs after: a measure that a shared,
# noisy machine disturbs far less than throughput. For each case, each
# binary serves the same fixed number of requests (after a warm-up) twice,
# in the order before, after, after, before; prints the server's user+system
# CPU microseconds per request of each run.
# Usage: bench/cpu_ab.sh BEFORE_BIN AFTER_BIN [REQUESTS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
before="$1" after="$2" requests="${3:-40000}"
client="$before"
port=$((20000 + RANDOM % 20000))
ticks=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

measure() { # binary model file protocol
    local binary="$1" model="$2" file="$3" protocol="$4" data pid start end
    data="$(mktemp -d)"
    "$binary" serve --http "127.0.0.1:$port" --data-dir "$data" --no-example \
        --model "$model=$file" --log-level warn >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 300); do curl -sf "127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
    "$client" bench --url "http://127.0.0.1:$port" --model "$model" --protocol "$protocol" \
        -c 64 --requests 5000 >/dev/null
    start=$(cpu_ticks "$pid")
    "$client" bench --url "http://127.0.0.1:$port" --model "$model" --protocol "$protocol" \
        -c 64 --requests "$requests" >/dev/null
    end=$(cpu_ticks "$pid")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -rf "$data"
    echo "scale=1; ($end - $start) * 1000000 / $ticks / $requests" | bc
}

for spec in "mlp testdata/models/mlp.onnx http-json" "mlp testdata/models/mlp.onnx http-binary" \
            "iris examples/iris/model.onnx http-json"; do
    read -r model file protocol <<<"$spec"
    b1=$(measure "$before" "$model" "$file" "$protocol")
    a1=$(measure "$after" "$model" "$file" "$protocol")
    a2=$(measure "$after" "$model" "$file" "$protocol")
    b2=$(measure "$before" "$model" "$file" "$protocol")
    echo "$model $protocol: server CPU µs/request before $b1 $b2, after $a1 $a2"
done
