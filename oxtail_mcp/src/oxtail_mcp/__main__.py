"""``oxtail-mcp``: the MCP stdio server, plus a few subcommands for people.

The first argument is looked at before anything else (no registry write, no
MCP import for subcommands): ``diagnose``, ``status``, ``install-hook``,
``uninstall-hook``, ``print-config``, ``hook``, ``print-skill``; anything else
serves MCP on stdio.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else ""
    if command == "hook":
        from oxtail_mcp.hooks.hook import main as hook_main

        sys.exit(hook_main(args[1:]))
    if command in ("install-hook", "uninstall-hook", "print-config"):
        from oxtail_mcp.hooks.installer import main as installer_main

        sys.exit(installer_main(command, args[1:]))
    if command == "status":
        from oxtail_mcp.commands.status import main as status_main

        sys.exit(status_main(args[1:]))
    if command == "print-skill":
        from oxtail_mcp.commands.skills import main as skill_main

        sys.exit(skill_main(args[1:]))
    if command == "diagnose":
        from oxtail_mcp.commands.diagnose import main as diagnose_main

        sys.exit(diagnose_main())
    from oxtail_mcp.server.app import run

    run()


if __name__ == "__main__":
    main()
