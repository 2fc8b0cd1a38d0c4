#!/usr/bin/env bash
# Runs the whole test suite: installs what the tests need (ONNX Runtime, the
# Triton client and the schemathesis API fuzzer into .venv), then runs every
# test of the workspace.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/python-env.sh test
if cargo nextest --version >/dev/null 2>&1; then
    exec cargo nextest run --workspace --locked --no-fail-fast "$@"
else
    exec cargo test --workspace --locked --no-fail-fast "$@"
fi
