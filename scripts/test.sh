#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh clone, then run it all:
# lint, type check, and the tests (real processes, real tmux on private sockets).
#
#   bash scripts/test.sh            the CI command: set-up, lint, mypy, the full suite (with the smoke
#                                   lane: the three wheels built into dist/, installed by the documented
#                                   commands in a temporary HOME, and driven end to end)
#   bash scripts/test.sh --fast     the inner loop: the unit tests only (no races, e2e, slow,
#                                   tmux, real-client or smoke lanes), reusing .venv if it exists
#
# Arguments after the option go to pytest (e.g. `--fast -k ledger`). Lanes: docs/testing.md.
set -euo pipefail
cd "$(dirname "$0")/.."

FAST_LANE="not races and not e2e and not slow and not tmux and not clients and not smoke"

setup() {
    python3 -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -r requirements-dev.txt
}

if [ "${1:-}" = "--fast" ]; then
    shift
    [ -x .venv/bin/python ] || setup
    exec .venv/bin/python -m pytest -q -m "$FAST_LANE" "$@"
fi

if ! python3 -c "import ensurepip, venv" >/dev/null 2>&1; then  # Debian splits venv out of python3
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    else
        echo "python3's venv module is required; on Debian or Ubuntu: apt-get install python3-venv" >&2
        exit 1
    fi
fi

if ! command -v tmux >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq tmux >/dev/null
    else
        echo "tmux is required for the end-to-end tests; install it first" >&2
        exit 1
    fi
fi

bash scripts/redis_server.sh  # the Redis store's tests run against a real server (tests/redis)

setup

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
bash scripts/real_clients.sh
.venv/bin/python -m pytest "$@"
