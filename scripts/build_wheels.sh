#!/usr/bin/env bash
# Build the three wheels (oxtail-core, oxtail-fs, oxtail-mcp) of this checkout into one folder, the
# folder pipx, uv and pip install from (README.md, docs/getting-started.md):
#
#   bash scripts/build_wheels.sh          into dist/
#   bash scripts/build_wheels.sh DIR      into DIR
#
# Only python3 with its venv module is needed (on Debian and Ubuntu, the pipx package brings it). The
# build front end (PyPA's `build`) lives in its own venv, build/wheel-env, made on the first run and
# kept; each wheel is built in an isolated environment from its pyproject's [build-system]. Older
# oxtail wheels in the folder are removed first, so an install from it can only take the ones just
# built (the three pin each other to one version).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "${1:-$ROOT/dist}"
DIST="$(cd "${1:-$ROOT/dist}" && pwd)"
ENV="$ROOT/build/wheel-env"
LOG="$ROOT/build/wheels.log"

if ! "$ENV/bin/python" -m build --version >/dev/null 2>&1; then
    rm -rf "$ENV"
    python3 -m venv "$ENV"
    "$ENV/bin/python" -m pip install -q build
fi

rm -f "$DIST"/oxtail_core-*.whl "$DIST"/oxtail_fs-*.whl "$DIST"/oxtail_mcp-*.whl "$DIST"/oxtail_redis-*.whl
: >"$LOG"
for dist in oxtail_core oxtail_fs oxtail_mcp oxtail_redis; do
    if ! "$ENV/bin/python" -m build --wheel --outdir "$DIST" "$ROOT/$dist" >>"$LOG" 2>&1; then
        cat "$LOG" >&2
        echo "build_wheels: building $dist failed (log above, also in $LOG)" >&2
        exit 1
    fi
done
ls -1 "$DIST"/oxtail_core-*.whl "$DIST"/oxtail_fs-*.whl "$DIST"/oxtail_mcp-*.whl "$DIST"/oxtail_redis-*.whl
