"""``oxtail-mcp install-hook``: see docs/hooks.md for what is written and what is recognized as ours."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="show the change as a diff; write nothing")
    parser.add_argument("--print-config", action="store_true", help="print the MCP config snippets instead")
    parser.add_argument(
        "--rewrite-strict",
        action="store_true",
        help="rewrite a settings.json (hooks.json with --codex) with comments or trailing commas as strict "
        "JSON (both clients ignore such a file whole); a backup is kept",
    )
    parser.add_argument(
        "--codex",
        action="store_true",
        help="install into Codex CLI's $CODEX_HOME/hooks.json instead of Claude Code's settings.json",
    )


def run(args: argparse.Namespace) -> int:
    from oxtail_mcp.hooks import installer

    chosen = (
        ("--dry-run", args.dry_run),
        ("--print-config", args.print_config),
        ("--rewrite-strict", args.rewrite_strict),
        ("--codex", args.codex),
    )
    flags = [flag for flag, on in chosen if on]
    return installer.main("install-hook", flags)
