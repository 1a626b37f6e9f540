"""``oxtail-mcp print-skill CLIENT [--install]``: the join instructions for Claude Code or Codex."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The words go to ``skills.main`` as they are, so its usage message stays the one documented."""
    parser.add_argument("words", nargs=argparse.REMAINDER, metavar="{claude,codex} [--install]")


def run(args: argparse.Namespace) -> int:
    from oxtail_mcp.commands import skills

    return skills.main(args.words)
