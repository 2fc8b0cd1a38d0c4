# shellcheck shell=bash
# Shared by scripts/container-image.sh and scripts/container-test.sh (sourced,
# not run).

# Prints a message and stops.
die() {
    echo "error: $*" >&2
    exit 1
}

# podman must be there: under CI its absence is a failure, elsewhere the
# calling script is skipped (exit 0).
require_podman() {
    local what="$1"
    if command -v podman >/dev/null 2>&1; then
        return 0
    fi
    if [[ -n "${CI:-}" ]]; then
        die "podman not found, needed for $what (scripts/system-deps.sh installs it, as root)"
    fi
    echo "skipped: $what needs podman, which is not installed (scripts/system-deps.sh installs it, as root)" >&2
    exit 0
}

# Runs `podman run --rm IMAGE true` once. Where podman's defaults cannot start
# a container on this host, points podman (CONTAINERS_CONF, for this script and
# its children) at a configuration that can, and tries again:
# - podman asks for nofile and nproc limits (1048576 and more) above the
#   host's hard limits, which only CAP_SYS_RESOURCE may raise
#   ("setrlimit `RLIMIT_NOFILE`: Operation not permitted");
# - crun refuses hosts whose cgroup v1 hierarchy has controllers left on the
#   cgroup v2 one ("cgroups in hybrid mode not supported"): runc runs there.
# A CONTAINERS_CONF already set is left alone.
podman_ready() {
    local image="$1" out
    if out="$(podman run --rm --network none --entrypoint /bin/true "$image" 2>&1)"; then
        return 0
    fi
    if [[ -n "${CONTAINERS_CONF:-}" ]]; then
        die "podman cannot run a container (CONTAINERS_CONF=$CONTAINERS_CONF): $out"
    fi
    local nofile nproc pid_max runtime="" conf first="$out"
    nofile="$(ulimit -Hn)"
    nproc="$(ulimit -Hu)"
    pid_max="$(cat /proc/sys/kernel/pid_max 2>/dev/null || echo 32768)"
    [[ "$nofile" == unlimited ]] && nofile=1048576
    [[ "$nproc" == unlimited || "$nproc" -gt "$pid_max" ]] && nproc="$pid_max"
    conf="$(mktemp -d)/containers.conf"
    export CONTAINERS_CONF="$conf"
    # The second error shows only once the first is out of the way.
    local _
    for _ in 1 2; do
        if [[ "$out" == *"hybrid mode not supported"* ]]; then
            command -v runc >/dev/null 2>&1 \
                || die "crun cannot run containers on this host (cgroup v1 with controllers on cgroup v2) and runc is not installed (apt-get install runc): $out"
            runtime=runc
        fi
        {
            echo "[containers]"
            echo "default_ulimits = [\"nofile=$nofile:$nofile\", \"nproc=$nproc:$nproc\"]"
            if [[ -n "$runtime" ]]; then
                echo "[engine]"
                echo "runtime = \"$runtime\""
            fi
        } >"$conf"
        if out="$(podman run --rm --network none --entrypoint /bin/true "$image" 2>&1)"; then
            echo "note: podman's defaults fail here ($(printf '%s' "$first" | tail -n1)); using nofile=$nofile nproc=$nproc${runtime:+ runtime=$runtime} ($CONTAINERS_CONF)" >&2
            return 0
        fi
    done
    die "podman cannot run a container, even with $CONTAINERS_CONF: $out"
}
