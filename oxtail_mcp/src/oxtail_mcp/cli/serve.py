"""``oxtail-mcp serve``: the MCP stdio server, with a one-line error when it cannot start."""

from __future__ import annotations

import argparse
import sys

from oxtail_mcp.home import state_home


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options: hosts configure the server through the environment (docs/environment.md)."""


def run(args: argparse.Namespace) -> int:
    """Check that the state directory is usable first, so a bad one is one clear line, not a traceback."""
    from oxtail_core.errors import StoreError
    from oxtail_fs.store.fs_store import FsStore

    home = state_home()
    try:
        FsStore(home)
    except StoreError as exc:
        print(f"oxtail-mcp: cannot start: {exc} (set OXTAIL_HOME to a writable directory)", file=sys.stderr)
        return 1
    from oxtail_mcp.server.app import run as serve

    serve()
    return 0
