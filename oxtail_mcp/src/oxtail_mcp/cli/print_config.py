"""``oxtail-mcp print-config``: the MCP server entries for Claude Code and Codex, to paste."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options."""


def run(args: argparse.Namespace) -> int:
    from oxtail_mcp.hooks import installer

    return installer.main("print-config", [])
