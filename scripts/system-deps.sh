#!/usr/bin/env bash
# Installs the system packages the test suite needs beside the Rust
# toolchain and .venv, when they are missing, with apt-get (Debian/Ubuntu):
# - for the fleet end-to-end test (crates/ferroserve/tests/fleet_e2e.rs:
#   three replicas behind a real load balancer): haproxy;
# - for the container image test (crates/ferroserve/tests/container.rs:
#   scripts/container-image.sh and scripts/container-test.sh):
#   podman, runc (crun refuses hosts with hybrid cgroups), iptables (podman's
#   bridge network and `-p` port forwarding), debootstrap and
#   debian-archive-keyring (the local base image when Docker Hub cannot be
#   reached), curl (the test's requests) and binutils (objcopy drops a
#   binary's debug sections); uidmap and slirp4netns too when not root
#   (rootless podman);
# - for the browser tests of the web UI (crates/ferroserve/tests/web_ui.rs,
#   Playwright from .venv): chromium.
#
# Usage: scripts/system-deps.sh
#
# Prints nothing and exits 0 when everything is there (a few `command -v`s).
# As root, installs what is missing with `apt-get install -y
# --no-install-recommends` (after `apt-get update` only when the install
# fails without it). Not root, or without apt-get: prints what to install and
# exits 1.
set -euo pipefail

missing=()
# need COMMAND PACKAGE: PACKAGE when COMMAND is not found.
need() {
    command -v "$1" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$1" >/dev/null 2>&1 \
        || missing+=("$2")
}
need haproxy haproxy
need podman podman
need runc runc
need iptables iptables
need debootstrap debootstrap
need curl curl
need objcopy binutils
need chromium chromium
[[ -f /usr/share/keyrings/debian-archive-keyring.gpg ]] || missing+=(debian-archive-keyring)
if [[ "$(id -u)" != 0 ]]; then
    need newuidmap uidmap
    need slirp4netns slirp4netns
fi

[[ ${#missing[@]} -eq 0 ]] && exit 0

hint="apt-get install -y --no-install-recommends ${missing[*]}"
if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    echo "system-deps: missing for the test suite: ${missing[*]}" >&2
    echo "system-deps: install them as root (Debian/Ubuntu: $hint), then run this again" >&2
    exit 1
fi

echo "system-deps: installing ${missing[*]} (apt-get)..." >&2
export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
install() {
    apt-get install -y -q --no-install-recommends "${missing[@]}" >"$log" 2>&1
}
if ! install; then
    # Package lists missing or stale (a fresh image has none).
    if ! apt-get update -q >"$log" 2>&1 || ! install; then
        tail -n 20 "$log" >&2
        echo "system-deps: failed: $hint" >&2
        exit 1
    fi
fi
echo "system-deps: installed ${missing[*]}" >&2
