"""``oxtail-mcp print-skill CLIENT [--install]``: the join instructions for Claude Code or Codex."""

from __future__ import annotations

import argparse

from oxtail_mcp.commands.skills import SOURCES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("client", choices=sorted(SOURCES), help="which client's skill")
    parser.add_argument("--install", action="store_true", help="write it into the client's config folder")


def run(args: argparse.Namespace) -> int:
    from oxtail_mcp.commands import skills

    return skills.main([args.client, *(["--install"] if args.install else [])])
