"""``oxtail-mcp status``: the agents of a project, once, as JSON, or redrawn with ``--watch``."""

from __future__ import annotations

import argparse
import os

from oxtail_mcp.cli.pipe import quiet_broken_pipe


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", nargs="?", default=None, help="project root (default: cwd)")
    parser.add_argument("--watch", action="store_true", help="redraw every two seconds until Ctrl-C")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    from oxtail_mcp.commands import status

    root = os.path.abspath(args.project or os.getcwd())
    with quiet_broken_pipe():
        return status.show(root, watch=args.watch, json_output=args.json)
    return 0  # the reader went away (``status --watch | head``): that is a normal end
