"""``oxtail-mcp serve``: the MCP stdio server, with a one-line error when it cannot start."""

from __future__ import annotations

import argparse
import os
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options: hosts configure the server through the environment (docs/environment.md)."""


def run(args: argparse.Namespace) -> int:
    """Open the store first (the state directory, or Redis with its start-up checks), so a bad one is
    one clear line on stderr and exit 1, not a traceback."""
    from oxtail_core.errors import StoreError
    from oxtail_mcp import storage

    hint = ""
    try:
        choice = storage.choose(os.environ)
        hint = " (set OXTAIL_HOME to a writable directory)" if choice.kind == "fs" else ""
        store, _ = storage.open_chosen(choice, os.environ)
    except StoreError as exc:
        print(f"oxtail-mcp: cannot start: {exc}{hint}", file=sys.stderr)
        return 1
    close = getattr(store, "close", None)
    if close is not None:
        close()  # the server opens its own (Agent.start): this one only proved that it can
    from oxtail_mcp.server.app import run as serve

    serve()
    return 0
