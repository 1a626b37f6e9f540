"""The real-client lane: Claude Code and Codex CLI, as installed by scripts/real_clients.sh, run offline.

Every test module here is marked ``clients``; each test is skipped, with the reason, when the
clients are not installed.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clients.clientbox import CLAUDE_PIN, CODEX_PIN, Box, installed, offline_env


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Box]:
    home = tmp_path / "home"
    project = home / "proj"
    project.mkdir(parents=True)
    (home / "no-tmux").mkdir()
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    yield Box(home, project, offline_env(home))


@pytest.fixture
def claude() -> Path:
    return installed(CLAUDE_PIN, "claude")


@pytest.fixture
def codex() -> Path:
    return installed(CODEX_PIN, "codex")
