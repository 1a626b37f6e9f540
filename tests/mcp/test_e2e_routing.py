"""Target resolution over real servers: the caller is not a candidate (A46), and a reference (Node)
oxtail on the same state directory is refused, never silently mailed, in both directions (issue 9,
defect 1).

The reference peers are hand-written registry files in the shapes of discovery.md §3.1 (0.15.0) and
0.32.1 (``proc_sig``, ``mailbox_key``), for a live process; and, where a built reference is on the
machine (``/tmp/ref/v<version>/dist/server.js``), the real reference server driven by the official
MCP client with the same ``HOME``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.e2e import DirectAgent, World, sid, world

REFERENCE_BUILDS = {version: Path(f"/tmp/ref/v{version}/dist/server.js") for version in ("0.15.0", "0.32.1")}


@pytest.mark.tmux
def test_a_tmux_name_shared_with_one_unclaimed_peer_resolves_to_it_and_a_crowd_is_ambiguous(
    tmp_path: Path,
) -> None:
    with world(tmp_path, tmux=True) as w:
        proj = w.project("proj")
        me, peer = w.panes([("shared", proj, None), ("peer", proj, None)], window_of={"peer": "shared"})
        me.claim(sid(1))
        assert me.entry()["tmux_session"] == peer.entry()["tmux_session"] == "shared"

        got = me.ok("send_message", {"target": "shared", "body": "please claim"})
        assert got["ok"] is True and got["target_session_id"] is None
        assert got["target_server_pid"] == peer.server_pid()
        assert [m["body"] for m in peer.read()["messages"]] == ["please claim"]
        assert peer.call("send_message", {"target": "shared", "body": "x"}).json["ok"] is True  # and back

        (third,) = w.panes([("third", proj, None)], window_of={"third": "shared"})
        third.claim(sid(3))
        got = me.call("send_message", {"target": "shared", "body": "x"}).json
        assert got == {
            "schema_version": 1,
            "ok": False,
            "error": "ambiguous-target",
            "candidates": [sid(3)],
            "note": (
                "1 peer(s) sharing tmux session 'shared' have not claimed a session_id and cannot be "
                "addressed by UUID; have them run claim_session."
            ),
        }
        assert [m["body"] for m in me.read()["messages"]] == ["x"]  # only peer's send; nothing for us here
        (solo,) = w.panes([("solo", proj, None)])
        solo.claim(sid(4))
        assert solo.call("send_message", {"target": "solo", "body": "x"}).json == {
            "schema_version": 1,
            "ok": False,
            "error": "self-send",
        }


# ------------------------------------------------------------------------------- reference peers


def _reference_entry(pid: int, session_id: str, cwd: Path, *, v0321: bool) -> dict:
    entry: dict = {
        "server_pid": pid,
        "started_at": 1_780_000_000,
        "client": {
            "type": "claude-code",
            "session_id": session_id,
            "transcript_path": None,
            "session_id_source": "env",
            "cwd": str(cwd),
        },
        "tmux_pane": None,
        "tmux_session": None,
        "state": None,
        "capabilities": {"mailbox": {"reply_to": True, "provenance": True, "push_budget": True}},
    }
    if v0321:
        entry["proc_sig"] = "Wed Dec  2 00:04:17 2026"
        entry["mailbox_key"] = "0123456789abcdef0123456789abcdef"
        entry["capabilities"]["mailbox"].update(session_keyed=True, obligations=True)
    return entry


@pytest.fixture
def live_pid(tmp_path: Path) -> Iterator[int]:
    """A live process to stand for a reference server (its registry file is written by hand).

    It runs in the project ``proj`` its entry names: scope is decided by where a process
    really works, not by what its entry says (issue 15 item 11).
    """
    proj = tmp_path / "proj"
    proj.mkdir(exist_ok=True)
    proc = subprocess.Popen(["sleep", "600"], cwd=proj)
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def _same_home(w: World) -> None:
    """Our servers use ``$HOME/.oxtail``, the one directory the reference knows."""
    w.oxtail_home = w.home / ".oxtail"


def _files_under(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


@pytest.mark.parametrize("v0321", [False, True], ids=["0.15.0-shaped", "0.32.1-shaped"])
def test_a_send_to_a_hand_written_reference_peer_is_refused_and_mails_nothing(
    tmp_path: Path, live_pid: int, v0321: bool
) -> None:
    with world(tmp_path) as w:
        _same_home(w)
        proj = w.project("proj")
        (me,) = w.directs([("me", proj, {"OXTAIL_HOME": str(w.oxtail_home)})])
        me.claim(sid(1))
        sessions = w.oxtail_home / "sessions"
        sessions.mkdir(mode=0o700)
        (sessions / f"{live_pid}.json").write_text(
            json.dumps(_reference_entry(live_pid, sid(2), proj, v0321=v0321), indent=2)
        )
        before = _files_under(w.oxtail_home / "inboxes")
        for tool, args in (
            ("send_message", {"target": sid(2), "body": "hello"}),
            ("send_message", {"target": sid(2), "body": "hello", "wake": "auto"}),
            ("ask_peer", {"target": sid(2), "body": "?", "timeout_ms": 1000}),
        ):
            got = me.call(tool, args).json
            assert (got["ok"], got["error"]) == (False, "foreign-peer"), (tool, got)
            assert f"server pid {live_pid}" in got["message"], got
        assert _files_under(w.oxtail_home / "inboxes") == before
        assert not (w.oxtail_home / "mailboxes").exists()
        assert (sessions / f"{live_pid}.json").is_file()  # the reference's own entry: never reaped by us
        assert [f.name for f in sessions.iterdir()] == [f"{live_pid}.json"]  # and ours is not there


def _reference_agent(w: World, version: str, cwd: Path) -> DirectAgent:
    from mcp import StdioServerParameters

    env = w.env()
    env.pop("OXTAIL_HOME", None)  # the reference knows only $HOME/.oxtail
    agent = DirectAgent(f"node-{version}", env, cwd, w.server_log)
    agent.holder.params = StdioServerParameters(
        command="node", args=[str(REFERENCE_BUILDS[version])], env=env, cwd=str(cwd)
    )
    w.agents.append(agent)
    return agent.start()


@pytest.mark.parametrize("version", sorted(REFERENCE_BUILDS))
def test_the_real_reference_and_ours_on_one_home_refuse_each_other_visibly(
    tmp_path: Path, version: str
) -> None:
    if not REFERENCE_BUILDS[version].is_file() or shutil.which("node") is None:
        pytest.skip(f"no built reference {version} at {REFERENCE_BUILDS[version]}")
    with world(tmp_path) as w:
        _same_home(w)
        proj = w.project("proj")
        (ours,) = w.directs([("ours", proj, {"OXTAIL_HOME": str(w.oxtail_home)})])
        ours.claim(sid(1))
        node = _reference_agent(w, version, proj)
        assert node.ok("claim_session", {"session_id": sid(2)})["ok"] is True
        node_pid = node.ok("get_my_session")["entry"]["server_pid"]

        # The reference cannot see us: its send fails visibly instead of vanishing.
        for body in ("hello from node", "again"):
            got = node.ok("send_message", {"target": sid(1), "body": body})
            assert (got["ok"], got["error"]) == (False, "target-not-found"), got
        # We see it, and refuse to mail it: it would never read our inbox.
        got = ours.call("send_message", {"target": sid(2), "body": "hello from ours"}).json
        assert (got["ok"], got["error"]) == (False, "foreign-peer"), got
        assert ours.ok("read_my_messages")["messages"] == []
        assert node.ok("read_my_messages")["messages"] == []
        assert (w.oxtail_home / "sessions" / f"{node_pid}.json").is_file()
        assert not (w.oxtail_home / "sessions" / f"{ours.server_pid()}.json").exists()
