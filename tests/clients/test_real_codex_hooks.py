"""Our hooks under the real Codex CLI 0.171.0 (offline): ``install-hook --codex`` writes a hooks.json
Codex parses without a warning, the hooks stay untrusted (so they do not run) until trusted, and once
trusted a real thread's first turn runs SessionStart and UserPromptSubmit: the thread's MCP child knows
its thread id from the SessionStart drop (``hook-drop``), and the busy marker is there."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from oxtail_fs.host import proctree
from oxtail_fs.store.fs_store import FsStore
from oxtail_mcp.hooks import codex as codex_hooks
from tests.clients.appserver import AppServer
from tests.clients.clientbox import SERVER, Box, print_config_blocks

pytestmark = pytest.mark.clients

EVENTS = {"sessionStart", "userPromptSubmit", "preToolUse", "stop"}


def listed(server: AppServer, box: Box) -> dict[str, Any]:
    answer = server.request("hooks/list", {"cwds": [str(box.project)]}, timeout=60)
    (entry,) = answer["data"]
    return entry


def test_codex_parses_our_hooks_runs_them_once_trusted_and_its_mcp_child_adopts_the_drop(
    box: Box, codex: Path
) -> None:
    env = dict(box.env, PATH=f"{codex.parent}:{box.env['PATH']}")  # so install-hook finds codex 0.171.0
    done = subprocess.run(
        [SERVER, "install-hook", "--codex"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr  # no "mid-turn" note: 0.171.0 carries it
    assert codex_hooks.TRUST_HINT in done.stdout
    _, toml = print_config_blocks()
    config = box.home / ".codex" / "config.toml"
    config.write_text(toml + "\n")

    server = AppServer(codex, env, box.project)
    try:
        entry = listed(server, box)
        assert (entry["warnings"], entry["errors"]) == ([], [])
        ours = [h for h in entry["hooks"] if "oxtail-mcp" in h["command"]]
        assert {h["eventName"] for h in ours} == EVENTS
        assert {h["trustStatus"] for h in ours} == {"untrusted"}  # S59: Codex skips them until trusted
        assert {h["timeoutSec"] for h in ours} == {codex_hooks.TIMEOUT_S}
    finally:
        server.close()
    hint = codex_hooks.hint(env)
    assert hint is not None and "not trusted yet" in hint

    # What the TUI's /hooks writes when the user trusts them.
    trust = "".join(f'[hooks.state."{h["key"]}"]\ntrusted_hash = "{h["currentHash"]}"\n' for h in ours)
    config.write_text(f"{toml}\n\n{trust}")
    assert codex_hooks.trusted(box.home / ".codex" / "hooks.json", box.home / ".codex")["all"]

    server = AppServer(codex, env, box.project)
    try:
        assert {h["trustStatus"] for h in listed(server, box)["hooks"]} == {"trusted"}
        thread_id = server.request("thread/start", {"cwd": str(box.project)})["thread"]["id"]
        server.wait_for("mcpServer/startupStatus/updated", name="oxtail", status="ready")
        server.request("turn/start", {"threadId": thread_id, "input": [{"type": "text", "text": "hi"}]})
        drops = box.state / "session-starts"
        deadline = time.monotonic() + 30
        while not (drops.is_dir() and any(drops.iterdir())) and time.monotonic() < deadline:
            time.sleep(0.1)
        (drop_file,) = drops.iterdir()
        drop = json.loads(drop_file.read_text())
        assert (drop["client"], drop["payload"]["session_id"]) == ("codex", thread_id)

        call = {"server": "oxtail", "threadId": thread_id, "tool": "get_my_session", "arguments": {}}
        result = server.request("mcpServer/tool/call", call, timeout=60)
        got = json.loads(result["content"][0]["text"])
        client = got["entry"]["client"]
        assert (client["type"], client["session_id"], client["session_id_source"]) == (
            "codex",
            thread_id,
            "hook-drop",
        )
        # The hook's client process is the Codex process that started our MCP child: a confirmed drop.
        assert drop["ppid"] == proctree.ppid_of(got["entry"]["server_pid"])
        store = FsStore(box.state)
        deadline = time.monotonic() + 30
        while (marker := store.activity_get(thread_id)) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker is not None and marker.status == "busy"  # UserPromptSubmit ran
    finally:
        server.close()
    assert codex_hooks.hint(env) is None  # trusted, and they ran
