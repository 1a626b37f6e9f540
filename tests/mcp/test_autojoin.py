"""SessionStart auto-join end to end: the installed hook, run by a (fake) Claude Code process, and the
server that process starts, which knows its session without any claim (selfheal §3)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from oxtail_core.naming import canonical_session_id, hash32
from oxtail_fs.host import proctree
from tests.support.e2e import SERVER_COMMAND, base_env, sid, wait_until
from tests.support.transcripts import claude_dir

FAKE_CLAUDE = Path(__file__).parents[1] / "support" / "fake_claude.py"


class Box:
    """A HOME with our hooks installed by the real ``install-hook``, and a project in it."""

    def __init__(self, tmp_path: Path) -> None:
        self.home = tmp_path / "home"
        self.state = tmp_path / "oxtail"
        self.project = tmp_path / "proj"
        self.project.mkdir(parents=True)
        (tmp_path / "tmux").mkdir()
        self.env = base_env(self.home, self.state, tmp_path / "tmux", {"CLAUDECODE": "1"})
        done = subprocess.run(
            [SERVER_COMMAND, "install-hook"], env=self.env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
        self.settings = self.home / ".claude" / "settings.json"

    def session(self, session_id: str, calls: list[str], cwd: Path | None = None) -> dict[str, Any]:
        """One fake Claude Code session: SessionStart hooks, then its MCP child; returns what it saw."""
        spec = {
            "settings": str(self.settings),
            "cwd": str(cwd or self.project),
            "env": self.env,
            "server": SERVER_COMMAND,
            "session_id": session_id,
            "transcript_path": str(self.home / "ignored.jsonl"),
            "calls": calls,
        }
        path = self.home / f"spec-{session_id}.json"
        path.write_text(json.dumps(spec))
        done = subprocess.run(
            [sys.executable, str(FAKE_CLAUDE), str(path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    def drop(self, session_id: str) -> Path:
        return self.state / "session-starts" / hash32(canonical_session_id(session_id))


@pytest.fixture
def box(tmp_path: Path) -> Box:
    return Box(tmp_path)


def test_a_fresh_claude_session_knows_its_id_from_the_sessionstart_drop_without_any_claim(box: Box) -> None:
    seen = box.session(sid(1), ["get_my_session"])
    assert seen["hooks"] == [{"rc": 0, "stdout": "", "stderr": ""}]  # SessionStart stdout reaches the model
    got = seen["results"][0]
    client = got["entry"]["client"]
    assert (client["type"], client["session_id"], client["session_id_source"]) == (
        "claude-code",
        sid(1),
        "hook-drop",
    )
    assert client["transcript_path"] == str(claude_dir(box.home, str(box.project)) / f"{sid(1)}.jsonl")
    assert got["detect_diagnosis"]["winning"] == {
        "session_id": sid(1),
        "source": "hook-drop",
        "confidence": "medium",  # the cached path reads medium even for a confirmed drop (§3.2)
        "strategy": "hook-drop",
    }


def test_the_drop_records_the_client_process_not_the_sh_that_ran_the_hook(box: Box) -> None:
    seen = box.session(sid(2), [])
    drop = json.loads(box.drop(sid(2)).read_text())
    assert drop["ppid"] == seen["pid"]  # the fake Claude Code, one above the `sh -c` (S30)
    assert drop["ppid_sig"] == ""
    assert drop["client"] == "claude-code"
    assert drop["payload"]["session_id"] == sid(2) and drop["payload"]["cwd"] == str(box.project)
    assert isinstance(drop["client_start"], float)
    assert stat.S_IMODE(box.drop(sid(2)).stat().st_mode) == 0o600
    assert stat.S_IMODE(box.drop(sid(2)).parent.stat().st_mode) == 0o700
    assert [p.name for p in box.drop(sid(2)).parent.iterdir()] == [box.drop(sid(2)).name]  # no temp left


def test_a_second_session_in_the_same_project_adopts_its_own_drop_not_the_first_ones(box: Box) -> None:
    """S27/S28: the first session's drop is still there, unconfirmed for the second server."""
    first = box.session(sid(3), ["get_my_session"])["results"][0]["entry"]["client"]
    second = box.session(sid(4), ["get_my_session"])["results"][0]["entry"]["client"]
    assert (first["session_id"], second["session_id"]) == (sid(3), sid(4))
    assert second["session_id_source"] == "hook-drop"


def test_a_server_adopts_only_the_drop_for_its_own_cwd(box: Box, tmp_path: Path) -> None:
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    box.session(sid(5), [])  # leaves a drop for box.project
    spec_env = box.env
    done = subprocess.run(
        [SERVER_COMMAND, "hook", "sessionstart"],
        input=json.dumps({"session_id": sid(6), "cwd": str(box.project)}),
        env=spec_env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    got = box.session(sid(7), ["get_my_session"], cwd=elsewhere)["results"][0]
    client = got["entry"]["client"]
    assert (client["session_id"], client["session_id_source"]) == (sid(7), "hook-drop")


# The hook alone, as the installed command ---------------------------------------------------------------
def hook(env: dict[str, str], data: bytes | None, *, stdin: Any = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [SERVER_COMMAND, "hook", "sessionstart"],
        input=data,
        stdin=stdin,
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_the_hook_prints_nothing_and_writes_nothing_for_empty_or_idless_or_non_json_stdin(box: Box) -> None:
    """S24/S25: every path exits 0 in silence; a payload that is not JSON leaves no drop."""
    for data in (b"", b"not json", b'{"cwd":"/x"}', b'{"session_id":""}', b"[1]", b'{"session_id":7}'):
        done = hook(box.env, data)
        assert (done.returncode, done.stdout, done.stderr) == (0, b"", b""), data
    assert not (box.state / "session-starts").exists()


def test_the_hook_ignores_a_terminal_on_stdin(box: Box) -> None:
    leader, follower = os.openpty()
    try:
        done = hook(box.env, None, stdin=follower)
    finally:
        os.close(leader)
        os.close(follower)
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")
    assert not (box.state / "session-starts").exists()


def test_a_pretty_printed_payload_is_accepted(box: Box) -> None:
    """S25: the reference scanned text for ``"session_id" :``; we parse JSON, so any layout works."""
    data = json.dumps({"session_id": sid(8), "cwd": str(box.project)}, indent=4, separators=(",", " : "))
    assert hook(box.env, data.encode()).returncode == 0
    assert json.loads(box.drop(sid(8)).read_text())["payload"]["session_id"] == sid(8)


def test_an_unwritable_state_dir_or_a_symlinked_drop_dir_means_no_drop_and_no_output(
    box: Box, tmp_path: Path
) -> None:
    """S24: a state dir that is a file; and a session-starts symlink is never written through."""
    blocked = dict(box.env, OXTAIL_HOME=str(tmp_path / "a-file"))
    (tmp_path / "a-file").write_text("")
    payload = json.dumps({"session_id": sid(9), "cwd": str(box.project)}).encode()
    done = hook(blocked, payload)
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")
    target = tmp_path / "elsewhere"
    target.mkdir()
    box.state.mkdir(exist_ok=True)
    (box.state / "session-starts").symlink_to(target)
    again = hook(box.env, payload)
    assert (again.returncode, again.stdout, again.stderr) == (0, b"", b"")
    assert list(target.iterdir()) == []


def test_the_client_start_is_the_kernels_start_time_of_the_client(box: Box) -> None:
    """S23: the signature is a number from /proc, the same the server reads: no text to canonicalize."""
    payload = json.dumps({"session_id": sid(10), "cwd": str(box.project)}).encode()
    assert hook(box.env, payload).returncode == 0
    drop = json.loads(box.drop(sid(10)).read_text())
    assert drop["ppid"] == os.getpid()
    assert drop["client_start"] == proctree.process_start(os.getpid())


def test_a_loose_drop_directory_is_tightened_to_0700(box: Box) -> None:
    (box.state / "session-starts").mkdir(parents=True, mode=0o755)
    os.chmod(box.state / "session-starts", 0o755)
    assert (
        hook(box.env, json.dumps({"session_id": sid(11), "cwd": str(box.project)}).encode()).returncode == 0
    )
    assert stat.S_IMODE((box.state / "session-starts").stat().st_mode) == 0o700
    assert box.drop(sid(11)).is_file()


@pytest.mark.tmux
def test_two_live_claude_sessions_in_one_project_in_tmux_each_join_as_themselves(tmp_path: Path) -> None:
    """S27 with both sessions alive, each in its own pane of a real tmux server: each server adopts the
    drop of the Claude process above it (the other's drop is there too, unconfirmed), binds its pane,
    and a peer addresses both by session id with no claim anywhere."""
    from tests.support.e2e import world

    with world(tmp_path, tmux=True) as w:
        proj = w.project("proj")
        env = w.env({"CLAUDECODE": "1"})
        installed = subprocess.run(
            [SERVER_COMMAND, "install-hook"], env=env, capture_output=True, text=True, check=False
        )
        assert installed.returncode == 0, installed.stderr
        hold = tmp_path / "release"
        panes = {}
        for n in (1, 2):
            spec = {
                "settings": str(w.home / ".claude" / "settings.json"),
                "cwd": str(proj),
                "env": env,
                "server": SERVER_COMMAND,
                "session_id": sid(n),
                "transcript_path": None,
                "calls": ["get_my_session"],
                "out": str(tmp_path / f"seen-{n}.json"),
                "hold": str(hold),
            }
            (tmp_path / f"spec-{n}.json").write_text(json.dumps(spec))
            command = (
                f"exec {sys.executable} {FAKE_CLAUDE} {tmp_path / f'spec-{n}.json'} 2>>{tmp_path}/c{n}.log"
            )
            panes[n] = w.tmux.new_session(f"claude-{n}", command, cwd=str(proj))
        try:
            assert wait_until(lambda: all((tmp_path / f"seen-{n}.json").exists() for n in (1, 2)), 60)
            for n in (1, 2):
                entry = json.loads((tmp_path / f"seen-{n}.json").read_text())["results"][0]["entry"]
                assert (entry["client"]["session_id"], entry["client"]["session_id_source"]) == (
                    sid(n),
                    "hook-drop",
                )
                assert entry["tmux_pane"] == panes[n]
            peer = w.direct("peer", proj)
            peer.claim(sid(9))
            for n in (1, 2):
                sent = peer.ok("send_message", {"target": sid(n), "body": f"hi {n}", "wake": "off"})
                assert sent["ok"] is True and sent["target_session_id"] == sid(n)
        finally:
            hold.write_text("")
