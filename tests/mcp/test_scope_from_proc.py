"""Issue 15 item 11: scope is decided by where a peer's process really works, not by its entry.

A registry entry is written by its peer; a forged one naming our project as
its ``cwd`` must not bring a process that runs elsewhere into our scope.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs

from oxtail_core.model import ClientInfo, RegistryEntry
from oxtail_core.routing import session_inbox
from oxtail_fs.host import proctree
from tests.support.e2e import World, sid, world


@contextmanager
def _entry_for_a_process_in(w: World, runs_in: Path, says_cwd: Path, session_id: str) -> Iterator[int]:
    """A live process working in ``runs_in`` whose (hand-written) entry says it works in ``says_cwd``."""
    proc = subprocess.Popen(["sleep", "600"], cwd=runs_in)
    try:
        w.store().registry_put(
            RegistryEntry(
                server_pid=proc.pid,
                started_at=0,
                client=ClientInfo(type="claude-code", session_id=session_id, cwd=str(says_cwd)),
                process_start=proctree.process_start(proc.pid),
            )
        )
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_a_forged_entry_claiming_our_project_is_cross_project_when_its_process_runs_elsewhere(
    tmp_path: Path,
) -> None:
    with world(tmp_path) as w:
        proj, other = w.project("proj"), w.project("other")
        (me,) = w.directs([("me", proj, None)])
        me.claim(sid(1))
        with _entry_for_a_process_in(w, other, proj, sid(9)):
            got = me.call("send_message", {"target": sid(9), "body": "secret", "wake": "off"}).json
            assert got == {"schema_version": 1, "ok": False, "error": "cross-project"}
            asked = me.call("ask_peer", {"target": sid(9), "body": "?", "timeout_ms": 1000}).json
            assert (asked["ok"], asked["error"]) == (False, "cross-project")
        assert w.store().depth(session_inbox(sid(9))) == 0  # nothing was delivered


def test_an_entry_whose_process_really_works_in_our_project_is_reachable(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        proj, other = w.project("proj"), w.project("other")
        (me,) = w.directs([("me", proj, None)])
        me.claim(sid(1))
        with _entry_for_a_process_in(w, proj, other, sid(9)):  # its entry lies the other way round
            got = me.ok("send_message", {"target": sid(9), "body": "hi", "wake": "off"})
            assert got["ok"] is True


def test_a_forged_tmux_session_neither_lists_an_agent_nor_opens_another_projects_pane(tmp_path: Path) -> None:
    with world(tmp_path, tmux=True) as w:
        proj, other = w.project("proj"), w.project("other")
        w.tmux.new_session("here", "printf 'here-marker\\n'; exec cat", cwd=str(proj))
        w.tmux.new_session("elsewhere", "printf 'OTHER-PROJECT-SECRET\\n'; exec cat", cwd=str(other))
        (me,) = w.directs([("me", proj, None)])
        me.claim(sid(1))
        with _entry_for_a_process_in(w, proj, proj, sid(9)) as decoy:
            forged = w.store()
            for session in ("here", "elsewhere"):
                entry = next(e for e in forged.registry_entries() if e.server_pid == decoy)
                forged.registry_put(attrs.evolve(entry, tmux_pane="%0", tmux_session=session))
                listed = me.ok("list_project_sessions", {})
                agents = [row["client_session_id"] for row in listed["sessions"]]
                assert sid(9) not in agents, listed  # its process is in no pane of ours
                read = me.ok("read_session", {"name": "elsewhere", "mode": "pane"})
                assert read["error"] == "session 'elsewhere' not in project scope", read
                assert "OTHER-PROJECT-SECRET" not in json.dumps(read)


def test_status_lists_an_agent_by_where_its_process_works_not_by_its_entry(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        proj, other = w.project("proj"), w.project("other")
        cli = str(Path(sys.executable).with_name("oxtail-mcp"))

        def listed() -> list[str | None]:
            run = [cli, "status", str(proj), "--json"]
            out = subprocess.run(run, env=w.env(), capture_output=True, text=True, check=True).stdout
            return [agent["session_id"] for agent in json.loads(out)["agents"]]

        with _entry_for_a_process_in(w, other, proj, sid(8)):  # claims our project, works elsewhere
            assert sid(8) not in listed()
        with _entry_for_a_process_in(w, proj, other, sid(9)):  # claims elsewhere, works here
            assert sid(9) in listed()
