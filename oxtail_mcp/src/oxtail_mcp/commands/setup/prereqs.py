"""What setup checks before it writes: which clients are here, and whether our command will still be there.

A client is **present** when its CLI is on ``PATH`` or its config is on disk (someone ran it, or a
dotfile manager put its config in place):

| client | present when |
|---|---|
| Claude Code | ``claude`` on ``PATH``, or ``~/.claude.json`` or ``~/.claude/`` (``$CLAUDE_CONFIG_DIR``) |
| Codex CLI | ``codex`` on ``PATH``, or ``~/.codex/`` (``$CODEX_HOME``) |

The MCP entries and the hooks name our console script by absolute path, so that path has to outlive
this run. Where it is not expected to:

| the ``oxtail-mcp`` that runs | verdict |
|---|---|
| missing or not executable (``python -m oxtail_mcp`` without the script) | refused |
| in uv's cache (``uvx``) | refused; ``--force`` registers it anyway |
| in pipx's cache (``pipx run``) | refused; ``--force`` registers it anyway |
| in the temp directory | a warning (emptied at reboot) |
| anywhere else (a venv, ``uv tool install``, ``pipx install``) | fine |

uv's cache is ``$UV_CACHE_DIR``, else ``$XDG_CACHE_HOME/uv``, else ``~/.cache/uv``, and any folder named
``archive-vN``; pipx's is ``$PIPX_HOME/.cache``, ``~/.local/share/pipx/.cache`` or ``~/.local/pipx/.cache``.

Both the path as run and the file it links to are checked.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import attrs

from oxtail_mcp.commands.setup import claude_json
from oxtail_mcp.commands.setup.errors import SetupError
from oxtail_mcp.home import claude_config_dir, codex_home, user_home

INSTALL_HINT = "install it to stay with `uv tool install oxtail-mcp` or `pipx install oxtail-mcp`"


@attrs.frozen
class Check:
    """One line of the prerequisites block: fine (``ok``) or a warning, and what was found."""

    ok: bool
    name: str
    detail: str


def on_path(name: str, env: Mapping[str, str]) -> bool:
    return shutil.which(name, path=env.get("PATH", "")) is not None


def claude_present(env: Mapping[str, str]) -> bool:
    return on_path("claude", env) or claude_json.path(env).exists() or claude_config_dir(env).is_dir()


def codex_present(env: Mapping[str, str]) -> bool:
    return on_path("codex", env) or codex_home(env).is_dir()


def _caches(env: Mapping[str, str]) -> list[tuple[Path, str]]:
    home = user_home(env)
    uv = env.get("UV_CACHE_DIR", "").strip()
    xdg = env.get("XDG_CACHE_HOME", "").strip()
    pipx = env.get("PIPX_HOME", "").strip()
    found = [(Path(uv) if uv else (Path(xdg) if xdg else home / ".cache") / "uv", "uv's cache (uvx)")]
    found += [(Path(pipx) / ".cache", "pipx's cache (pipx run)")] if pipx else []
    found += [(home / ".local/share/pipx/.cache", "pipx's cache (pipx run)")]
    found += [(home / ".local/pipx/.cache", "pipx's cache (pipx run)")]
    return found


def _ephemeral(path: Path, env: Mapping[str, str]) -> str | None:
    for cache, what in _caches(env):
        if path.is_relative_to(cache):
            return what
    if any(re.fullmatch(r"archive-v\d+", part) for part in path.parts):
        return "uv's cache (uvx)"
    return None


def executable(exe: str, env: Mapping[str, str], *, force: bool) -> Check:
    """The line about our console script; raises :class:`SetupError` when its path will not last."""
    path = Path(exe)
    if not path.is_absolute() or not os.access(path, os.X_OK) or not path.is_file():
        raise SetupError(
            f"no oxtail-mcp console script at {exe}: run setup through the installed `oxtail-mcp` command"
        )
    for candidate in (path, Path(os.path.realpath(path))):
        where = _ephemeral(candidate, env)
        if where is None:
            continue
        message = f"{exe} is in {where}, which is emptied without notice (the entries would point at nothing)"
        if not force:
            raise SetupError(
                f"{message}; {INSTALL_HINT}, then run its `oxtail-mcp setup` (--force: register it anyway)"
            )
        return Check(False, "oxtail-mcp", f"{message} (--force)")
    if path.is_relative_to(tempfile.gettempdir()):
        return Check(False, "oxtail-mcp", f"{exe} — in the temp directory, emptied at reboot; {INSTALL_HINT}")
    return Check(True, "oxtail-mcp", exe)


def tools(env: Mapping[str, str]) -> list[Check]:
    """Python, tmux and the two CLIs; only a missing tmux keeps setup from saying "ready"."""
    version = ".".join(map(str, sys.version_info[:3]))
    return [
        Check(True, "python", f"{version} ({sys.executable})"),
        Check(True, "tmux", "found")
        if on_path("tmux", env)
        else Check(
            False, "tmux", "missing — `sudo apt install tmux` / `brew install tmux` (needed to wake peers)"
        ),
        Check(True, "claude CLI", "found")
        if on_path("claude", env)
        else Check(False, "claude CLI", "missing — install + log in to run Claude agents"),
        Check(True, "codex CLI", "found")
        if on_path("codex", env)
        else Check(False, "codex CLI", "missing — install + log in to run Codex agents"),
    ]
