"""The six discovery tools end to end (discovery.md §6-§8): real servers, real tmux sessions."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from oxtail_mcp.identity import hookdrop
from tests.support.e2e import World, sid, wait_until, world
from tests.support.transcripts import claude_dir

ROW_KEYS = [
    "name",
    "path",
    "attached",
    "created_at",
    "windows",
    "client_type",
    "client_session_id",
    "state",
]
READ_KEYS = [
    "schema_version",
    "session",
    "mode",
    "client_type",
    "messages",
    "pane_text",
    "truncated",
    "count_truncated",
    "bytes_truncated",
    "total_messages",
    "total_messages_exact",
    "resolved_session_id",
    "session_id_source",
    "transcript_mtime",
    "transcript_age_seconds",
    "project_root",
    "inferred",
    "error",
]
ENTRY_KEYS = ["server_pid", "started_at", "tmux_pane", "tmux_session", "client", "state"]
CLIENT_KEYS = ["type", "session_id", "transcript_path", "session_id_source", "cwd"]
ENV_ABSTAIN = (
    "CLAUDE_CODE_SESSION_ID not in MCP env. Claude Code strips it from MCP children (verified across the "
    "full process tree); this is structural, not a bug. The var IS available inside Bash tool subshells."
)
NO_TRANSCRIPT = (
    "no transcript files in ~/.claude/projects/<encoded-cwd> for this cwd; agent may not have started a "
    "transcript yet."
)


def claude_transcript(w: World, cwd: Path, session_id: str, lines: list[dict]) -> Path:
    path = claude_dir(w.home, str(cwd)) / f"{session_id}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines))
    return path


def said(role: str, text: str, second: int) -> dict:
    return {
        "type": role,
        "message": {"role": role, "content": [{"type": "text", "text": text}]},
        "timestamp": f"2026-05-08T13:28:{second:02d}.000Z",
    }


def test_identity_tools(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        proj = w.project("proj")
        claude, from_env, codex, unknown = w.directs(
            [
                ("claude", proj, {"CLAUDECODE": "1"}),
                ("env", proj, {"CLAUDECODE": "1", "CLAUDE_CODE_SESSION_ID": sid(2)}),
                ("codex", proj, {"CODEX_THREAD_ID": sid(3)}),
                ("unknown", proj, None),
            ]
        )
        # An unresolved Claude Code child: the exact diagnosis of discovery.md §6.5.
        got = claude.ok("get_my_session")
        assert list(got) == ["schema_version", "entry", "detect_diagnosis"]
        assert list(got["entry"]) == ENTRY_KEYS and list(got["entry"]["client"]) == CLIENT_KEYS
        assert got["entry"]["client"] == {
            "type": "claude-code",
            "session_id": None,
            "transcript_path": None,
            "session_id_source": None,
            "cwd": str(proj),
        }
        assert (got["entry"]["tmux_pane"], got["entry"]["tmux_session"], got["entry"]["state"]) == (None,) * 3
        assert got["detect_diagnosis"] == {
            "per_strategy": {
                "env": {"abstain": True, "structural": True, "reason": ENV_ABSTAIN},
                "hook-drop": {"abstain": True, "reason": hookdrop.REASON_NO_DROP},
                "birth-time": {"abstain": True, "reason": NO_TRANSCRIPT},
            },
            "winning": None,
            "next_step": {
                "tool": "register_my_session",
                "instruction": "Read your own session id from a Bash tool subshell, then call "
                "register_my_session({ session_id }).",
                "bash_command": "echo $CLAUDE_CODE_SESSION_ID",
            },
        }
        assert list(got["detect_diagnosis"]["per_strategy"]["env"]) == ["abstain", "structural", "reason"]

        expected_path = str(claude_dir(w.home, str(proj)) / f"{sid(1)}.jsonl")
        claimed = claude.call("claim_session", {"session_id": sid(1)})
        assert claimed.text == (
            f'{{"schema_version":1,"ok":true,"session_id":"{sid(1)}","transcript_path":"{expected_path}"}}'
        )
        registered = claude.ok("register_my_session", {"session_id": sid(1)})
        assert list(registered) == ["schema_version", "ok", "entry"]
        assert list(registered["entry"]) == ["server_pid", "started_at", "tmux_session", "client"]
        assert registered["entry"]["client"]["session_id_source"] == "self-register"
        got = claude.ok("get_my_session")
        assert got["detect_diagnosis"] == {
            "per_strategy": {},
            "winning": {
                "session_id": sid(1),
                "source": "self-register",
                "confidence": "high",
                "strategy": "self-register",
            },
            "next_step": None,
        }
        # The env strategy, for both hosts.
        client = from_env.entry()["client"]
        assert (client["type"], client["session_id"], client["session_id_source"]) == (
            "claude-code",
            sid(2),
            "env",
        )
        assert client["transcript_path"].endswith(f"{sid(2)}.jsonl")
        winning = from_env.ok("get_my_session")["detect_diagnosis"]["winning"]
        assert (winning["source"], winning["confidence"]) == ("env", "high")
        client = codex.entry()["client"]
        assert (client["type"], client["session_id"], client["session_id_source"]) == ("codex", sid(3), "env")
        # An unknown client: nothing to detect.
        assert unknown.ok("get_my_session")["detect_diagnosis"] == {
            "per_strategy": {},
            "winning": None,
            "next_step": None,
        }
        # Another explicit claim replaces the identity.
        unknown.claim(sid(4))
        unknown.claim(sid(5))
        assert unknown.entry()["client"]["session_id"] == sid(5)

        # set_my_state: set, touch (keeps the purpose), empty string kept as "".
        state = unknown.call("set_my_state", {"purpose": "refactoring the parser"})
        body = state.json
        assert list(body) == ["schema_version", "ok", "state"] and list(body["state"]) == [
            "purpose",
            "updated_at",
        ]
        assert body["state"]["purpose"] == "refactoring the parser"
        assert abs(body["state"]["updated_at"] - time.time()) < 5
        assert unknown.ok("set_my_state")["state"]["purpose"] == "refactoring the parser"
        assert unknown.entry()["state"]["purpose"] == "refactoring the parser"
        assert unknown.ok("set_my_state", {"purpose": ""})["state"]["purpose"] == ""


def test_birth_time_detection(tmp_path: Path) -> None:
    """A transcript born after the server started is adopted by get_my_session's live detection."""
    with world(tmp_path) as w:
        proj = w.project("proj")
        agent = w.direct("claude", proj, {"CLAUDECODE": "1"})
        started = agent.entry()["started_at"]
        assert wait_until(lambda: time.time() > started + 0.05, 2)
        path = claude_transcript(w, proj, sid(8), [said("user", "hello", 1)])
        got = agent.ok("get_my_session")
        client = got["entry"]["client"]
        assert (client["session_id"], client["session_id_source"], client["transcript_path"]) == (
            sid(8),
            "birth-time",
            str(path),
        )
        # Once known, the id is shown as known (the synthesized diagnosis, with its source).
        winning = agent.ok("get_my_session")["detect_diagnosis"]["winning"]
        assert winning == {
            "session_id": sid(8),
            "source": "birth-time",
            "confidence": "high",
            "strategy": "birth-time",
        }


@pytest.mark.tmux
def test_list_and_read_sessions_in_tmux(tmp_path: Path) -> None:
    with world(tmp_path, tmux=True) as w:
        proj = w.project("proj")
        sub = proj / "sub"
        sub.mkdir()
        other = w.project("other")
        nested = w.project("proj/nested")
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        claude_transcript(
            w,
            proj,
            sid(1),
            [
                said("user", "first question", 1),
                said("assistant", "first answer", 2),
                said("user", "second", 3),
            ],
        )
        w.tmux.new_session("gamma", "printf 'pane-marker-123\\n'; exec cat", cwd=str(proj))
        w.tmux.new_session("delta", "exec cat", cwd=str(other))
        w.tmux.new_session("nest", "exec cat", cwd=str(nested))
        w.tmux.new_session("mover", f"cd {proj} && exec cat", cwd=str(elsewhere))
        # Two pane processes stand for one agent's two MCP children: unlike a real host's children
        # they have different client processes, so the host's env names the id to both (the claim
        # rule's evidence, docs/protocol.md).
        same_agent = {"CLAUDECODE": "1", "CLAUDE_CODE_SESSION_ID": sid(1)}
        alpha, _beta, alpha_2 = w.panes(
            [
                ("alpha", proj, same_agent),
                ("beta", sub, {"CODEX_HOME": str(w.home / ".codex")}),
                ("alpha-2", proj, same_agent),  # a second MCP child of the same agent
            ],
            window_of={"alpha-2": "alpha"},
        )
        (viewer,) = w.directs([("viewer", proj, None)])
        viewer.claim(sid(9))
        alpha_2.claim(sid(1))
        alpha.claim(sid(1))
        # The row shows the freshest child's entry (either one): both publish the same card.
        alpha.ok("set_my_state", {"purpose": "doing a"})
        alpha_2.ok("set_my_state", {"purpose": "doing a"})

        def mover_in_project() -> bool:
            return str(proj) in w.tmux.raw("list-panes", "-a", "-F", "#{session_name}|#{pane_current_path}")

        assert wait_until(mover_in_project, 5)
        flat = viewer.ok("list_project_sessions")
        assert list(flat) == ["schema_version", "project_root", "inferred", "sessions", "error"]
        assert (flat["project_root"], flat["inferred"], flat["error"]) == (str(proj), True, None)
        rows = {row["name"]: row for row in flat["sessions"]}
        assert [row["name"] for row in flat["sessions"]] == ["alpha", "beta", "gamma", "mover"]
        for row in flat["sessions"]:  # alpha's two children (one agent) make one row
            assert list(row) == ROW_KEYS
            assert row["attached"] is False and row["created_at"] > 1_700_000_000
        assert [row["windows"] for row in flat["sessions"]] == [2, 1, 1, 1]
        state = rows["alpha"]["state"]
        assert (rows["alpha"]["path"], rows["alpha"]["client_type"], rows["alpha"]["client_session_id"]) == (
            str(proj),
            "claude-code",
            sid(1),
        )
        assert state["purpose"] == "doing a" and isinstance(state["updated_at"], int)
        assert (rows["beta"]["path"], rows["beta"]["client_type"], rows["beta"]["client_session_id"]) == (
            str(sub),
            "codex",
            None,
        )
        assert rows["beta"]["state"] is None
        for name, path in (("gamma", proj), ("mover", elsewhere)):
            assert (rows[name]["path"], rows[name]["client_type"], rows[name]["client_session_id"]) == (
                str(path),
                None,
                None,
            )

        compact = viewer.ok("list_project_sessions", {"compact": True})
        assert list(compact) == ["schema_version", "project_root", "inferred", "tmux_sessions", "error"]
        groups = compact["tmux_sessions"]
        assert [g["name"] for g in groups] == ["alpha", "beta", "gamma", "mover"]
        assert list(groups[0]) == ["name", "path", "attached", "created_at", "windows", "agents"]
        assert groups[0]["agents"] == [
            {"client_type": "claude-code", "client_session_id": sid(1), "state": rows["alpha"]["state"]}
        ]
        assert groups[2]["agents"] == [] and groups[3]["agents"] == []

        explicit = viewer.ok("list_project_sessions", {"project_root": str(other) + "/"})
        assert (explicit["project_root"], explicit["inferred"]) == (str(other), False)
        assert [row["name"] for row in explicit["sessions"]] == ["delta"]

        # read_session: pane mode for a plain tmux session (any tmux target canonicalizes).
        def read(name: str, **args: object) -> dict:
            body = viewer.ok("read_session", {"name": name, **args})
            assert list(body) == READ_KEYS
            return body

        for name in ("gamma", "gamma:0.0"):
            pane = read(name)
            assert (pane["session"], pane["mode"], pane["client_type"], pane["error"]) == (
                "gamma",
                "pane",
                None,
                None,
            )
            assert "pane-marker-123" in pane["pane_text"] and pane["truncated"] is False
            assert (pane["messages"], pane["total_messages"], pane["total_messages_exact"]) == (
                None,
                None,
                False,
            )
            assert (pane["project_root"], pane["inferred"]) == (str(proj), True)
            assert [pane[k] for k in READ_KEYS[11:15]] == [None] * 4  # a bare tmux target: no provenance

        # Transcript mode for the claimed Claude agent, by tmux name and by UUID.
        for name in ("alpha", sid(1)):
            got = read(name)
            assert (got["session"], got["mode"], got["client_type"], got["error"]) == (
                "alpha",
                "transcript",
                "claude-code",
                None,
            )
            assert got["messages"] == [
                {"role": "user", "text": "first question", "timestamp": None},
                {"role": "assistant", "text": "first answer", "timestamp": None},
                {"role": "user", "text": "second", "timestamp": None},
            ]
            assert (got["total_messages"], got["total_messages_exact"], got["truncated"]) == (3, True, False)
            assert (got["resolved_session_id"], got["session_id_source"]) == (sid(1), "self-register")
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", got["transcript_mtime"])
            assert isinstance(got["transcript_age_seconds"], int) and got["transcript_age_seconds"] >= 0
        got = read("alpha", limit=1, include_timestamps=True)
        assert got["messages"] == [
            {"role": "user", "text": "second", "timestamp": "2026-05-08T13:28:03.000Z"}
        ]
        assert (got["truncated"], got["count_truncated"], got["total_messages"]) == (True, True, 3)
        pane = read("alpha", mode="pane")
        assert (pane["mode"], pane["client_type"], pane["messages"]) == ("pane", "claude-code", None)
        assert isinstance(pane["pane_text"], str)
        # The unclaimed Codex agent has no transcript: auto falls back to its pane.
        got = read("beta")
        assert (got["mode"], got["client_type"]) == ("pane", "codex")
        got = read("beta", mode="transcript")
        assert (got["mode"], got["error"]) == (
            "none",
            "no registry entry with transcript path; agent may not be oxtail-aware",
        )

        # Errors, exact strings of discovery.md §8.2.
        ghost = sid(77)
        got = read(ghost)
        assert (got["session"], got["mode"], got["error"]) == (
            ghost,
            "none",
            f"unknown-or-unclaimed-session: '{ghost}' is not a currently claimed session in this project. "
            "If it is a peer that restarted its MCP server, it must re-run claim_session; if it just "
            "rotated, retry shortly.",
        )
        assert read("delta")["error"] == "session 'delta' not in project scope"
        assert read("nest")["error"] == "session 'nest' not in project scope"
        got = read(sid(9))  # the viewer itself: claimed, in scope, no tmux, unknown client (no transcript)
        assert (
            got["error"]
            == f"session '{sid(9)}' is in scope but has no transcript and no tmux session to read"
        )
        assert read("no-such-session")["error"] == "session 'no-such-session' not in project scope"
