#!/usr/bin/env bash
# What one replica asks of the shared PostgreSQL and Redis: a ferroserve
# release binary on a PostgreSQL registry of its own (initdb in a temporary
# folder, pg_stat_statements loaded) and a redis-server of its own, serving
# the bundled iris. It counts PostgreSQL statements (pg_stat_statements)
# and Redis commands (INFO commandstats) around
#   - 20 s idle (what a replica costs with no traffic: polling, heartbeats,
#     the leader lock, the change listener),
#   - REQUESTS inference requests (KServe v2 JSON) in each setting: plain;
#     result cache with L2 in Redis (1000 distinct inputs, cost-aware off);
#     a per-client rate limit in Redis; one idempotency key sent again and
#     again (a retry storm: every request after the first is a replay),
# and prints each per request (per second when idle), with the keys of
# predictions handed over for feedback through any replica (rows inserted
# into monitor_predictions). Redis calls get a
# 1 s timeout, so that none falls back to the replica's own state on this
# busy machine (the fallback is another condition, measured elsewhere).
# Usage: bench/shared_costs.sh BINARY [REQUESTS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
binary="$1" requests="${2:-20000}"
work="$(mktemp -d)"
pg_bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
pg_port=$((20000 + RANDOM % 20000)) redis_port=$((pg_port + 1)) http_port=$((pg_port + 2))
as_postgres=()
if [ "$(id -u)" = 0 ]; then
    as_postgres=(runuser -u postgres --)
    chown postgres: "$work"
fi
cleanup() {
    kill "${server:-}" 2>/dev/null || true
    redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
    "${as_postgres[@]}" "$pg_bin/pg_ctl" -D "$work/pg" stop -m immediate >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
"${as_postgres[@]}" "$pg_bin/initdb" -D "$work/pg" -U postgres -A trust --no-sync >/dev/null
"${as_postgres[@]}" "$pg_bin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w -o \
    "-p $pg_port -k $work -c listen_addresses=127.0.0.1 -c fsync=off -c shared_preload_libraries=pg_stat_statements" \
    start >/dev/null
psql() { command psql -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -Atqc "$1"; }
psql "CREATE EXTENSION pg_stat_statements" >/dev/null
redis-server --port "$redis_port" --save '' --appendonly no --daemonize yes >/dev/null

handed_over() { psql "SELECT coalesce(sum(rows), 0) FROM pg_stat_statements WHERE query ILIKE 'INSERT INTO monitor_predictions%'"; }
statements() { psql "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query NOT ILIKE '%pg_stat_statements%'"; }
# Round trips: the commands a replica sends (GET, SET, EVAL, EVALSHA,
# PTTL, SCRIPT LOAD), not those its scripts run inside Redis (TIME, HMGET,
# HSET, PEXPIRE of the rate-limit script), which Redis counts too.
redis_calls() {
    redis-cli -p "$redis_port" info commandstats \
        | awk -F'[:=,]' '$1 ~ /^cmdstat_(get|set|eval|evalsha|pttl|script\|load)$/ { sum += $3 } END { print sum + 0 }'
}

start() { # extra flags...
    mkdir -p "$work/data" "$work/artifacts"
    "$binary" serve --http "127.0.0.1:$http_port" --grpc off --data-dir "$work/data" \
        --registry-url "postgres://postgres@127.0.0.1:$pg_port/postgres" \
        --artifact-store "$work/artifacts" --redis-url "redis://127.0.0.1:$redis_port" \
        --anonymous-role predictor --redis-timeout-ms 1000 --log-level warn "$@" >/dev/null 2>&1 &
    server=$!
    for _ in $(seq 600); do curl -sf "http://127.0.0.1:$http_port/readyz" >/dev/null && break; sleep 0.1; done
}
stop() { kill "$server"; wait "$server" 2>/dev/null || true; }

measure() { # name bench-flags...
    local name="$1"; shift
    "$binary" bench --url "http://127.0.0.1:$http_port" --model iris --protocol http-json \
        -c 16 --requests 500 --warmup 0s --anonymous --quiet "$@" >/dev/null
    local pg0 r0 pg1 r1 h0 h1
    pg0="$(statements)" r0="$(redis_calls)" h0="$(handed_over)"
    "$binary" bench --url "http://127.0.0.1:$http_port" --model iris --protocol http-json \
        -c 16 --requests "$requests" --warmup 0s --anonymous --quiet "$@" >/dev/null
    pg1="$(statements)" r1="$(redis_calls)"
    sleep 2 # the last hand-over of predictions
    h1="$(handed_over)"
    python3 -c "import sys; n=int(sys.argv[1]); d=lambda a, b: (int(b)-int(a))/n; print(f'| {sys.argv[2]} | {n} | {d(*sys.argv[3:5]):.3f} | {d(*sys.argv[5:7]):.3f} | {d(*sys.argv[7:9]):.3f} |')" \
        "$requests" "$name" "$pg0" "$pg1" "$r0" "$r1" "$h0" "$h1"
}

start
sleep 5
pg0="$(statements)" r0="$(redis_calls)"
sleep 20
pg1="$(statements)" r1="$(redis_calls)"
echo "idle replica: $((pg1 - pg0)) PostgreSQL statements in 20 s, $((r1 - r0)) Redis round trips"
echo
echo "| setting | requests | PostgreSQL statements per request | Redis round trips per request | prediction keys handed over per request |"
echo "|---|---:|---:|---:|---:|"
measure "plain (no cache, no limit)"
stop

start --cache --cache-cost-aware false
measure "result cache, 1000 distinct inputs" --keys 1000
measure "result cache, 1 input (all hits)" --keys 1
stop

start --client-rate-limit 1000000
measure "per-client rate limit"
echo
echo "rate-limit checks by store (a Redis call that misses --redis-timeout-ms falls back to the replica's own bucket):"
curl -sf -H "authorization: Bearer $(cat "$work/data/admin.key")" "http://127.0.0.1:$http_port/metrics" \
    | grep '^ferroserve_rate_limit_checks_total' || true
echo "Redis commands so far, by command (those a script runs included):"
redis-cli -p "$redis_port" info commandstats | grep -E '^cmdstat_' | cut -d, -f1
echo
stop

start
measure "one Idempotency-Key on every request (replays)" --header "Idempotency-Key: retry-1"
stop
