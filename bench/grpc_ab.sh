#!/usr/bin/env bash
# gRPC against HTTP: one ferroserve release binary serving the MLP
# (testdata/models/mlp.onnx), driven by `ferroserve bench` with single-row
# requests and 64 in flight over gRPC unary, gRPC streams, HTTP binary and
# HTTP JSON, in that order, ROUNDS times (interleaved, so a machine that
# slows down weighs on every protocol alike), each RUNS runs of DURATION
# after a 2 s warm-up; then the medians of every protocol's runs, their
# ratios to HTTP binary, and `bench compare` of gRPC unary with HTTP binary
# per round. Usage: bench/grpc_ab.sh BINARY OUT_DIR [ROUNDS] [RUNS] [DURATION]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
binary="$1" out="$2" rounds="${3:-3}" runs="${4:-3}" duration="${5:-5s}"
mkdir -p "$out"
port=$((20000 + RANDOM % 20000))
grpc_port=$((port + 1))
url="http://127.0.0.1:$port"
data="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$data"' EXIT
"$binary" serve --http "127.0.0.1:$port" --grpc "127.0.0.1:$grpc_port" --data-dir "$data" \
    --no-example --model mlp=testdata/models/mlp.onnx --log-level warn >/dev/null 2>&1 &
pid=$!
for _ in $(seq 300); do curl -sf "$url/readyz" >/dev/null && break; sleep 0.1; done
export FERROSERVE_API_KEY="$(cat "$data/admin.key")"

protocols=(grpc grpc-stream http-binary http-json)
for round in $(seq "$rounds"); do
    for protocol in "${protocols[@]}"; do
        "$binary" bench --url "$url" --grpc-url "http://127.0.0.1:$grpc_port" --model mlp \
            --protocol "$protocol" -c 64 --duration "$duration" --warmup 2s --runs "$runs" \
            --quiet -o "$out/$protocol-$round.json" >/dev/null
    done
done

python3 - "$out" "$rounds" "${protocols[@]}" <<'EOF'
import json, statistics, sys
out, rounds, protocols = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
medians = {}
for protocol in protocols:
    runs = []
    for round in range(1, rounds + 1):
        with open(f"{out}/{protocol}-{round}.json") as f:
            runs += json.load(f)["runs"]
    medians[protocol] = {
        "rps": statistics.median(r["throughput_rps"] for r in runs),
        "p50": statistics.median(r["latency_ms"]["p50"] for r in runs),
        "p99": statistics.median(r["latency_ms"]["p99"] for r in runs),
        "runs": len(runs),
        "errors": sum(sum(r["errors"].values()) for r in runs),
    }
base = medians["http-binary"]
print("| protocol | runs | requests/s (median) | p50 ms | p99 ms | throughput vs HTTP binary | errors |")
print("|---|---:|---:|---:|---:|---:|---:|")
for protocol, m in medians.items():
    print(f"| {protocol} | {m['runs']} | {m['rps']:.0f} | {m['p50']:.3f} | {m['p99']:.3f} "
          f"| {m['rps'] / base['rps']:.2f} | {m['errors']} |")
EOF
for round in $(seq "$rounds"); do
    echo "== round $round: HTTP binary → gRPC unary"
    "$binary" bench compare "$out/http-binary-$round.json" "$out/grpc-$round.json"
done
