"""Issue 15 item 3: a live agent's session id cannot be taken by another client's server.

Real ``oxtail-mcp`` servers driven by the official MCP client. Direct agents'
servers are children of the test process, so two of them are siblings (one
client process, as a user- and a project-scoped server under one Claude
Code); a pane agent is its own client process, so its server is another
client's.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from oxtail_fs.host import proctree
from tests.support.e2e import sid, world


def _held(result: dict, holder_pid: int) -> None:
    assert result["schema_version"] == 1
    assert result["ok"] is False
    assert result["error"] == "session-held"
    assert result["held_by"]["server_pid"] == holder_pid
    assert result["held_by"]["tmux_session"] == "holder"
    assert result["held_by"]["client_type"] == "unknown"
    assert f"server pid {holder_pid}" in result["message"]
    assert "'holder'" in result["message"]


def test_two_servers_of_one_client_process_share_a_session_and_its_mail(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        proj = w.project("proj")
        user_scoped, project_scoped, sender = w.directs(
            [("u", proj, None), ("p", proj, None), ("s", proj, None)]
        )
        assert user_scoped.claim(sid(1))["ok"] is True
        assert project_scoped.claim(sid(1))["ok"] is True
        assert project_scoped.ok("register_my_session", {"session_id": sid(1)})["ok"] is True
        sender.claim(sid(2))
        assert sender.ok("send_message", {"target": sid(1), "body": "to the agent", "wake": "off"})["ok"]
        got = user_scoped.read()["messages"] + project_scoped.read()["messages"]
        assert [m["body"] for m in got] == ["to the agent"]


def test_a_claim_of_a_live_session_of_another_client_process_is_refused_naming_where_it_is_held(
    tmp_path: Path,
) -> None:
    with world(tmp_path, tmux=True) as w:
        proj = w.project("proj")
        (holder,) = w.panes([("holder", proj, None)])
        thief, sender = w.directs([("thief", proj, None), ("sender", proj, None)])
        holder.claim(sid(1))
        sender.claim(sid(2))
        assert sender.ok("send_message", {"target": sid(1), "body": "for the holder", "wake": "off"})["ok"]
        _held(thief.ok("claim_session", {"session_id": sid(1)}), holder.server_pid())
        _held(thief.ok("register_my_session", {"session_id": sid(1).upper()}), holder.server_pid())
        assert thief.entry()["client"]["session_id"] is None  # nothing changed
        assert thief.read()["count"] == 0
        assert [m["body"] for m in holder.read()["messages"]] == ["for the holder"]
        sent = sender.ok("send_message", {"target": sid(1), "body": "again", "wake": "off"})
        assert sent["target_server_pid"] == holder.server_pid()


@pytest.mark.parametrize(
    "host_env",
    [
        {"CLAUDECODE": "1", "CLAUDE_CODE_SESSION_ID": sid(1)},
        {"CODEX_THREAD_ID": sid(1)},
        {"CODEX_COMPANION_SESSION_ID": sid(1)},
    ],
    ids=["claude", "codex-thread", "codex-companion"],
)
def test_a_claimant_whose_environment_names_the_session_may_take_it(
    tmp_path: Path, host_env: dict[str, str]
) -> None:
    with world(tmp_path, tmux=True) as w:
        proj = w.project("proj")
        (holder,) = w.panes([("holder", proj, None)])
        holder.claim(sid(1))
        (resumed,) = w.directs([("resumed", proj, host_env)])
        assert resumed.entry()["client"]["session_id"] == sid(1)  # adopted at startup: the env is evidence
        assert resumed.claim(sid(1))["ok"] is True


def test_a_claim_without_evidence_works_once_the_holder_is_dead(tmp_path: Path) -> None:
    with world(tmp_path, tmux=True) as w:
        proj = w.project("proj")
        (holder,) = w.panes([("holder", proj, None)])
        (claimant,) = w.directs([("claimant", proj, None)])
        holder.claim(sid(1))
        pid = holder.server_pid()
        assert claimant.ok("claim_session", {"session_id": sid(1)})["error"] == "session-held"
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while proctree.is_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert claimant.ok("claim_session", {"session_id": sid(1)})["ok"] is True
        assert claimant.entry()["client"]["session_id"] == sid(1)
