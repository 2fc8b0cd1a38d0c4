#!/usr/bin/env bash
# Online latency with and without a concurrent batch job, measured with
# `ferroserve bench` in open loop (latency from the intended send time):
# the bundled iris model served from the registry, single-row KServe v2
# JSON at RATE requests/s, ROUNDS rounds of DURATION_S each, first alone,
# then while a batch job scores a CSV of JOB_ROWS rows through the same
# batcher; then `ferroserve bench compare` of the two. Prints the job's own
# rate alone and under the online load.
# Usage: bench/jobs.sh [RATE] [DURATION_S] [ROUNDS] [JOB_ROWS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rate="${1:-2000}"
duration="${2:-10}"
rounds="${3:-3}"
rows="${4:-4000000}"
scripts/python-env.sh runtime >/dev/null
cargo build --release --locked -p ferroserve >/dev/null
bin=target/release/ferroserve
out=target/bench-jobs
rm -rf "$out" && mkdir -p "$out"
python3 - "$rows" "$out/input.csv" <<'PY'
import sys
rows, path = int(sys.argv[1]), sys.argv[2]
iris = open("examples/iris/iris.csv").read().splitlines()
with open(path, "w") as f:
    f.write(iris[0] + "\n")
    body = iris[1:]
    for i in range(rows):
        f.write(body[i % len(body)] + "\n")
PY
port=$((20000 + RANDOM % 20000))
url="http://127.0.0.1:$port"
"$bin" serve --http "127.0.0.1:$port" --data-dir "$out/data" --log-level warn >/dev/null 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 200); do curl -sf "$url/readyz" >/dev/null && break; sleep 0.1; done

submit() {
    curl -sf -X POST "$url/api/v1/jobs?model=iris&outputs=label" \
        -H 'content-type: text/csv' --data-binary @"$out/input.csv" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
}
job_field() { # id, field
    curl -sf "$url/api/v1/jobs/$1" | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"
}
wait_job() { # id
    while [[ "$(job_field "$1" state)" != succeeded ]]; do sleep 0.5; done
}
online() { # output file
    "$bin" bench --url "$url" --model iris --rate "$rate" --warmup 2s \
        --duration "${duration}s" --runs "$rounds" --quiet -o "$1"
}

echo "== job alone ($rows rows)"
start=$(date +%s.%N)
id=$(submit)
wait_job "$id"
echo "rows/s: $(python3 -c "print(round($rows / ($(date +%s.%N) - $start)))")"

echo "== online alone ($rate requests/s)"
online "$out/alone.json"

echo "== online with a batch job running"
id=$(submit)
while [[ "$(job_field "$id" state)" != running ]]; do sleep 0.1; done
start=$(date +%s.%N)
online "$out/with-job.json"
state=$(job_field "$id" state)
done_rows=$(job_field "$id" rows_done)
echo "job during the online run: $done_rows rows in $(python3 -c "print(round($(date +%s.%N) - $start, 1))") s, state $state"
[[ "$state" == running ]] || echo "warning: the job ended before the online run; raise JOB_ROWS" >&2
wait_job "$id"

echo "== compare (A: alone, B: with the job)"
"$bin" bench compare "$out/alone.json" "$out/with-job.json"
