"""``oxtail-mcp``: the MCP stdio server, plus a few subcommands for people.

``hook`` is looked at before anything else and runs on the stdlib-only fast path (no argparse, no
MCP import): hosts call it on every tool use. Everything else goes through the argparse CLI in
``oxtail_mcp.cli``.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["hook"] and not {"-h", "--help"} & set(args[1:2]):
        from oxtail_mcp.hooks.hook import main as hook_main

        sys.exit(hook_main(args[1:]))
    from oxtail_mcp.cli.app import main as cli_main

    sys.exit(cli_main(args))


if __name__ == "__main__":
    main()
