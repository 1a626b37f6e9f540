"""``oxtail-mcp uninstall-hook``: see docs/hooks.md for what is written and what is recognized as ours."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="show the change as a diff; write nothing")
    parser.add_argument(
        "--codex",
        action="store_true",
        help="remove our hooks from Codex CLI's $CODEX_HOME/hooks.json instead",
    )


def run(args: argparse.Namespace) -> int:
    from oxtail_mcp.hooks import installer

    flags = [flag for flag, on in (("--dry-run", args.dry_run), ("--codex", args.codex)) if on]
    return installer.main("uninstall-hook", flags)
