#!/usr/bin/env bash
# Install the real agent clients the `clients` test lane drives, pinned, into a cache that survives runs.
#
#   Claude Code  @anthropic-ai/claude-code@2.1.197
#   Codex CLI    @openai/codex@0.171.0
#
# Cache: ${OXTAIL_CLIENTS_CACHE:-$HOME/.cache/oxtail-clients}/<package>@<version>/ (one npm prefix per
# pin, so bumping a pin installs beside the old one). A pin whose binary already runs is not reinstalled.
# This script never fails the build: when npm is missing or the registry is unreachable it says so,
# writes the reason to <cache>/unavailable, and tests/clients/ skips with that reason.
set -uo pipefail

CACHE="${OXTAIL_CLIENTS_CACHE:-$HOME/.cache/oxtail-clients}"
PINS=("@anthropic-ai/claude-code@2.1.197:claude" "@openai/codex@0.171.0:codex")

mkdir -p "$CACHE"
rm -f "$CACHE/unavailable"

unavailable() {
    echo "real_clients: $1" >&2
    echo "$1" >"$CACHE/unavailable"
    exit 0
}

command -v npm >/dev/null 2>&1 || unavailable "npm is not installed"

for pin in "${PINS[@]}"; do
    spec="${pin%:*}"
    bin="${pin##*:}"
    prefix="$CACHE/${spec//\//+}"
    if [ -x "$prefix/node_modules/.bin/$bin" ] && "$prefix/node_modules/.bin/$bin" --version >/dev/null 2>&1; then
        continue
    fi
    echo "real_clients: installing $spec into $prefix" >&2
    rm -rf "$prefix"
    mkdir -p "$prefix"
    if ! timeout 300 npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error --fetch-retries=1 --fetch-timeout=60000 "$spec" >&2; then
        rm -rf "$prefix"
        unavailable "npm could not install $spec (registry unreachable?)"
    fi
done
echo "real_clients: $CACHE ready" >&2
