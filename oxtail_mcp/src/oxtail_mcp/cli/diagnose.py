"""``oxtail-mcp diagnose``: wake outcomes from ``MCP_TRACE_FILE``, and what looks wrong in the setup."""

from __future__ import annotations

import argparse

from oxtail_mcp.cli.pipe import quiet_broken_pipe


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options: it reads the environment (``MCP_TRACE_FILE``, ``OXTAIL_HOME``, ...)."""


def run(args: argparse.Namespace) -> int:
    from oxtail_mcp.commands import diagnose

    with quiet_broken_pipe():
        return diagnose.main()
    return 0
