"""``oxtail-mcp status``: the agents of a project, once, as JSON, or redrawn with ``--watch``;
``--check`` exits 2 when something is stuck (docs/status.md)."""

from __future__ import annotations

import argparse
import os
import sys

from oxtail_mcp.cli.pipe import quiet_broken_pipe


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", nargs="?", default=None, help="project root (default: cwd)")
    parser.add_argument(
        "--watch",
        action="store_true",
        help="on a terminal, the live cockpit; piped, redraw every two seconds until Ctrl-C",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 2 on a live deadlock, an orphaned wait, or mail or work stranded on a dead agent",
    )
    parser.add_argument(
        "--no-activity",
        action="store_true",
        help="do not read the agents' tmux panes (on a terminal they are read to tell a turn in flight)",
    )


def run(args: argparse.Namespace) -> int:
    from oxtail_mcp.commands import status

    root = os.path.abspath(args.project or os.getcwd())
    if args.watch and not args.json and sys.stdout.isatty():
        from oxtail_mcp.cockpit.app import main

        return main(root)
    with quiet_broken_pipe():
        return status.show(
            root, watch=args.watch, json_output=args.json, check=args.check, activity=not args.no_activity
        )
    return 0  # the reader went away (``status --watch | head``): that is a normal end
