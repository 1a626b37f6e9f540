"""The README's main job works: both demos run to the end and show what they promise."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_core_demo() -> None:
    out = _run(str(EXAMPLES / "core_demo.py"))
    assert "filesystem store" in out
    assert '"body":"bob says: 42"' in out
    assert '"timed_out":true' in out
    assert "late_reply_to_pending" in out and '"body":"carol says: 42"' in out


def test_mcp_demo_without_tmux() -> None:
    out = _run(str(EXAMPLES / "mcp_demo.py"), "--no-tmux")
    assert '"body": "bob says: 42"' in out
    assert '"timed_out": true' in out
    assert '"wake_reason": "late_reply_to_pending"' in out
    assert "carol says: 42 (sorry, slow)" in out.split("read_my_messages ->")[-1]


@pytest.mark.tmux
@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_mcp_demo_wakes_bob_through_his_pane() -> None:
    out = _run(str(EXAMPLES / "mcp_demo.py"))
    terminal = out.split("bob's terminal:")[-1]
    assert "terminal received: 'oxtail msg: read_my_messages, then act on it" in terminal
    assert "[bob] replied:" in terminal
    ask = next(line for line in out.splitlines() if "ask_peer ->" in line and "bob says" in line)
    assert '"wake_status": "fired_unconfirmed"' in ask  # bob has no hooks: keys landed, pickup unconfirmed
