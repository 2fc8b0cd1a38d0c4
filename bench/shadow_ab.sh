#!/usr/bin/env bash
# What a failing shadow costs the primary: one ferroserve release binary
# serving the bundled iris (version 1, Production) with a second iris
# version loaded that fails every request (fault injection, error rate 1),
# driven by `ferroserve bench` (KServe v2 JSON, 64 connections) alternately
# without a shadow and with version 2 shadowing PERCENT % of the requests, in
# the order none, shadow, shadow, none, RUNS runs of DURATION each after a
# 2 s warm-up; then `bench compare` gives the verdict of each pair and the
# shadow report shows what the shadow did.
# Usage: bench/shadow_ab.sh BINARY OUT_DIR [RUNS] [DURATION] [PERCENT]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
binary="$1" out="$2" runs="${3:-3}" duration="${4:-5s}" percent="${5:-100}"
mkdir -p "$out"
port=$((20000 + RANDOM % 20000))
url="http://127.0.0.1:$port"
data="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$data"' EXIT
"$binary" serve --http "127.0.0.1:$port" --data-dir "$data" --enable-fault-injection \
    --log-level warn >/dev/null 2>&1 &
pid=$!
for _ in $(seq 300); do curl -sf "$url/readyz" >/dev/null && break; sleep 0.1; done
export FERROSERVE_API_KEY
FERROSERVE_API_KEY="$(cat "$data/admin.key")"
"$binary" models --url "$url" register examples/iris/model.onnx --name iris >/dev/null
api() { # METHOD PATH [BODY]
    curl -sf -X "$1" -H "authorization: Bearer $FERROSERVE_API_KEY" \
        -H 'content-type: application/json' "$url$2" ${3:+-d "$3"} >/dev/null
}
plain='{"serve": "production", "version_policy": {"specific": [2]}}'
shadowed='{"serve": "production", "version_policy": {"specific": [2]},
  "traffic": {"shadow": {"version": 2, "percent": '"$percent"'}}}'
api PUT /api/v1/models/iris/serving-config "$plain"
api PUT /api/v1/models/iris/versions/2/faults '{"error_rate": 1.0}'

run() { # side
    local side="$1" config="$plain"
    [[ "$side" == shadow-* ]] && config="$shadowed"
    api PUT /api/v1/models/iris/serving-config "$config"
    "$binary" bench --url "$url" --model iris --protocol http-json \
        -c 64 --duration "$duration" --warmup 2s --runs "$runs" \
        -o "$out/iris-$side.json" >/dev/null
}

run none-1
run shadow-1
run shadow-2
curl -sf -H "authorization: Bearer $FERROSERVE_API_KEY" "$url/api/v1/models/iris/shadow" \
    >"$out/shadow-report.json"
run none-2
for pair in 1 2; do
    echo "== iris JSON, pair $pair: no shadow → shadow of $percent % failing every copy"
    "$binary" bench compare "$out/iris-none-$pair.json" "$out/iris-shadow-$pair.json"
done
echo "== the shadow's own figures after the shadow runs"
cat "$out/shadow-report.json"
echo
