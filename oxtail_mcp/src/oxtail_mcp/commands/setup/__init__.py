"""``oxtail-mcp setup``: register the MCP server with Claude Code and Codex and install their hooks.

| module | holds |
|---|---|
| :mod:`.plan` | the command: plan, show, apply, roll back; which clients |
| :mod:`.entry` | what our ``oxtail`` entry is and how an existing one is judged |
| :mod:`.claude_json` | the edit of ``~/.claude.json`` |
| :mod:`.codex_toml` | the edit of ``~/.codex/config.toml`` (tomlkit) |
| :mod:`.hooks` | the hook installers, called as ``install-hook`` calls them |
| :mod:`.prereqs` | present clients, a console-script path that lasts, tmux and the CLIs |
| :mod:`.files` | backups and compare-then-replace writes |
| :mod:`.report` | the printed lines |

See docs/setup.md.
"""
