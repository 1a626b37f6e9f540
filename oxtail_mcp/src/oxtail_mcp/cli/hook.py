"""``oxtail-mcp hook``: only its help lives here; the hook itself runs on the fast path in ``__main__``."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("event", help="the hook id the client was configured with (see install-hook)")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    """Reached only through ``main(["hook", …])`` called in-process; same behaviour as the fast path."""
    from oxtail_mcp.hooks.hook import main as hook_main

    return hook_main([args.event, *args.rest])
