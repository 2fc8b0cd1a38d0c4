#!/usr/bin/env bash
# Cost of monitoring on served throughput: the bundled iris model (served
# from the registry with its reference profile, so every request is
# observed: drift windows of 1000 rows, data contract, pending predictions
# for feedback) against the same server with --disable-monitoring,
# alternating rounds so that both see the same machine noise.
# Usage: bench/monitoring.sh [ROUNDS] [DURATION_S] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rounds="${1:-3}"
duration="${2:-8}"
connections="${3:-64}"
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
scripts/python-env.sh runtime >/dev/null
cargo build --release --locked -p ferroserve >/dev/null
bodies=target/bench-bodies
python3 bench/make_bodies.py "$bodies"
port=$((20000 + RANDOM % 20000))
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT

measure() { # label, extra serve flags... ; prints requests/s
    local label="$1"
    shift
    rm -rf "$data/registry"
    target/release/ferroserve serve --http "127.0.0.1:$port" --data-dir "$data/registry" \
        --log-level warn "$@" >/dev/null 2>&1 &
    local pid=$!
    for _ in $(seq 200); do curl -sf "127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
    BODY="$bodies/iris.json" wrk -t2 -c"$connections" -d2s -s bench/wrk/post.lua \
        "http://127.0.0.1:$port/v2/models/iris/infer" >/dev/null
    local out rps
    out=$(BODY="$bodies/iris.json" wrk -t2 -c"$connections" -d"${duration}s" --latency \
        -s bench/wrk/post.lua "http://127.0.0.1:$port/v2/models/iris/infer")
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    local p50 p99
    p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    local observed
    observed=$(curl -s "127.0.0.1:$port/metrics" |
        awk '/^ferroserve_monitor_(windows_total|dropped_total)/ {printf "%s ", $0}')
    echo "$label: $rps req/s, p50 $p50, p99 $p99 ${observed}" >&2
    kill "$pid"; wait "$pid" 2>/dev/null || true
    echo "$rps"
}

printf "| round | monitoring off | monitoring on | ratio |\n|---|---:|---:|---:|\n"
for round in $(seq "$rounds"); do
    off=$(measure "round $round, off" --disable-monitoring)
    on=$(measure "round $round, on")
    ratio=$(python3 -c "print(f'{$on / $off:.3f}')")
    printf "| %s | %.1fk | %.1fk | %s |\n" "$round" "$(python3 -c "print($off/1000)")" \
        "$(python3 -c "print($on/1000)")" "$ratio"
done
