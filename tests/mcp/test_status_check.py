"""``oxtail-mcp status --json`` / ``--check`` for scripts: real FsStore state made through the core by
peers whose servers are real processes, read back by the installed console script.

Each agent's "server" is a ``sleep`` process registered with its pid and start time; killing it makes
the agent dead exactly as a crashed server is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from oxtail_core import Context, Peer, PendingAsk, RecordingWaker, SystemClock
from oxtail_core.results import Asked, Sent
from oxtail_fs.host import proctree
from oxtail_fs.host.project import LocalHost
from oxtail_fs.store.fs_store import FsStore
from tests.support.e2e import sid

CLI = str(Path(sys.executable).with_name("oxtail-mcp"))
A, B, C = sid(0xA1), sid(0xB2), sid(0xC3)


def now_ms() -> int:
    return int(time.time() * 1000)


@attrs.define
class Fleet:
    """A project with a state dir, and the agents joined to it (each a live ``sleep`` server)."""

    tmp: Path
    proj: Path
    home: Path
    ctx: Context
    servers: dict[int, subprocess.Popen[bytes]] = attrs.Factory(dict)

    def join(self, session_id: str, *, started_at: int | None = None, purpose: str | None = None) -> Peer:
        server = subprocess.Popen(["sleep", "300"], cwd=self.proj)  # its real cwd is the scope
        self.servers[server.pid] = server
        peer = Peer.join(
            self.ctx,
            server.pid,
            session_id=session_id,
            client_type="claude-code",
            cwd=str(self.proj),
            process_start=proctree.process_start(server.pid),
            started_at=started_at,
        )
        if purpose is not None:
            peer.set_state(purpose)
        return peer

    def kill(self, peer: Peer) -> None:
        server = self.servers.pop(peer.me.server_pid)
        server.kill()
        server.wait()

    def status(self, *flags: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OXTAIL", "MCP_TRACE"))}
        env.update(HOME=str(self.tmp), OXTAIL_HOME=str(self.home))
        return subprocess.run(
            [CLI, "status", str(self.proj), *flags],
            check=False,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def doc(self, *flags: str) -> tuple[dict[str, object], int]:
        done = self.status("--json", *flags)
        assert "Traceback" not in done.stderr
        return json.loads(done.stdout), done.returncode


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    proj = tmp_path / "proj"
    (proj / ".git").mkdir(parents=True)
    home = tmp_path / "oxtail"
    ctx = Context(FsStore(home), RecordingWaker(), SystemClock(), LocalHost())
    world = Fleet(tmp_path, proj, home, ctx)
    try:
        yield world
    finally:
        for server in world.servers.values():
            server.kill()
            server.wait()


def agents(doc: dict[str, object]) -> dict[str, dict[str, object]]:
    return {a["session_id"]: a for a in doc["agents"]}  # type: ignore[attr-defined, index]


def kinds(doc: dict[str, object]) -> list[tuple[str, list[str]]]:
    return [(p["kind"], p["agents"]) for p in doc["problems"]]  # type: ignore[attr-defined, index]


def test_an_empty_state_dir_lists_no_agents_and_check_passes(fleet: Fleet) -> None:
    doc, code = fleet.doc("--check")
    assert (doc["schema_version"], doc["agents"], doc["problems"], code) == (1, [], [], 0)
    assert isinstance(doc["generated_at"], int) and doc["generated_at"] > 1_700_000_000


def test_no_state_dir_at_all_is_an_empty_document_and_check_passes(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OXTAIL")}
    env.update(HOME=str(tmp_path), OXTAIL_HOME=str(tmp_path / "never"))
    run = [CLI, "status", str(tmp_path), "--check"]
    done = subprocess.run([*run, "--json"], check=False, env=env, capture_output=True, text=True, timeout=60)
    doc = json.loads(done.stdout)
    assert (doc["schema_version"], doc["agents"], doc["problems"], done.returncode) == (1, [], [], 0)
    done = subprocess.run(run, check=False, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "No oxtail state" in done.stdout
    assert not (tmp_path / "never").exists()  # read-only: nothing was created


def test_two_live_agents_asking_each_other_are_a_deadlock_and_check_exits_2(fleet: Fleet) -> None:
    a, b = fleet.join(A), fleet.join(B)
    for asker, asked in ((a, B), (b, A)):
        timed_out = asker.ask(asked, "is it final?", timeout_ms=50)
        assert isinstance(timed_out, Asked) and timed_out.reply is None  # it stays open as a pending ask
    doc, code = fleet.doc("--check")
    assert code == 2
    assert kinds(doc) == [("deadlock", [A, B])]
    assert doc["cycles"] == [{"members": [A, B], "all_live": True}]
    row = agents(doc)[A]
    assert row["alive"] is True and row["open_asks"] == 1
    [open_ask] = row["asks"]  # type: ignore[misc]
    assert open_ask["peer"] == B and open_ask["live"] is True and open_ask["age_ms"] >= 0
    waiting = row["waiting"]
    assert isinstance(waiting, dict)
    assert (waiting["target"], waiting["in_cycle"], waiting["cycle_all_live"], waiting["orphaned"]) == (
        B,
        True,
        True,
        False,
    )
    assert waiting["since_ms"] == open_ask["since_ms"]
    human = fleet.status("--check")
    assert human.returncode == 2
    assert f"  deadlock: {A} -> {B} -> {A} (all alive)" in human.stdout.splitlines()
    assert fleet.status().returncode == 0  # without --check a problem is shown, not an exit code


def test_an_ask_to_an_agent_that_died_and_was_reaped_is_an_orphaned_wait(fleet: Fleet) -> None:
    a, b = fleet.join(A), fleet.join(B)
    a.ask(B, "are you there?", timeout_ms=50)
    assert b.read_messages().messages  # B took the ask into its context, then its server died
    fleet.kill(b)
    doc, code = fleet.doc("--check")
    assert code == 2
    assert kinds(doc) == [("orphaned-wait", [A, B])]
    assert set(agents(doc)) == {A}  # B held nothing, so its entry was reaped: gone
    assert agents(doc)[A]["waiting"]["target_state"] == "gone"  # type: ignore[index]
    human = fleet.status("--check").stdout
    assert f"orphaned wait: {A} awaits a reply from {B} (gone), request " in human


def test_a_delegation_to_an_agent_that_died_with_it_open_is_an_orphaned_wait_and_stranded_work(
    fleet: Fleet,
) -> None:
    a, b = fleet.join(A), fleet.join(B)
    sent = a.send(B, "port the parser", action_required=True)
    assert isinstance(sent, Sent) and sent.obligation_durable
    assert b.read_messages().messages
    fleet.kill(b)
    doc, code = fleet.doc("--check")
    assert code == 2
    dead = agents(doc)[B]
    assert (dead["alive"], dead["open_work"], dead["inbox"]) == (False, 1, 0)
    assert agents(doc)[A]["waiting"]["target_state"] == "dead"  # type: ignore[index]
    assert kinds(doc) == [("orphaned-wait", [A, B]), ("stranded", [B])]
    human = fleet.status("--check")
    assert f"  stranded: {B} is dead, holding 0 unread messages, 1 open obligation" in human.stdout
    dead_row = next(
        line for line in human.stdout.splitlines() if line.startswith("claude-code") and B in line
    )
    assert " dead " in dead_row and " 0 ⚑1 " in dead_row  # no mail, one open obligation


def test_mail_on_a_dead_agent_is_stranded_until_a_live_server_of_its_session_takes_it(fleet: Fleet) -> None:
    a, b = fleet.join(A), fleet.join(B)
    a.send(B, "one", wake="off")
    fleet.kill(b)
    doc, code = fleet.doc("--check")
    assert (agents(doc)[B]["alive"], agents(doc)[B]["inbox"], code) == (False, 1, 2)
    assert kinds(doc) == [("stranded", [B])]
    heir = fleet.join(B)  # the session comes back (a restarted server)
    doc, code = fleet.doc("--check")
    assert (agents(doc)[B]["alive"], agents(doc)[B]["server_pid"], code) == (True, heir.me.server_pid, 0)
    assert heir.read_messages().messages
    assert fleet.doc("--check")[1] == 0


def test_a_live_row_wins_over_a_newer_dead_row_of_the_same_session(fleet: Fleet) -> None:
    live = fleet.join(B, started_at=1_000)
    newer = fleet.join(B, started_at=2_000)
    fleet.join(A).send(B, "for B", wake="off")
    fleet.kill(newer)
    doc, code = fleet.doc("--check")
    [row] = [r for r in doc["agents"] if r["session_id"] == B]  # type: ignore[attr-defined]
    assert (row["alive"], row["server_pid"], row["inbox"], code) == (True, live.me.server_pid, 1, 0)
    assert doc["problems"] == []


def test_control_characters_in_peer_text_stay_inert_in_the_table_and_escaped_in_the_json(
    fleet: Fleet,
) -> None:
    fleet.join(A, purpose="fix \x1b]52;c;ZXZpbA==\x07 now\x9b2J")
    done = fleet.status("--json")
    assert "\x1b" not in done.stdout and "\x07" not in done.stdout and "\x9b" not in done.stdout
    assert "\\u009b2J" in done.stdout
    assert agents(json.loads(done.stdout))[A]["purpose"] == "fix \x1b]52;c;ZXZpbA==\x07 now\x9b2J"
    table = fleet.status().stdout
    assert "\x1b" not in table and "\x9b" not in table and "\\x9b2J" in table


def test_a_hostile_pending_record_names_its_target_inertly_in_the_problem_line(fleet: Fleet) -> None:
    fleet.join(A)
    evil = "x\x1b]52;c;ZXZpbA==\x07\x9b2J"
    fleet.ctx.store.pending_put(PendingAsk(requester=A, request_id="r\x1b[2J", at_ms=now_ms(), peer=evil))
    human = fleet.status("--check")
    assert human.returncode == 2
    assert "\x1b" not in human.stdout and "\x07" not in human.stdout and "\x9b" not in human.stdout
    assert f"orphaned wait: {A} awaits a reply from x\\x1b]52;c;ZXZpbA==\\x07\\x9b2J (gone)" in human.stdout
    doc, code = fleet.doc("--check")
    assert (kinds(doc), code) == ([("orphaned-wait", [A, evil])], 2)
