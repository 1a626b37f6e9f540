"""Running the real ``oxtail-mcp hook ...`` subprocess with Claude Code payloads (hook test helpers).

The mail reaches the session inbox through the core (a :class:`Peer` on the
same FsStore), exactly as a peer's ``send_message`` would put it there, or as
raw inbox lines where a test needs a line the core would not mint.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from oxtail_core import Context, MemoryHost, Peer, RecordingWaker, Sent, SystemClock
from oxtail_core.ids import canonical_session_id
from oxtail_fs.store.fs_store import FsStore

HOOK = str(Path(sys.executable).with_name("oxtail-mcp"))
ME = "5b0c2f1e-6a7d-4c1e-9f00-0123456789ab"
SENDER = "aaaaaaaa-0000-4000-8000-000000000001"
EVENT_NAMES = {"pretooluse": "PreToolUse", "stop": "Stop", "userpromptsubmit": "UserPromptSubmit"}


def two_peers(store: FsStore) -> tuple[Peer, Peer]:
    """(sender, me): two agents on the hook's store; fake pids, alive as far as the core is told."""
    ctx = Context(store, RecordingWaker(), SystemClock(), MemoryHost())
    return Peer.join(ctx, 4_000_001, session_id=SENDER), Peer.join(ctx, 4_000_002, session_id=ME)


def send(sender: Peer, body: str, to: str = ME) -> str:
    """Deliver ``body`` to ``to`` through the core; the new message's id."""
    sent = sender.send(to, body, wake="off")
    assert isinstance(sent, Sent)
    return sent.message_id


def payload(event: str, sid: str = ME, **extra: Any) -> bytes:
    """The compact JSON Claude Code writes to the hook's stdin for ``event``."""
    data: dict[str, Any] = {
        "session_id": sid,
        "transcript_path": "/home/dev/.claude/projects/p/x.jsonl",
        "cwd": "/home/dev/p",
        "hook_event_name": EVENT_NAMES[event],
    }
    if event == "pretooluse":
        data |= {"tool_name": "Bash", "tool_input": {"command": "ls"}}
    if event == "stop":
        data["stop_hook_active"] = False
    data |= extra
    return json.dumps(data, separators=(",", ":")).encode()


def hook_env(home: Path, extra_env: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ, OXTAIL_HOME=str(home), HOME=str(home.parent))
    env.pop("OXTAIL_HOOK_MAX_BODY_CHARS", None)
    return env | (extra_env or {})


def run_hook(
    home: Path, event: str, stdin: bytes, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run the hook to completion; it must exit 0 and write nothing to stderr."""
    done = subprocess.run(
        [HOOK, "hook", event],
        input=stdin,
        env=hook_env(home, extra_env),
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0
    assert done.stderr == b""
    return done


def context_of(out: bytes) -> str:
    """The ``additionalContext`` of a PreToolUse delivery (checking the envelope's shape)."""
    doc = json.loads(out)
    assert list(doc) == ["hookSpecificOutput"]
    assert doc["hookSpecificOutput"]["hookEventName"] == "PreToolUse"
    text = doc["hookSpecificOutput"]["additionalContext"]
    assert isinstance(text, str)
    return text


def marker(store: FsStore, sid: str = ME) -> str | None:
    found = store.activity_get(canonical_session_id(sid))
    return None if found is None else found.status
