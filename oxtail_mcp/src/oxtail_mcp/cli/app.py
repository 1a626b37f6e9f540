"""The argparse front: subcommands, ``--version``, and what a bare ``oxtail-mcp`` does.

| argv | stdin | what happens |
|---|---|---|
| (empty) | not a terminal (a host spawned us) | serve MCP on stdio |
| (empty) | a terminal (a person typed it) | print help, exit 0 |
| ``serve`` | any | serve MCP on stdio |
| a known command | any | run it |
| anything else | any | one-line error on stderr, exit 2; no server, no file written |
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import NoReturn

from oxtail_mcp import COMPATIBLE_VERSION, __version__
from oxtail_mcp.cli import (
    cockpit,
    diagnose,
    guard,
    hook,
    install_hook,
    message,
    print_config,
    print_skill,
    serve,
    setup,
    status,
    uninstall_hook,
    use_store,
)

PROG = "oxtail-mcp"

COMMANDS: tuple[tuple[str, ModuleType, str], ...] = (
    ("serve", serve, "serve MCP on stdio (what Claude Code and Codex start)"),
    ("status", status, "show the agents of a project"),
    ("cockpit", cockpit, "a live view of a project's agents, waits and messages, with keys to act"),
    ("message", message, "send an agent an operator message (framed as untrusted, one-way)"),
    ("diagnose", diagnose, "summarize wake outcomes and check the environment"),
    ("install-hook", install_hook, "install the Claude Code hooks into settings.json"),
    ("uninstall-hook", uninstall_hook, "remove the oxtail hooks from settings.json"),
    ("print-config", print_config, "print the MCP config snippets for Claude Code and Codex"),
    ("print-skill", print_skill, "print (or --install) the join skill for a client"),
    ("hook", hook, "run a hook (called by the client, not by people)"),
    ("guard", guard, "install or remove the git hooks that honor file reservations"),
    ("setup", setup, "register oxtail with Claude Code and Codex and install their hooks, in one go"),
    ("use-store", use_store, "choose this machine's store: a shared Redis (url --team) or the files (fs)"),
)


class Parser(argparse.ArgumentParser):
    """The top level's errors (an unknown command) are one line, exit 2; a command's bad flags keep
    argparse's usage line above the error, since that usage is the command's own."""

    def error(self, message: str) -> NoReturn:
        if self.prog != PROG:
            super().error(message)
        self.exit(2, f"{PROG}: error: {message} (see {PROG} --help)\n")


def build() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        description="Coordination for parallel AI coding-agent sessions (Claude Code, Codex).",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"{PROG} {__version__} (MCP serverInfo: oxtail {COMPATIBLE_VERSION})",
    )
    subs = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module, summary in COMMANDS:
        sub = subs.add_parser(name, help=summary, description=summary)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run, parser=sub)
    return parser


def main(argv: Sequence[str], stdin_is_tty: Callable[[], bool] = sys.stdin.isatty) -> int:
    parser = build()
    if not argv:
        if stdin_is_tty():
            parser.print_help()
            return 0
        return serve.run(argparse.Namespace())
    args, extra = parser.parse_known_args(list(argv))
    if extra:  # reported by the command's own parser, so its usage line is the one shown
        getattr(args, "parser", parser).error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command is None:  # only options such as --version (which exits) were given
        parser.print_help()
        return 0
    code: int = args.run(args)
    return code
