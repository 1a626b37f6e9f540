"""``oxtail-mcp cockpit [PROJECT_ROOT]``: the live terminal view of a project's agents (docs/cockpit.md)."""

from __future__ import annotations

import argparse
import os


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", nargs="?", default=None, help="project root (default: cwd)")


def run(args: argparse.Namespace) -> int:
    from oxtail_mcp.cockpit.app import main  # Textual is loaded only here

    return main(os.path.abspath(args.project or os.getcwd()))
