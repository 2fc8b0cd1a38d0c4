#!/usr/bin/env bash
# Runs the ferroserve server (release build). Installs the ONNX Runtime
# library into the project's .venv first; extra arguments go to `serve`.
# With no model flag, the bundled iris example is served on 127.0.0.1:8080.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/python-env.sh runtime
exec cargo run --release --locked -p ferroserve -- serve "$@"
