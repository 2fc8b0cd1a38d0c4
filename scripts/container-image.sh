#!/usr/bin/env bash
# Builds the ferroserve container image with podman.
#
# Usage: scripts/container-image.sh [--tag TAG] [BINARY]
#
#   BINARY given: only the runtime stage is built (`--target runtime`), from
#     that ferroserve binary (its debug sections dropped, as the Dockerfile's
#     build stage does) and the ONNX Runtime library of the project's .venv
#     (or FERROSERVE_ORT_LIBRARY): no compiler, no Python in the build.
#   no BINARY: the Dockerfile's full multi-stage build (cargo in a
#     container: 20+ minutes on 2 cores).
#
# Base images come from RUST_IMAGE, PYTHON_IMAGE and RUNTIME_IMAGE (the
# Dockerfile's defaults when unset: Docker Hub). When RUNTIME_IMAGE is
# unset and Docker Hub cannot be reached, the runtime base is a local
# localhost/debian:bookworm-slim, made once with debootstrap from the Debian
# mirror (root, and the debootstrap package, needed).
#
# Prints the image's size and the build's duration; the image is tagged TAG
# (default localhost/ferroserve:dev). Check it with
# scripts/container-test.sh TAG.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/container-lib.sh
source "$repo_root/scripts/container-lib.sh"

usage() {
    echo "usage: $0 [--tag TAG] [BINARY]" >&2
    exit 2
}

tag=localhost/ferroserve:dev
binary=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --tag) [[ $# -ge 2 ]] || usage; tag="$2"; shift 2 ;;
        -h|--help) usage ;;
        -*) usage ;;
        *) [[ -z "$binary" ]] || usage; binary="$1"; shift ;;
    esac
done

require_podman "building the container image"

hub_runtime=docker.io/library/debian:bookworm-slim
local_runtime=localhost/debian:bookworm-slim

# Makes localhost/debian:bookworm-slim: a minbase debootstrap of bookworm,
# trimmed as the official slim image is (no docs, man pages, locales, apt
# lists).
make_local_base() {
    [[ "$(id -u)" == 0 ]] || die "no registry reachable for $hub_runtime, and debootstrap needs root to make $local_runtime (or set RUNTIME_IMAGE)"
    command -v debootstrap >/dev/null 2>&1 \
        || die "no registry reachable for $hub_runtime and debootstrap is not installed (apt-get install debootstrap), or set RUNTIME_IMAGE"
    local rootfs mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
    rootfs="$(mktemp -d)"
    echo "making $local_runtime with debootstrap from $mirror (about a minute)" >&2
    if ! debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1; then
        tail -n 20 "$rootfs.log" >&2
        die "debootstrap failed (log: $rootfs.log)"
    fi
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
        "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
        "$rootfs"/usr/share/locale/* "$rootfs"/var/log/* "$rootfs"/debootstrap
    tar -C "$rootfs" --numeric-owner -c . \
        | podman import --change 'CMD ["bash"]' - "$local_runtime" >/dev/null
    rm -rf "$rootfs" "$rootfs.log"
}

if [[ -z "${RUNTIME_IMAGE:-}" ]]; then
    if podman image exists "$hub_runtime" \
        || timeout 120 podman pull -q "$hub_runtime" >/dev/null 2>&1; then
        RUNTIME_IMAGE="$hub_runtime"
    else
        echo "note: $hub_runtime cannot be pulled; using $local_runtime" >&2
        podman image exists "$local_runtime" || make_local_base
        RUNTIME_IMAGE="$local_runtime"
    fi
fi
podman image exists "$RUNTIME_IMAGE" || timeout 300 podman pull -q "$RUNTIME_IMAGE" >/dev/null \
    || die "cannot pull $RUNTIME_IMAGE"
podman_ready "$RUNTIME_IMAGE"

args=(build --format docker --file "$repo_root/Dockerfile" --tag "$tag"
    --build-arg "RUNTIME_IMAGE=$RUNTIME_IMAGE")
[[ -n "${RUST_IMAGE:-}" ]] && args+=(--build-arg "RUST_IMAGE=$RUST_IMAGE")
[[ -n "${PYTHON_IMAGE:-}" ]] && args+=(--build-arg "PYTHON_IMAGE=$PYTHON_IMAGE")

artifacts=""
cleanup() { [[ -z "$artifacts" ]] || rm -rf "$artifacts"; }
trap cleanup EXIT

if [[ -n "$binary" ]]; then
    [[ -x "$binary" ]] || die "$binary is not an executable file"
    ort="${FERROSERVE_ORT_LIBRARY:-}"
    if [[ -z "$ort" ]]; then
        ort="$(find "$repo_root/.venv" -path '*/onnxruntime/capi/libonnxruntime.so*' -type f 2>/dev/null | head -n1)"
        if [[ -z "$ort" ]]; then
            "$repo_root/scripts/python-env.sh" runtime >&2
            ort="$(find "$repo_root/.venv" -path '*/onnxruntime/capi/libonnxruntime.so*' -type f | head -n1)"
        fi
    fi
    [[ -f "$ort" ]] || die "ONNX Runtime library not found (set FERROSERVE_ORT_LIBRARY)"
    artifacts="$(mktemp -d)"
    if command -v objcopy >/dev/null 2>&1; then
        objcopy --strip-debug "$binary" "$artifacts/ferroserve"
    else
        echo "note: objcopy not found (binutils): the binary goes in with its debug sections" >&2
        cp "$binary" "$artifacts/ferroserve"
    fi
    cp "$ort" "$artifacts/libonnxruntime.so"
    args+=(--target runtime --build-context "artifacts=$artifacts")
    echo "building $tag: runtime stage from $binary and $ort on $RUNTIME_IMAGE" >&2
else
    echo "building $tag: full multi-stage build (compiles ferroserve; long)" >&2
fi

start=$(date +%s.%N)
podman "${args[@]}" "$repo_root"
end=$(date +%s.%N)
size="$(podman image inspect --format '{{.Size}}' "$tag")"
awk -v s="$start" -v e="$end" -v b="$size" -v t="$tag" 'BEGIN {
    printf "built %s in %.1f s: %.1f MB (%d bytes)\n", t, e - s, b / 1e6, b
}'
