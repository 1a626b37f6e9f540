"""The hook runs before every tool call: delivering mail must not load what serving needs.

psutil, ctypes (inotify), cattrs, asyncio, the MCP SDK and the cockpit's Textual each cost a
hook milliseconds it has no use for; this test runs the real hook with mail queued
and reads which modules it imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from oxtail_core.model import Envelope
from oxtail_core.routing import session_inbox
from oxtail_fs.store.fs_store import FsStore

SESSION = "12345678-1234-4234-8234-123456789abc"
SHARED_RULES = {"oxtail_core", "oxtail_core.naming"}  # the stdlib-only naming rules (lazy package init)
HEAVY = (
    *("psutil", "ctypes", "cattrs", "asyncio", "mcp", "anyio", "portalocker", "oxtail_core.routing"),
    *("textual", "rich", "oxtail_mcp.cockpit"),  # the cockpit's UI: a package import lists the package itself
    "tomlkit",  # setup edits config.toml with it; a hook never needs it
)


def test_delivering_hook_imports_nothing_heavy(tmp_path: Path) -> None:
    store = FsStore(tmp_path)
    store.append(session_inbox(SESSION), [Envelope(id="00000000000000a1", body="hi", enqueued_at=1)])
    payload = json.dumps({"session_id": SESSION, "hook_event_name": "PreToolUse", "tool_name": "Bash"})
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "oxtail_mcp", "hook", "pretooluse"],
        input=payload.encode(),
        env=dict(os.environ, OXTAIL_HOME=str(tmp_path)),
        capture_output=True,
        check=True,
    )
    assert b"1 new peer message(s)" in done.stdout  # it really delivered
    imported = {line.split("|")[-1].strip() for line in done.stderr.decode().splitlines() if "|" in line}
    loaded = sorted(name for name in imported if name.split(".")[0] in HEAVY or name in HEAVY)
    assert loaded == [], f"the delivering hook imported {loaded}"


def test_the_sessionstart_hook_imports_nothing_heavy_and_not_the_store(tmp_path: Path) -> None:
    payload = json.dumps({"session_id": SESSION, "cwd": str(tmp_path), "hook_event_name": "SessionStart"})
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "oxtail_mcp", "hook", "sessionstart"],
        input=payload.encode(),
        env=dict(os.environ, OXTAIL_HOME=str(tmp_path)),
        capture_output=True,
        check=True,
    )
    assert done.stdout == b"" and len(list((tmp_path / "session-starts").iterdir())) == 1  # it wrote its drop
    imported = {line.split("|")[-1].strip() for line in done.stderr.decode().splitlines() if "|" in line}
    loaded = sorted(
        name
        for name in imported
        if name.split(".")[0] in HEAVY
        or name in HEAVY
        or name.startswith(("oxtail_fs.store.fs_store", "attrs"))
        or (name.startswith("oxtail_core") and name not in SHARED_RULES)
    )
    assert loaded == [], f"the SessionStart hook imported {loaded}"
