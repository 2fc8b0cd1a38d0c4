#!/usr/bin/env bash
# Validates the manifests of deploy/kubernetes offline: schemas (Kubernetes,
# KEDA, prometheus-operator), the properties a multi-replica ferroserve
# needs, and broken copies that must be rejected (see validate.mjs).
#
#   deploy/kubernetes/validate/run.sh
#
# Needs Node.js 20 or later with npm. The schema packages are installed
# from npm (npm ci, pinned by package-lock.json) when node_modules is
# missing or older than the lock file; the validation itself reads local
# files only. Without Node this prints why and exits 0, except under CI
# (CI set), where a missing tool fails the run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

unavailable() {
    local why="$1"
    local hint="install Node.js 20 or later with npm (Debian/Ubuntu: apt-get install nodejs npm; or https://nodejs.org)"
    if [ -n "${CI:-}" ]; then
        echo "error: $why: the Kubernetes manifests cannot be validated; $hint" >&2
        exit 1
    fi
    echo "skipped: $why: the Kubernetes manifests were NOT validated; $hint" >&2
    exit 0
}

command -v node >/dev/null 2>&1 || unavailable "node not found"
command -v npm >/dev/null 2>&1 || unavailable "npm not found"
major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$major" -ge 20 ] || unavailable "node $(node --version) is older than 20"

# Reinstall when the lock file changed since the last install. The schema
# packages declare Node 22 but work on 20 (every check below, the negative
# cases included, runs on 20), so their engine field is not enforced and
# npm's warnings about it are silenced; package scripts are never run.
stamp="$here/node_modules/.ferroserve-package-lock.json"
if ! cmp -s "$here/package-lock.json" "$stamp"; then
    echo "installing the schema packages (npm ci)..." >&2
    npm ci --prefix "$here" --ignore-scripts --engine-strict=false --no-audit --no-fund --loglevel=error >&2
    cp "$here/package-lock.json" "$stamp"
fi

exec node "$here/validate.mjs" "$here/.."
