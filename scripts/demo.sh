#!/usr/bin/env bash
# Set up on a fresh clone, then run the live demo: agents messaging, asking and
# answering through oxtail on the embedded store.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ./oxtail_core -e ./oxtail_fs -e ./oxtail_mcp
.venv/bin/python examples/mcp_demo.py "$@"
