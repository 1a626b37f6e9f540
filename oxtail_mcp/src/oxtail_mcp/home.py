"""Where things live: our state directory, and the config folders of the two clients we serve.

Every location is a function of an environment mapping (tests pass their own), and every variable is
trimmed, so a stray space or newline in a shell profile does not move a directory.

| what | variable | default |
|---|---|---|
| oxtail's state | ``OXTAIL_HOME`` | ``$HOME/.oxtail`` |
| Claude Code's config (settings.json, projects/, commands/) | ``CLAUDE_CONFIG_DIR`` | ``$HOME/.claude`` |
| Codex's home (config.toml, hooks.json, sessions/, skills/) | ``CODEX_HOME`` | ``$HOME/.codex`` |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from oxtail_fs.store.names import state_dir


def _override(env: Mapping[str, str], name: str) -> Path | None:
    value = env.get(name, "").strip()
    return Path(value).expanduser() if value else None


def user_home(env: Mapping[str, str] = os.environ) -> Path:
    """The user's home directory: ``HOME`` trimmed, else what the password database says."""
    home = env.get("HOME", "").strip()
    return Path(home) if home else Path.home()


def state_home(env: Mapping[str, str] = os.environ) -> Path:
    """The state directory; ``OXTAIL_HOME`` (trimmed, non-empty) wins over ``$HOME/.oxtail``."""
    return Path(state_dir(env))


def claude_config_dir(env: Mapping[str, str] = os.environ) -> Path:
    """Claude Code's config folder: ``CLAUDE_CONFIG_DIR`` when set, else ``~/.claude``."""
    return _override(env, "CLAUDE_CONFIG_DIR") or user_home(env) / ".claude"


def codex_home(env: Mapping[str, str] = os.environ) -> Path:
    """Codex CLI's home: ``CODEX_HOME`` when set (it replaces ``~/.codex`` whole), else ``~/.codex``."""
    return _override(env, "CODEX_HOME") or user_home(env) / ".codex"
