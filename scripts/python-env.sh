#!/usr/bin/env bash
# Create/update the project-local Python virtualenv at .venv.
#
# Usage: scripts/python-env.sh runtime|test|dev
#
#   runtime  onnxruntime only (provides libonnxruntime.so for ferroserve)
#   test     runtime + numpy + tritonclient[http] (client conformance checks)
#            + moto[server] (an S3-compatible server for the artifact store tests)
#            + schemathesis (API fuzzer run against the OpenAPI document)
#   dev      test + scikit-learn/skl2onnx/onnx (regenerate committed models)
#
# pip is skipped when the requested set is already installed: a stamp file
# .venv/.stamp-<set> records the sha256 of the requirement files involved.
set -euo pipefail

usage() {
    echo "usage: $0 runtime|test|dev" >&2
    exit 2
}

[[ $# -eq 1 ]] || usage
set_name="$1"
case "$set_name" in
    runtime) files=(requirements/runtime.txt) ;;
    test) files=(requirements/runtime.txt requirements/test.txt) ;;
    dev) files=(requirements/runtime.txt requirements/test.txt requirements/dev.txt) ;;
    *) usage ;;
esac

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

venv=.venv
python="${PYTHON:-python3}"
created=""
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
    created="created $venv; "
fi

hash="$(cat "${files[@]}" | sha256sum | cut -d' ' -f1)"
stamp="$venv/.stamp-$set_name"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$hash" ]]; then
    echo "python-env: ${created}'$set_name' requirements already installed in $venv"
    exit 0
fi

echo "python-env: installing the '$set_name' requirements into $venv (pip; a minute or two the first time)..."
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r "requirements/$set_name.txt"

# The sets are nested (dev includes test includes runtime): stamp every set
# that is now fully installed, so a later smaller request skips pip too.
n=${#files[@]}
for sub in runtime test dev; do
    case "$sub" in
        runtime) k=1 ;;
        test) k=2 ;;
        dev) k=3 ;;
    esac
    ((k <= n)) || break
    cat "${files[@]:0:k}" | sha256sum | cut -d' ' -f1 >"$venv/.stamp-$sub"
done
echo "python-env: ${created}installed '$set_name' requirements into $venv"
