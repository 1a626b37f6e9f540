"""``oxtail-mcp uninstall-hook``: see docs/hooks.md for what is written and what is recognized as ours."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="show the change as a diff; write nothing")


def run(args: argparse.Namespace) -> int:
    from oxtail_mcp.hooks import installer

    return installer.main("uninstall-hook", ["--dry-run"] if args.dry_run else [])
