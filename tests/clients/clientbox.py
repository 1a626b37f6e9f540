"""Shared pieces of the real-client lane: where the clients are, the offline sandbox, our documented config.

Every client command runs in a fresh temporary HOME with no credentials, and every way out of the
machine (API base URLs, proxies) points at a closed local port, so nothing can reach a model or the
network. The lane is skipped, with the reason, when the clients are not installed (npm unreachable,
or the script was not run).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

CLAUDE_PIN = "@anthropic-ai/claude-code@2.1.197"
CODEX_PIN = "@openai/codex@0.171.0"
CLOSED = "http://127.0.0.1:9"
SERVER = str(Path(sys.executable).parent / "oxtail-mcp")
BARE_SERVER = Path(__file__).with_name("bare_server.py")


def cache_dir() -> Path:
    return Path(os.environ.get("OXTAIL_CLIENTS_CACHE") or Path.home() / ".cache" / "oxtail-clients")


def installed(pin: str, name: str) -> Path:
    """The pinned client's binary, or a skip saying why it is not there."""
    cache = cache_dir()
    reason = cache / "unavailable"
    if reason.exists():
        pytest.skip(f"real clients unavailable: {reason.read_text().strip()}")
    binary = cache / pin.replace("/", "+") / "node_modules" / ".bin" / name
    if not binary.exists():
        pytest.skip(f"{pin} is not installed in {cache}; run scripts/real_clients.sh")
    return binary


@attrs.frozen
class Box:
    """One offline sandbox: a temp HOME with a git project in it, and the environment every client gets."""

    home: Path
    project: Path
    env: dict[str, str]

    @property
    def state(self) -> Path:
        return Path(self.env["OXTAIL_HOME"])

    def run(
        self,
        *argv: str | Path,
        timeout: float = 90,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess:
        """Run a client command in the box (its project dir, its offline env unless ``env`` is given)."""
        return subprocess.run(
            [str(a) for a in argv],
            cwd=cwd or self.project,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )


def offline_env(home: Path) -> dict[str, str]:
    """PATH and locale from the caller, everything else chosen: no keys, no proxies that work, no updates."""
    env = {key: os.environ[key] for key in ("PATH", "LANG", "TERM") if key in os.environ}
    env.update(
        HOME=str(home),
        OXTAIL_HOME=str(home / ".oxtail"),
        TMUX_TMPDIR=str(home / "no-tmux"),
        ANTHROPIC_BASE_URL=CLOSED,
        OPENAI_BASE_URL=f"{CLOSED}/v1",
        HTTP_PROXY=CLOSED,
        HTTPS_PROXY=CLOSED,
        ALL_PROXY=CLOSED,
        http_proxy=CLOSED,
        https_proxy=CLOSED,
        all_proxy=CLOSED,
        NO_PROXY="",
        DISABLE_AUTOUPDATER="1",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        DISABLE_TELEMETRY="1",
    )
    return env


def print_config_blocks() -> tuple[dict, str]:
    """``print-config``'s Claude Code JSON (``mcpServers``) and its Codex TOML, as the user copies them."""
    text = subprocess.run([SERVER, "print-config"], capture_output=True, text=True, check=True).stdout
    claude_part = text.split("# Codex")[0]
    start = claude_part.index("{")
    claude_json, _ = json.JSONDecoder().raw_decode(claude_part[start:])
    codex_part = text.split("# Codex", 1)[1]
    toml = "\n".join(line for line in codex_part.splitlines()[1:] if line and not line.startswith("#")).split(
        "\n{"
    )[0]
    return claude_json, toml
