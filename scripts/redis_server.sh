#!/usr/bin/env bash
# Make sure redis-server is installed, for the Redis store tests (tests/redis/: each test session
# starts its own server on a free loopback port and kills it; nothing is started here).
# Debian's package starts no service on a machine without systemd; where it does, that one is on
# port 6379, which the tests never use.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
else
    echo "redis-server is required for the Redis store tests (tests/redis); install it first" >&2
    exit 1
fi
command -v redis-server >/dev/null 2>&1 || { echo "redis-server still missing after apt-get" >&2; exit 1; }
