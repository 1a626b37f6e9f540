"""``oxtail-mcp message TARGET TEXT...``: send the agent TARGET an operator message (docs/cockpit.md)."""

from __future__ import annotations

import argparse
import os

from oxtail_mcp.cli.pipe import quiet_broken_pipe


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", help="session id, short id (first 8 characters), pid:<n>, or tmux session")
    parser.add_argument("text", nargs="*", help="the message (words are joined by one space)")
    parser.add_argument("--nudge", action="store_true", help="send the standard nudge when no text is given")
    parser.add_argument("--no-wake", action="store_true", help="deliver without typing the wake line")
    parser.add_argument("--project", default=None, help="project root (default: cwd)")


def run(args: argparse.Namespace) -> int:
    from oxtail_mcp.commands import message

    root = os.path.abspath(args.project or os.getcwd())
    with quiet_broken_pipe():
        return message.main(root, args.target, " ".join(args.text), nudge=args.nudge, wake=not args.no_wake)
    return 1
