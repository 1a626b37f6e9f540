"""``oxtail-mcp status``: the collected rows, the table, --json, and --watch's clean Ctrl-C exit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from oxtail_core import (
    ActivityMarker,
    ClientInfo,
    Context,
    Envelope,
    FakeClock,
    MemoryHost,
    MemoryStore,
    Peer,
    PendingAsk,
    RecordingWaker,
    RegistryEntry,
    StateCard,
)
from oxtail_core.routing import session_inbox
from oxtail_fs.host import proctree
from oxtail_fs.store.fs_store import FsStore
from oxtail_mcp.commands import status

CLI = str(Path(sys.executable).with_name("oxtail-mcp"))
A = "aaaaaaaa-0000-4000-8000-000000000001"
B = "bbbbbbbb-0000-4000-8000-000000000002"
NOW = 1_795_609_000_000


def world() -> tuple[Context, Peer, Peer]:
    ctx = Context(MemoryStore(), RecordingWaker(), FakeClock(NOW), MemoryHost({"/elsewhere": "other"}))
    return ctx, Peer.join(ctx, 11, session_id=A, client_type="claude-code"), Peer.join(ctx, 12, session_id=B)


def test_rows_show_activity_depth_asks_and_the_last_wake() -> None:
    ctx, a, b = world()
    b.send(A, "one", wake="off")
    b.send(A, "two", wake="off")
    a.set_state("refactoring the parser")
    ctx.store.activity_put(A, ActivityMarker("busy", NOW - 700_000))
    ctx.store.activity_put(B, ActivityMarker("idle", NOW - 42_000))
    Peer.join(ctx, 13, session_id="cccccccc-0000-4000-8000-000000000003", cwd="/elsewhere")
    rows = status.collect(
        ctx, "/", asks={A: 2}, wakes={B: ("fired via ask_peer", "2026-11-25T12:00:00.000Z")}
    )
    by_sid = {r.session_id: r for r in rows}
    assert set(by_sid) == {A, B}
    ra, rb = by_sid[A], by_sid[B]
    assert (ra.client, ra.purpose, ra.inbox, ra.open_asks) == ("claude-code", "refactoring the parser", 2, 2)
    assert (ra.activity, ra.activity_age_ms, ra.activity_stale) == ("busy", 700_000, True)
    assert (rb.activity, rb.activity_stale, rb.inbox, rb.open_asks) == ("idle", False, 0, 0)
    assert rb.last_wake == "fired via ask_peer"
    text = status.table(rows, "/p", color=False)
    assert text.splitlines()[0] == "oxtail agents in /p:"
    assert "busy 11m (stale)" in text and "idle 42s" in text and "\x1b[" not in text
    assert "\x1b[33m" in status.table(rows, "/p", color=True)


def test_unclaimed_servers_and_unknown_activity() -> None:
    ctx, _, _ = world()
    Peer.join(ctx, 14)
    rows = status.collect(ctx, "/")
    [row] = [r for r in rows if r.session_id is None]
    assert (row.server_pid, row.activity, row.open_asks) == (14, None, None)
    assert "(unclaimed pid 14)" in status.table(rows, "/", color=False)
    assert "unknown" in status.table(rows, "/", color=False)


@pytest.mark.parametrize(
    ("ms", "text"), [(None, "-"), (999, "0s"), (59_000, "59s"), (61_000, "1m"), (7_200_000, "2h")]
)
def test_ages_are_coarse(ms: int | None, text: str) -> None:
    assert status.age(ms) == text


def test_last_wakes_reads_the_newest_outcome_per_target(tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    lines = [
        {
            "ts": "t1",
            "event": "wake_outcome",
            "via": "send_message",
            "wake_status": "fired",
            "target_session_id": A,
        },
        {"ts": "t2", "event": "ask_peer_start", "target_session_id": A},
        "not json",
        {
            "ts": "t3",
            "event": "wake_outcome",
            "via": "ask_peer",
            "wake_status": "skipped_busy",
            "target_session_id": A,
        },
    ]
    trace.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    assert status.last_wakes(trace) == {A: ("skipped_busy via ask_peer", "t3")}
    assert status.last_wakes(tmp_path / "missing") == {}


@pytest.fixture
def residents() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes that stand in for agents' servers; killed at the end of the test."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait()


def live_agent(
    home: Path,
    project: Path,
    client: str,
    residents: list[subprocess.Popen[bytes]],
    *,
    tmux_session: str | None = None,
    purpose: str | None = None,
) -> FsStore:
    """A state dir whose registry lists a live process working in ``project`` as agent ``A`` (a ``client``).

    The process really runs there: status scopes agents by the working directory the
    system reports for the process, not by the cwd its registry file claims.
    """
    project.mkdir()
    store = FsStore(home)
    proc = subprocess.Popen(["sleep", "300"], cwd=project)
    residents.append(proc)
    pid = proc.pid
    state = StateCard(purpose=purpose, updated_at=NOW // 1000) if purpose else None
    store.registry_put(
        RegistryEntry(
            server_pid=pid,
            started_at=NOW // 1000,
            client=ClientInfo(type=client, session_id=A, cwd=str(project)),  # type: ignore[arg-type]
            tmux_session=tmux_session,
            state=state,
            process_start=proctree.process_start(pid),
        )
    )
    return store


@pytest.fixture
def live_project(
    tmp_path: Path, residents: list[subprocess.Popen[bytes]]
) -> tuple[Path, Path, dict[str, str]]:
    """A state dir with one live agent in ``project``, two messages and an open ask."""
    home, project = tmp_path / "state", tmp_path / "project"
    store = live_agent(home, project, "codex", residents, tmux_session="work", purpose="writing docs")
    store.append(
        session_inbox(A),
        [Envelope(id="00000000000000a1", body="x"), Envelope(id="00000000000000a2", body="y")],
    )
    store.pending_put(PendingAsk(requester=A, request_id="r1", at_ms=NOW, peer=B))
    trace = tmp_path / "trace.jsonl"
    trace.write_text(
        json.dumps(
            {"event": "wake_outcome", "via": "ask_peer", "wake_status": "fired", "target_session_id": A}
        )
    )
    env = dict(os.environ, OXTAIL_HOME=str(home), MCP_TRACE_FILE=str(trace))
    return home, project, env


def test_cli_plain_table_and_json(live_project: tuple[Path, Path, dict[str, str]]) -> None:
    _, project, env = live_project
    text = subprocess.run(
        [CLI, "status", str(project)], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert "\x1b[" not in text
    header, row = text.splitlines()[1:3]
    assert header.split() == [
        "CLIENT",
        "SESSION",
        "TMUX",
        "PURPOSE",
        "STATUS",
        "ACTIVITY",
        "INBOX",
        "ASKS",
        "LAST",
        "WAKE",
    ]
    assert row.split()[:3] == ["codex", A, "work"]
    assert "writing docs" in row and "fired via ask_peer" in row and "idle·no-tx" in row
    out = subprocess.run(
        [CLI, "status", str(project), "--json"], env=env, capture_output=True, text=True, check=True
    )
    doc = json.loads(out.stdout)
    [agent] = doc["agents"]
    assert (agent["session_id"], agent["inbox"], agent["open_asks"], agent["activity"]) == (A, 2, 1, None)
    assert (agent["liveness"], agent["liveness_reason"], agent["proc_sig"]) == ("idle", "no_transcript", "ok")
    elsewhere = subprocess.run([CLI, "status", "/"], env=env, capture_output=True, text=True, check=True)
    assert A in elsewhere.stdout  # "/" contains the project


def test_cli_watch_refreshes_until_ctrl_c(live_project: tuple[Path, Path, dict[str, str]]) -> None:
    _, project, env = live_project
    proc = subprocess.Popen(
        [CLI, "status", str(project), "--watch"], env=env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first == f"oxtail agents in {project}:\n"
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 0
    assert "Traceback" not in proc.stdout.read()


def test_cli_rejects_unknown_flags() -> None:
    done = subprocess.run([CLI, "status", "--bogus"], capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "usage: oxtail-mcp status" in done.stderr


def test_status_tells_the_user_when_a_claude_code_agents_hooks_are_missing(
    tmp_path: Path, residents: list[subprocess.Popen[bytes]]
) -> None:
    home, project = tmp_path / "state", tmp_path / "proj"
    live_agent(home, project, "claude-code", residents)
    env = dict(os.environ, OXTAIL_HOME=str(home), HOME=str(tmp_path))
    run = [CLI, "status", str(project)]
    text = subprocess.run(run, env=env, capture_output=True, text=True, check=True).stdout
    assert "PreToolUse hook not installed" in text and "oxtail-mcp install-hook" in text
    subprocess.run([CLI, "install-hook"], env=env, capture_output=True, check=True)
    text = subprocess.run(run, env=env, capture_output=True, text=True, check=True).stdout
    assert "hook not installed" not in text and A in text


def test_liveness_comes_from_the_transcript_the_identity_names_and_a_tool_in_flight(
    tmp_path: Path, residents: list[subprocess.Popen[bytes]]
) -> None:
    """selfheal §5.2: a transcript written 5 s ago is ``active``/``transcript_fresh``; 100 s old with a
    tool call that has no result yet, ``active``/``tool_running``; answered, ``idle``. The transcript is
    the one Claude Code keeps for the session in the agent's real working directory."""
    home, project = tmp_path / "state", tmp_path / "project"
    live_agent(home, project, "claude-code", residents)
    env = dict(os.environ, OXTAIL_HOME=str(home), HOME=str(tmp_path))
    from oxtail_mcp.transcripts.files import claude_transcript_path

    path = Path(claude_transcript_path(tmp_path, str(project), A, env))
    path.parent.mkdir(parents=True)
    call = {"type": "assistant", "message": {"content": [{"type": "tool_use", "id": "t1", "name": "Bash"}]}}
    path.write_text(json.dumps(call) + "\n")

    def agent(age_s: float) -> dict[str, object]:
        os.utime(path, (time.time() - age_s, time.time() - age_s))
        run = [CLI, "status", str(project), "--json"]
        out = subprocess.run(run, env=env, capture_output=True, text=True, check=True).stdout
        [row] = json.loads(out)["agents"]
        return row

    fresh = agent(5)
    assert (fresh["liveness"], fresh["liveness_reason"], fresh["tool_running"]) == (
        "active",
        "transcript_fresh",
        True,
    )
    quiet = agent(100)
    assert (quiet["liveness"], quiet["liveness_reason"]) == ("active", "tool_running")
    assert quiet["pane_tail"] is None  # piped: no pane was read (S42)
    result = {"type": "user", "message": {"content": [{"type": "tool_result", "tool_use_id": "t1"}]}}
    with path.open("a") as f:
        f.write(json.dumps(result) + "\n")
    answered = agent(100)
    assert (answered["liveness"], answered["liveness_reason"], answered["tool_running"]) == (
        "idle",
        "idle",
        False,
    )
