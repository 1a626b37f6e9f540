"""File reservations end to end: real ``oxtail-mcp`` servers over stdio (the official MCP client), a
real git repository with the guard installed, a real SIGKILL of the holder's server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil

from tests.support.e2e import DirectAgent, World, sid, wait_until, world

GRACE = {"OXTAIL_RESERVATION_GRACE_MS": "300"}
PREFIX = "MCP error -32602: Input validation error: Invalid arguments for tool {}: "


def git_repo(w: World) -> Path:
    proj = w.project("proj", git=False)
    for args in (
        ["init", "-q", "-b", "main"],
        ["config", "user.email", "t@x.invalid"],
        ["config", "user.name", "t"],
    ):
        subprocess.run(["git", *args], cwd=proj, check=True, timeout=30)
    (proj / "src").mkdir()
    (proj / "src" / "a.py").write_text("a = 1\n")
    subprocess.run(["git", "add", "-A"], cwd=proj, check=True, timeout=30)
    subprocess.run(["git", "commit", "-q", "-m", "init"], cwd=proj, check=True, timeout=30)
    return proj


def commit_as(w: World, proj: Path, session: str, rel: str) -> subprocess.CompletedProcess[str]:
    (proj / rel).write_text(f"edited by {session}\n")
    subprocess.run(["git", "add", "-A"], cwd=proj, check=True, timeout=30)
    env = w.env({"CLAUDE_CODE_SESSION_ID": session, **GRACE})
    return subprocess.run(
        ["git", "commit", "-q", "-m", f"{session} edits {rel}"],
        cwd=proj,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def issues(agent: DirectAgent, tool: str, args: dict) -> list[dict]:
    result = agent.call(tool, args)
    assert result.is_error, result
    assert result.text.startswith(PREFIX.format(tool)), result.text
    return json.loads(result.text[len(PREFIX.format(tool)) :])


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_reservation_is_seen_by_peers_refuses_their_commit_and_ends_with_its_holders_server(
    tmp_path: Path,
) -> None:
    with world(tmp_path) as w:
        proj = git_repo(w)
        a, b = w.directs([("a", proj, GRACE), ("b", proj, GRACE)])
        a.claim(sid(1))
        b.claim(sid(2))
        client_type = a.entry()["client"]["type"]

        mine = a.ok("reserve_paths", {"paths": ["src/*.py"], "reason": "parser rewrite", "ttl_s": 600})
        assert list(mine) == ["granted", "conflicts", "expires_at"]
        assert mine["granted"] == ["src/*.py"] and mine["conflicts"] == []
        theirs = b.ok("reserve_paths", {"paths": ["src/a.py", "docs/"]})
        assert theirs["granted"] == ["docs/"]
        assert theirs["conflicts"] == [
            {
                "pattern": "src/a.py",
                "holder_session_id": sid(1),
                "holder_tmux": None,
                "client_type": client_type,
                "reason": "parser rewrite",
                "exclusive": True,
                "expires_at": mine["expires_at"],
            }
        ]
        (notice,) = a.read()["messages"]  # the holder hears of it, from the one refused
        assert notice["from_session_id"] == sid(2) and "I asked to reserve src/a.py" in notice["body"]
        b.ok("reserve_paths", {"paths": ["src/a.py"]})
        assert a.read()["messages"] == []  # once per collision
        listed = b.ok("list_reservations")
        assert listed["project_root"] == os.path.realpath(proj)
        assert [(r["pattern"], r["holder_session_id"]) for r in listed["reservations"]] == [
            ("src/*.py", sid(1)),
            ("docs/", sid(2)),
        ]
        only = b.ok("list_reservations", {"path": "src/a.py"})["reservations"]
        assert [r["pattern"] for r in only] == ["src/*.py"]

        installed = subprocess.run(
            [sys.executable, "-m", "oxtail_mcp", "guard", "install"],
            cwd=proj,
            env=w.env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert installed.returncode == 0, installed.stderr
        refused = commit_as(w, proj, sid(2), "src/a.py")
        assert refused.returncode != 0
        assert f"src/a.py: src/*.py held by session {sid(1)}" in refused.stderr
        assert "parser rewrite" in refused.stderr

        holder_pid = a.server_pid()
        os.kill(holder_pid, signal.SIGKILL)
        assert wait_until(lambda: gone(holder_pid), 10)
        granted = wait_until(lambda: b.ok("reserve_paths", {"paths": ["src/a.py"]})["granted"], 10, 0.05)
        assert granted == ["src/a.py"]
        assert [r["holder_session_id"] for r in b.ok("list_reservations")["reservations"]] == [sid(2), sid(2)]
        allowed = commit_as(w, proj, sid(2), "src/a.py")
        assert allowed.returncode == 0, allowed.stderr

        assert b.ok("release_paths", {"paths": ["docs/"]}) == {"released": ["docs/"]}
        assert b.ok("release_paths") == {"released": ["src/a.py"]}
        assert b.ok("list_reservations")["reservations"] == []


def test_bad_paths_and_limits_are_refused_with_structured_errors_and_reserve_nothing(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        proj = w.project("proj")
        (agent,) = w.directs([("a", proj, None)])
        agent.claim(sid(1))
        got = issues(agent, "reserve_paths", {"paths": ["/etc/passwd", "../up", "ok.py", "src/[x"]})
        assert [i["path"] for i in got] == [["paths", 0], ["paths", 1], ["paths", 3]]
        assert "outside the project root" in got[0]["message"]
        assert ". and .." in got[1]["message"] and "unclosed [" in got[2]["message"]
        assert agent.ok("list_reservations")["reservations"] == []

        inside = agent.ok("reserve_paths", {"paths": [f"{proj}/src/a.py", "./b.py"]})
        assert inside["granted"] == ["src/a.py", "b.py"]

        assert issues(agent, "reserve_paths", {"paths": []})[0]["code"] == "too_small"
        assert issues(agent, "reserve_paths", {"paths": ["x"] * 101})[0]["code"] == "too_big"
        assert issues(agent, "reserve_paths", {"paths": ["a", 7]})[0]["path"] == ["paths", 1]
        assert issues(agent, "reserve_paths", {"paths": ["a" * 513]})[0]["path"] == ["paths", 0]
        assert issues(agent, "reserve_paths", {"paths": "src/a.py"})[0]["code"] == "invalid_type"
        assert issues(agent, "reserve_paths", {"paths": ["a"], "ttl_s": 59})[0]["path"] == ["ttl_s"]
        assert issues(agent, "reserve_paths", {"paths": ["a"], "ttl_s": 86_401})[0]["path"] == ["ttl_s"]
        assert issues(agent, "reserve_paths", {"paths": ["a"], "reason": "r" * 201})[0]["path"] == ["reason"]
        assert issues(agent, "list_reservations", {"path": "../x"})[0]["path"] == ["path"]


def test_a_session_without_an_id_is_told_to_claim_one(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        (agent,) = w.directs([("a", w.project("proj"), None)])
        assert agent.entry()["client"]["session_id"] is None
        body = agent.ok("reserve_paths", {"paths": ["a.py"]})
        assert body["ok"] is False and body["error"] == "no-session-id" and "claim_session" in body["message"]


def test_two_agents_in_real_tmux_panes_reserve_collide_and_hand_over(tmp_path: Path) -> None:
    """The issue's scenario with pane agents: the holder's tmux session is what the peer is told."""
    with world(tmp_path, tmux=True) as w:
        proj = git_repo(w)
        a, b = w.panes([("alpha", proj, GRACE), ("beta", proj, GRACE)])
        a.claim(sid(1))
        b.claim(sid(2))
        assert a.ok("reserve_paths", {"paths": ["src/*.py"]})["granted"] == ["src/*.py"]
        (conflict,) = b.ok("reserve_paths", {"paths": ["src/a.py"]})["conflicts"]
        assert (conflict["holder_session_id"], conflict["holder_tmux"]) == (sid(1), "alpha")
        subprocess.run(
            [sys.executable, "-m", "oxtail_mcp", "guard", "install"],
            cwd=proj,
            env=w.env(),
            check=True,
            timeout=60,
        )
        refused = commit_as(w, proj, sid(2), "src/a.py")
        assert refused.returncode != 0 and "(tmux alpha" in refused.stderr
        holder_pid = a.server_pid()
        os.kill(holder_pid, signal.SIGKILL)
        assert wait_until(lambda: gone(holder_pid), 10)
        granted = wait_until(lambda: b.ok("reserve_paths", {"paths": ["src/a.py"]})["granted"], 10, 0.05)
        assert granted == ["src/a.py"]
        assert commit_as(w, proj, sid(2), "src/a.py").returncode == 0


def test_our_three_tools_are_listed_after_the_reference_ones_with_their_limits(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        (agent,) = w.directs([("a", w.project("proj"), None)])
        listed = agent._portal.call(agent.holder.session.list_tools).tools
        ours = {t.name: t.input_schema for t in listed[-3:]}
        assert list(ours) == ["reserve_paths", "release_paths", "list_reservations"]
        paths = dict(ours["reserve_paths"]["properties"]["paths"])
        assert paths.pop("description")
        assert paths == {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": 512},
            "minItems": 1,
            "maxItems": 100,
        }
        assert ours["reserve_paths"]["required"] == ["paths"]
        assert ours["reserve_paths"]["properties"]["ttl_s"]["maximum"] == 86_400
        assert ours["reserve_paths"]["properties"]["reason"]["maxLength"] == 200
        assert "required" not in ours["release_paths"] and "required" not in ours["list_reservations"]


def test_a_reservation_survives_its_holders_server_restart(tmp_path: Path) -> None:
    """It belongs to the session: the new server of the same session holds it (default grace)."""
    with world(tmp_path) as w:
        proj = w.project("proj")
        a, b = w.directs([("a", proj, None), ("b", proj, None)])
        a.claim(sid(1))
        b.claim(sid(2))
        first = a.ok("reserve_paths", {"paths": ["src/*.py"]})
        old_pid = a.server_pid()
        a.restart()
        assert a.server_pid() != old_pid and wait_until(lambda: gone(old_pid), 10)
        assert b.ok("reserve_paths", {"paths": ["src/a.py"]})["conflicts"][0]["holder_session_id"] == sid(1)
        a.claim(sid(1))
        renewed = a.ok("reserve_paths", {"paths": ["src/*.py"]})
        assert renewed["granted"] == ["src/*.py"] and renewed["expires_at"] >= first["expires_at"]
        assert [r["holder_session_id"] for r in b.ok("list_reservations")["reservations"]] == [sid(1)]
