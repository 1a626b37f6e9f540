"""Codex CLI 0.171.0 with our server, registered the way ``oxtail-mcp print-config`` says.

``codex mcp list`` only reads the config; the health check and a real thread go through
``codex app-server`` (JSON-RPC over stdio), which needs no model: the turn's model call fails
against the closed port, but the thread's rollout is written and MCP tools can be called directly.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from oxtail_core.ids import is_uuid_shaped
from tests.clients.appserver import AppServer
from tests.clients.clientbox import BARE_SERVER, SERVER, Box, print_config_blocks

pytestmark = pytest.mark.clients


def register_as_documented(box: Box, *, bare: bool = False) -> None:
    _, toml = print_config_blocks()
    assert toml.startswith("[mcp_servers.oxtail]")
    if bare:
        toml += f'\n[mcp_servers.bare]\ncommand = "{sys.executable}"\nargs = ["{BARE_SERVER}"]\n'
    (box.home / ".codex").mkdir(exist_ok=True)
    (box.home / ".codex" / "config.toml").write_text(toml + "\n")


def poll(probe: Callable[[], list[Path]], timeout: float = 30) -> list[Path]:
    """``probe()`` once it is non-empty (Codex writes the rollout asynchronously), else its last value."""
    deadline = time.monotonic() + timeout
    while not (found := probe()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


def tool_json(result: dict) -> dict:
    assert result["isError"] is False, result
    return json.loads(result["content"][0]["text"])


def test_codex_mcp_list_shows_our_server_enabled(box: Box, codex: Path) -> None:
    register_as_documented(box)
    listed = box.run(codex, "mcp", "list")
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith("oxtail "))
    assert SERVER in row and "enabled" in row


def test_codex_app_server_reports_us_healthy_and_get_my_session_names_the_real_thread(
    box: Box, codex: Path
) -> None:
    register_as_documented(box, bare=True)
    server = AppServer(codex, box.env, box.project)
    try:
        status = server.request("mcpServerStatus/list", {}, timeout=60)
        by_name = {item["name"]: item for item in status["data"]}
        ours = by_name["oxtail"]
        assert ours["serverInfo"]["name"] == "oxtail"
        assert {"get_my_session", "read_session", "send_message"} <= set(ours["tools"])
        assert "ping" in by_name["bare"]["tools"]

        thread = server.request("thread/start", {"cwd": str(box.project)})["thread"]
        thread_id = thread["id"]
        assert is_uuid_shaped(thread_id)
        connect = {}
        for name in ("oxtail", "bare"):
            started = server.wait_for("mcpServer/startupStatus/updated", name=name, status="starting")
            ready = server.wait_for("mcpServer/startupStatus/updated", name=name, status="ready")
            connect[name] = ready["emittedAtMs"] - started["emittedAtMs"]
        print(f"\ncodex thread MCP startup: oxtail {connect['oxtail']} ms, bare SDK {connect['bare']} ms")

        server.request("turn/start", {"threadId": thread_id, "input": [{"type": "text", "text": "hi"}]})

        def written() -> list[Path]:
            found = (box.home / ".codex" / "sessions").rglob(f"rollout-*-{thread_id}.jsonl")
            return [path for path in found if b"\n" in path.read_bytes()]

        rollouts = poll(written)
        assert len(rollouts) == 1
        assert len(rollouts[0].read_bytes().split(b"\n", 1)[0]) > 4096  # the line 0.15.0 could not read

        call = {"server": "oxtail", "threadId": thread_id, "tool": "get_my_session", "arguments": {}}
        client = tool_json(server.request("mcpServer/tool/call", call, timeout=60))["entry"]["client"]
        assert (client["type"], client["session_id"], client["session_id_source"]) == (
            "codex",
            thread_id,
            "birth-time",
        )
        assert client["transcript_path"] == str(rollouts[0])
    finally:
        server.close()
