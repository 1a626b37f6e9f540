"""Claude Code 2.1.197 with our server and hooks, registered the way ``oxtail-mcp print-config`` says."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from oxtail_core.ids import hash32
from oxtail_mcp.transcripts.files import encode_cwd
from tests.clients.clientbox import BARE_SERVER, SERVER, Box, print_config_blocks

pytestmark = pytest.mark.clients


def register_as_documented(box: Box, *, bare: bool = False) -> None:
    config, _ = print_config_blocks()
    if bare:
        config["mcpServers"]["bare"] = {"command": sys.executable, "args": [str(BARE_SERVER)]}
    (box.home / ".claude.json").write_text(json.dumps(config))


def connect_ms(debug_log: Path, server: str) -> int:
    """What Claude Code itself reports: ``MCP server "<name>": Successfully connected … in <N>ms``."""
    found = re.search(
        rf'MCP server "{server}": Successfully connected \(transport: stdio\) in (\d+)ms',
        debug_log.read_text(),
    )
    assert found, f"no connect line for {server} in {debug_log}"
    return int(found.group(1))


def test_claude_mcp_list_and_get_report_our_server_connected_when_registered_as_print_config_says(
    box: Box, claude: Path
) -> None:
    register_as_documented(box, bare=True)
    debug = box.home / "mcp-list.log"
    listed = box.run(claude, "--debug-file", debug, "mcp", "list")
    assert listed.returncode == 0, listed.stderr
    assert f"oxtail: {SERVER}  - ✔ Connected" in listed.stdout
    got = box.run(claude, "mcp", "get", "oxtail")
    assert got.returncode == 0, got.stderr
    assert "Scope: User config (available in all your projects)" in got.stdout
    assert "Status: ✔ Connected" in got.stdout
    ours, bare = connect_ms(debug, "oxtail"), connect_ms(debug, "bare")
    print(f"\nclaude mcp list connect: oxtail {ours} ms, bare SDK {bare} ms")


def test_claude_p_not_logged_in_still_runs_our_installed_hooks_and_the_activity_marker_appears(
    box: Box, claude: Path
) -> None:
    register_as_documented(box)
    installed = box.run(SERVER, "install-hook")
    assert installed.returncode == 0 and "Installed oxtail hooks" in installed.stdout, installed.stderr
    session_id = str(uuid.uuid4())
    marker = box.state / "activity" / hash32(session_id)
    assert not marker.exists()
    ran = box.run(claude, "-p", "hello", "--session-id", session_id)
    assert "Not logged in" in ran.stdout + ran.stderr
    assert marker.is_file(), (
        f"UserPromptSubmit left no marker; activity/: {list((box.state / 'activity').glob('*'))}"
    )


def call_our_server(box: Box, cwd: Path, env: dict[str, str], tool: str, args: dict) -> dict:
    """One tool call on a fresh ``oxtail-mcp`` started the way Claude Code starts it (same env shape)."""
    import anyio
    from mcp import ClientSession, StdioServerParameters, stdio_client

    params = StdioServerParameters(command=SERVER, args=[], env=env, cwd=str(cwd))

    async def go() -> dict:
        async with stdio_client(params) as (r, w), ClientSession(r, w) as session:
            await session.initialize()
            result = await session.call_tool(tool, args)
            return json.loads(result.content[0].text)

    return anyio.run(go)


@pytest.mark.parametrize("config_dir", [None, "alt config"], ids=["default", "CLAUDE_CONFIG_DIR"])
def test_read_session_finds_a_real_claude_transcript_in_a_directory_named_like_my_proj_x_y(
    box: Box, claude: Path, config_dir: str | None
) -> None:
    project = box.home / "my.proj_x y"
    project.mkdir()
    env = dict(box.env)
    if config_dir is not None:
        env["CLAUDE_CONFIG_DIR"] = str(box.home / config_dir)
    session_id = str(uuid.uuid4())
    box.run(claude, "-p", "hello from a dotted dir", "--session-id", session_id, cwd=project, env=env)
    projects = Path(env.get("CLAUDE_CONFIG_DIR") or box.home / ".claude") / "projects"
    written = list(projects.glob(f"*/{session_id}.jsonl"))
    assert [path.parent.name for path in written] == [encode_cwd(str(project))]

    server_env = {**env, "CLAUDECODE": "1", "CLAUDE_CODE_SESSION_ID": session_id}
    got = call_our_server(
        box, project, server_env, "read_session", {"name": session_id, "mode": "transcript"}
    )
    assert (got["mode"], got["client_type"], got["error"]) == ("transcript", "claude-code", None)
    assert {"role": "user", "text": "hello from a dotted dir", "timestamp": None} in got["messages"]


def test_claude_p_runs_our_sessionstart_hook_and_leaves_the_auto_join_drop(box: Box, claude: Path) -> None:
    register_as_documented(box)
    installed = box.run(SERVER, "install-hook")
    assert "SessionStart" in installed.stdout, installed.stderr
    session_id = str(uuid.uuid4())
    proc = subprocess.Popen(
        [str(claude), "-p", "hello", "--session-id", session_id],
        cwd=box.project,
        env=box.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    proc.wait(timeout=90)
    drop_path = box.state / "session-starts" / hash32(session_id)
    assert drop_path.is_file(), f"no drop; session-starts/: {list((box.state / 'session-starts').glob('*'))}"
    drop = json.loads(drop_path.read_text())
    assert drop["client"] == "claude-code"
    assert (drop["payload"]["session_id"], drop["payload"]["cwd"]) == (session_id, str(box.project))
    assert drop["payload"]["source"] == "startup"
    assert isinstance(drop["client_start"], float)
    # Claude Code runs the hook under a `/bin/sh -c` that does not exec it: the drop names Claude itself.
    assert drop["ppid"] == proc.pid
