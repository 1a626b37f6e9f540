"""``oxtail-mcp setup``: see :mod:`oxtail_mcp.commands.setup` and docs/setup.md."""

from __future__ import annotations

import argparse
import os
import sys

PROG = "oxtail-mcp setup"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--dry-run", action="store_true", help="print the exact diffs; write nothing")
    parser.add_argument("--claude", action="store_true", help="set up Claude Code only (present or not)")
    parser.add_argument("--codex", action="store_true", help="set up Codex CLI only (present or not)")
    parser.add_argument(
        "--uninstall", action="store_true", help="remove what setup added (only our entries and hooks)"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace an `oxtail` MCP entry that runs something else; register a uvx/pipx-run path anyway",
    )


def run(args: argparse.Namespace) -> int:
    from oxtail_mcp.commands.setup import plan
    from oxtail_mcp.commands.setup.errors import SetupError

    options = plan.Options(
        dry_run=args.dry_run, uninstall=args.uninstall, claude=args.claude, codex=args.codex, force=args.force
    )
    try:
        return plan.run(
            options, os.environ, sys.stdout, sys.stderr, color=plan.color_wanted(sys.stdout, os.environ)
        )
    except SetupError as exc:
        sys.stdout.flush()
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # the plan turns every read into a SetupError; this is the last net
        print(f"{PROG}: error: {exc.filename or 'a file'}: {exc.strerror or exc}", file=sys.stderr)
        return 1
