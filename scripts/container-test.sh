#!/usr/bin/env bash
# Checks a ferroserve container image the way deploy/kubernetes runs it:
# read-only root filesystem (tmpfs on /data and /tmp), every capability
# dropped, no privilege escalation. Then:
#   - the image runs as uid and gid 10001, and declares a HEALTHCHECK;
#   - GET /livez answers 200 (time from `podman run` printed);
#   - `podman healthcheck run` says healthy;
#   - POST /v2/models/iris/infer on the bundled iris example answers
#     label 0 (setosa) for 5.1,3.5,1.4,0.2, and ONNX Runtime (the image's
#     /usr/local/lib/libonnxruntime.so) serves it, not tract;
#   - nothing outside /data and /tmp can be written;
#   - the CA bundle is there (https S3 endpoints, JWKS URLs);
#   - /bin/sh, grep and sleep are there, and the init container's admin
#     token check (deployment.yaml) runs;
#   - SIGTERM (`podman stop`) stops the server cleanly (exit status 0).
#
# Usage: scripts/container-test.sh IMAGE   (e.g. localhost/ferroserve:dev)
#
# Prints one "ok: ..." line per check passed and "PASS: IMAGE (SIZE)" at the
# end. The server's port 8080 is published on a free loopback port (none
# fixed). Exits non-zero, with the reason and the container's log, on any
# failure. Without podman: "skipped" (exit 0), or a failure when CI is set.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/container-lib.sh
source "$repo_root/scripts/container-lib.sh"

[[ $# -eq 1 ]] || { echo "usage: $0 IMAGE" >&2; exit 2; }
image="$1"

require_podman "the container image test"
command -v curl >/dev/null 2>&1 || die "curl not found (apt-get install curl)"
podman image exists "$image" || die "image $image not found (scripts/container-image.sh builds one)"
podman_ready "$image"

name="ferroserve-test-$$"
failed=""
cleanup() {
    if [[ -n "$failed" ]] && podman container exists "$name" 2>/dev/null; then
        echo "--- container log (last 40 lines)" >&2
        podman logs --tail 40 "$name" >&2 || true
    fi
    podman rm -f -t 0 "$name" >/dev/null 2>&1 || true
}
trap cleanup EXIT
fail() {
    failed=1
    echo "FAIL: $*" >&2
    exit 1
}
ok() { echo "ok: $*"; }

# The image's own settings.
user="$(podman image inspect --format '{{.Config.User}}' "$image")"
[[ "$user" == 10001:10001 || "$user" == 10001 ]] || fail "image user is '$user', not 10001:10001"
health="$(podman image inspect --format '{{if .Config.Healthcheck}}{{.Config.Healthcheck.Test}}{{end}}' "$image" 2>/dev/null || true)"
[[ "$health" == *livez* ]] \
    || fail "image declares no HEALTHCHECK on /livez (podman/buildah drop it unless built with --format docker)"
ok "image user $user, HEALTHCHECK declared"

# podman runs health checks periodically through systemd timers; without
# systemd it says so on every run and stop (filtered out below) and runs
# them on demand only (`podman healthcheck run`).
quiet() { grep -v 'unable to get systemd connection' >&2 || true; }

# A free port on the loopback interface, below the kernel's ephemeral range
# (where servers started on port 0, as the other tests' are, get theirs), so
# that none of them takes it between this check and `podman run`; another
# one is tried if it is taken all the same.
free_port() {
    local low high candidate
    read -r low high </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || low=32768
    if ((low > 11000)); then
        high=$((low - 1))
    else
        high=60999
    fi
    for candidate in $(shuf -i "10000-$high" -n 20); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

for attempt in 1 2 3; do
    port="$(free_port)" || fail "no free port found"
    start=$(date +%s%N)
    if out="$(podman run -d --name "$name" \
        --read-only --tmpfs /tmp:rw,size=256m,mode=1777 \
        --tmpfs /data:rw,size=512m,mode=0700,U \
        --cap-drop ALL --security-opt no-new-privileges \
        -e FERROSERVE_GRPC=off \
        -p "127.0.0.1:$port:8080" \
        "$image" 2>&1 >/dev/null)"; then
        [[ -z "$out" ]] || quiet <<<"$out"
        break
    fi
    podman rm -f -t 0 "$name" >/dev/null 2>&1 || true
    if [[ "$out" != *"address already in use"* ]] || ((attempt == 3)); then
        [[ -z "$out" ]] || quiet <<<"$out"
        fail "podman run failed"
    fi
done
base="http://127.0.0.1:$port"

deadline=$((SECONDS + ${LIVEZ_TIMEOUT_S:-60}))
until curl -fsS -o /dev/null --max-time 2 "$base/livez" 2>/dev/null; do
    [[ "$(podman inspect --format '{{.State.Running}}' "$name")" == true ]] \
        || fail "the container stopped before /livez answered"
    ((SECONDS < deadline)) || fail "/livez did not answer 200 within ${LIVEZ_TIMEOUT_S:-60} s"
    sleep 0.05
done
end=$(date +%s%N)
ok "/livez answers 200 on 127.0.0.1:$port (published 8080), $(( (end - start) / 1000000 )) ms after podman run"

ids="$(podman exec "$name" sh -c 'echo "$(id -u):$(id -g)"')"
[[ "$ids" == 10001:10001 ]] || fail "server runs as $ids, not 10001:10001"
pid1="$(podman exec "$name" sh -c 'awk "/^Uid:/ {print \$2}" /proc/1/status')"
[[ "$pid1" == 10001 ]] || fail "the server process runs as uid $pid1"
ok "server runs as uid:gid $ids"

hc="$(podman healthcheck run "$name" 2>&1)" || fail "podman healthcheck run: ${hc:-unhealthy}"
ok "podman healthcheck run: ${hc:-healthy}"
# The same check against a port nothing listens on must fail.
check="$(podman image inspect --format '{{index .Config.Healthcheck.Test 3}}' "$image")"
if podman exec -e FERROSERVE_HTTP=0.0.0.0:1 "$name" /bin/bash -c "$check" 2>/dev/null; then
    fail "the health check passes with no server on its port"
fi
ok "health check fails when nothing answers on its port"

answer="$(curl -fsS --max-time 10 -X POST -H 'content-type: application/json' \
    "$base/v2/models/iris/infer" \
    -d '{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}')" \
    || fail "iris inference request failed"
[[ "$answer" == *'"name":"label"'*'"data":[0]'* ]] || fail "unexpected iris answer: $answer"
ok "iris inference: $answer"
# Served by ONNX Runtime, from the library in the image (not tract, the
# fallback when the library is missing or does not load).
meta="$(curl -fsS --max-time 10 "$base/v2/models/iris")" || fail "GET /v2/models/iris failed"
[[ "$meta" == *'"platform":"onnxruntime_onnx"'* ]] \
    || fail "iris is not served by ONNX Runtime (is /usr/local/lib/libonnxruntime.so in the image?): $meta"
ok "iris served by ONNX Runtime (platform onnxruntime_onnx)"

if podman exec "$name" sh -c 'touch /usr/local/bin/ferroserve-probe' 2>/dev/null; then
    fail "the root filesystem is writable"
fi
podman exec "$name" sh -c 'touch /data/probe /tmp/probe && rm /data/probe /tmp/probe' \
    || fail "/data or /tmp is not writable by uid 10001"
podman exec "$name" sh -c 'ls /data' | grep -q . || fail "the server wrote nothing in /data"
ok "root filesystem read-only; /data and /tmp writable; server state in /data"

podman exec "$name" sh -c 'grep -c "BEGIN CERTIFICATE" /etc/ssl/certs/ca-certificates.crt' >/dev/null \
    || fail "no CA bundle at /etc/ssl/certs/ca-certificates.crt (https S3 endpoints would fail)"
ok "CA bundle present"

# deployment.yaml's init container: /bin/sh and grep, on a read-only root.
token="fsk_$(printf '%064d' 0)"
podman run --rm --no-healthcheck --read-only --cap-drop ALL --network none --tmpfs /data:rw,mode=0700,U \
    -e "TOKEN=$token" --entrypoint /bin/sh "$image" -c \
    'printf "%s" "$TOKEN" | grep -Eqx "fsk_[0-9a-fA-F]{64}" && umask 077 && printf "%s\n" "$TOKEN" > /data/admin.key && command -v sleep >/dev/null' \
    || fail "the init container's token check (sh, grep, sleep) does not run in the image"
ok "init container check (sh, grep, sleep) runs"

stop_start=$(date +%s%N)
podman stop -t 40 "$name" 2> >(quiet) >/dev/null || fail "podman stop failed"
stop_end=$(date +%s%N)
code="$(podman inspect --format '{{.State.ExitCode}}' "$name")"
[[ "$code" == 0 ]] || fail "the server exited with status $code on SIGTERM"
ok "SIGTERM: stopped with status 0 in $(( (stop_end - stop_start) / 1000000 )) ms"

size="$(podman image inspect --format '{{.Size}}' "$image")"
echo "PASS: $image ($(awk -v b="$size" 'BEGIN { printf "%.1f MB", b / 1e6 }'))"
