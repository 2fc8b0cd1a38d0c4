#!/usr/bin/env bash
# What authentication costs: one ferroserve release binary serving the
# bundled iris, driven by `ferroserve bench` (KServe v2 JSON, 64
# connections) alternately without credentials and with an API key on every
# request (a predictor key, verified per request: hash, lookup, role and
# model check), in the order anonymous, key, key, anonymous, RUNS runs of
# DURATION each after a 2 s warm-up; then `bench compare` gives the verdict
# of each pair. Usage: bench/auth_ab.sh BINARY OUT_DIR [RUNS] [DURATION]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
binary="$1" out="$2" runs="${3:-3}" duration="${4:-5s}"
mkdir -p "$out"
port=$((20000 + RANDOM % 20000))
url="http://127.0.0.1:$port"
data="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$data"' EXIT
"$binary" serve --http "127.0.0.1:$port" --data-dir "$data" --no-example \
    --model iris=examples/iris/model.onnx --log-level warn >/dev/null 2>&1 &
pid=$!
for _ in $(seq 300); do curl -sf "$url/readyz" >/dev/null && break; sleep 0.1; done
token="$(FERROSERVE_API_KEY="$(cat "$data/admin.key")" "$binary" keys create --url "$url" \
    --name bench --role predictor --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"

run() { # side
    local side="$1" who=(--anonymous)
    [[ "$side" == key-* ]] && who=()
    FERROSERVE_API_KEY="$token" "$binary" bench --url "$url" --model iris --protocol http-json \
        -c 64 --duration "$duration" --warmup 2s --runs "$runs" "${who[@]}" \
        -o "$out/iris-$side.json" >/dev/null
}

run anonymous-1
run key-1
run key-2
run anonymous-2
for pair in 1 2; do
    echo "== iris JSON, pair $pair: anonymous → key on every request"
    "$binary" bench compare "$out/iris-anonymous-$pair.json" "$out/iris-key-$pair.json"
done
