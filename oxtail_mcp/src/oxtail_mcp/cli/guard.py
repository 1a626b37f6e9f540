"""``oxtail-mcp guard``: install, remove or run the git hooks that honor file reservations.

See :mod:`oxtail_mcp.commands.guard` and docs/reservations.md. ``check`` is the
full check: the installed hooks run the stdlib-only one
(:mod:`oxtail_mcp.commands.guardcheck`), which hands it what only the store can
answer. People use ``install`` and ``uninstall``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

PROG = "oxtail-mcp guard"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    subs = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    install = subs.add_parser("install", help="install the pre-commit and pre-push hooks")
    install.add_argument("--mode", choices=("block", "warn"), default="block", help="refuse or only warn")
    install.add_argument("--repo", default=None, help="repository (default: the current directory)")
    uninstall = subs.add_parser("uninstall", help="remove the hooks (a chained hook is put back)")
    uninstall.add_argument("--repo", default=None, help="repository (default: the current directory)")
    check = subs.add_parser("check", help="run the full check (the hooks' fallback)")
    check.add_argument("hook", choices=("pre-commit", "pre-push"))
    check.add_argument("--mode", choices=("block", "warn"), default="block")


def run(args: argparse.Namespace) -> int:
    from oxtail_mcp.commands import guard

    cwd = Path(getattr(args, "repo", None) or os.getcwd())
    try:
        if args.action == "install":
            lines = guard.install(cwd, args.mode)
        elif args.action == "uninstall":
            lines = guard.uninstall(cwd) or ["no oxtail guard hooks installed here"]
        else:
            stdin = sys.stdin.read() if args.hook == "pre-push" else ""
            code, text = guard.check(args.hook, args.mode, cwd, os.environ, stdin)
            if text:
                print(text, file=sys.stderr)
            return code
    except guard.GuardError as exc:
        if args.action == "check":  # never stop a commit over our own trouble
            print(f"oxtail guard: {exc}; allowed", file=sys.stderr)
            return 0
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    for line in lines:
        print(line)
    return 0
