"""Where oxtail keeps its state: ``$OXTAIL_HOME``, else ``~/.oxtail``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def state_home(env: Mapping[str, str] = os.environ) -> Path:
    """The state directory; ``OXTAIL_HOME`` (trimmed, non-empty) wins over ``$HOME/.oxtail``."""
    override = env.get("OXTAIL_HOME", "").strip()
    if override:
        return Path(override).expanduser()
    home = env.get("HOME", "").strip()
    return (Path(home) if home else Path.home()) / ".oxtail"


def user_home(env: Mapping[str, str] = os.environ) -> Path:
    """The user's home directory (transcripts of Claude Code and Codex live below it)."""
    home = env.get("HOME", "").strip()
    return Path(home) if home else Path.home()
