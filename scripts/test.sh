#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh clone, then run it all:
# lint, type check, and the tests (real processes, real tmux on private sockets).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v tmux >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq tmux >/dev/null
    else
        echo "tmux is required for the end-to-end tests; install it first" >&2
        exit 1
    fi
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r requirements-dev.txt

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
bash scripts/real_clients.sh
.venv/bin/python -m pytest "$@"
