"""The join integrations shipped as content (hooks.md §11), and ``oxtail-mcp print-skill``.

Claude Code and Codex hide their session id from MCP servers in some setups
but show it to the agent's own shell; these instructions have the agent read
it there and hand it to ``claim_session``. They are plain files so people can
read, copy or adapt them; ``print-skill --install`` puts them where each
client looks.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from importlib.resources import files
from pathlib import Path

from oxtail_mcp.home import claude_config_dir, codex_home

USAGE = "usage: oxtail-mcp print-skill claude|codex [--install]"

SOURCES = {
    "claude": (("claude/oxtail-join.md", "oxtail-join.md"),),
    "codex": (("codex/SKILL.md", "SKILL.md"), ("codex/agents/openai.yaml", "agents/openai.yaml")),
}
"""Per client: (packaged file, path under the client's install directory); the first is what is printed."""


def text(resource: str) -> str:
    return files(__name__).joinpath(resource).read_text(encoding="utf-8")


def install_dir(client: str, env: Mapping[str, str]) -> Path:
    """``$CLAUDE_CONFIG_DIR/commands`` or ``$CODEX_HOME/skills/oxtail-join`` (defaults under ``~``)."""
    if client == "claude":
        return claude_config_dir(env) / "commands"
    return codex_home(env) / "skills" / "oxtail-join"


def install(client: str, env: Mapping[str, str]) -> list[str]:
    """Write the client's files (replacing older copies of ours); one report line per file."""
    target = install_dir(client, env)
    lines = []
    for resource, relative in SOURCES[client]:
        path = target / relative
        content = text(resource)
        if path.is_file() and path.read_text(encoding="utf-8") == content:
            lines.append(f"Up to date: {path}")
            continue
        verb = "Updated" if path.exists() else "Wrote"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(content, encoding="utf-8")
        tmp.replace(path)
        lines.append(f"{verb} {path}")
    return lines


def main(args: Sequence[str], env: Mapping[str, str] = os.environ) -> int:
    """Print the client's join instructions, or install them with ``--install``."""
    clients = [a for a in args if a in SOURCES]
    if len(clients) != 1 or set(args) - {*clients, "--install"}:
        print(USAGE, file=sys.stderr)
        return 2
    if "--install" in args:
        try:
            print("\n".join(install(clients[0], env)))
        except OSError as exc:
            print(f"print-skill: could not install: {exc}", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(text(SOURCES[clients[0]][0][0]))
    return 0
