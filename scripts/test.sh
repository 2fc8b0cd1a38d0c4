#!/usr/bin/env bash
# Runs the whole test suite: installs what the tests need (ONNX Runtime, the
# Triton client and the schemathesis API fuzzer into .venv; podman and what
# the container image test needs, and haproxy for the fleet test, with
# apt-get as root), then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/python-env.sh test
# Where they cannot be installed (not root) the suite goes on outside CI: the
# container test then skips without podman, or fails saying what is missing;
# the fleet test fails saying how to install haproxy.
scripts/system-deps.sh || [[ -z "${CI:-}" ]]
if cargo nextest --version >/dev/null 2>&1; then
    exec cargo nextest run --workspace --locked --no-fail-fast "$@"
else
    exec cargo test --workspace --locked --no-fail-fast "$@"
fi
