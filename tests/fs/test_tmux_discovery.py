"""tmux discovery (discovery §5) and the list_project_sessions rows (§6.1), on a private tmux server."""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from oxtail_core.model import ClientInfo, RegistryEntry, StateCard
from oxtail_fs.host.project import realpath_or_self
from oxtail_fs.tmux.client import Tmux, TmuxSession
from oxtail_fs.tmux.discovery import SessionListing, project_sessions, verified
from tests.support.tmux import PrivateTmux, private_tmux, wait_for

ROW_KEYS = ["name", "path", "attached", "created_at", "windows", "client_type", "client_session_id", "state"]
SID_A = "aaaaaaaa-1111-2222-3333-444444444444"
SID_B = "bbbbbbbb-1111-2222-3333-444444444444"


@pytest.fixture
def server() -> Iterator[PrivateTmux]:
    with private_tmux() as s:
        yield s


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """proj/.git  proj/sub  proj/nested/.git  outside/"""
    base = Path(realpath_or_self(str(tmp_path)))
    for d in ["proj/.git", "proj/sub", "proj/nested/.git", "outside"]:
        (base / d).mkdir(parents=True)
    return base


def entry(pid: int, session: str | None, sid: str | None, kind: str = "claude-code") -> RegistryEntry:
    return RegistryEntry(
        server_pid=pid,
        started_at=1,
        client=ClientInfo(kind, sid),  # type: ignore[arg-type]
        tmux_pane="%1",
        tmux_session=session,
        state=StateCard("doing a", 5) if sid == SID_A else None,
    )


def start_sessions(server: PrivateTmux, tree: Path) -> None:
    server.new_session("alpha", "sleep 1000", cwd=str(tree / "proj"))
    # Started outside, then moved into the project: found by its pane's current path.
    server.new_session(
        "beta", f"cd {shlex.quote(str(tree / 'proj/sub'))} && exec sleep 1000", cwd=str(tree / "outside")
    )
    server.new_session("gamma", "sleep 1000", cwd=str(tree / "proj/nested"))
    server.new_session("delta", "sleep 1000", cwd=str(tree / "outside"))
    assert wait_for(lambda: str(tree / "proj/sub") in server.tmux.pane_paths().get("beta", []))


# Raw tmux reads -------------------------------------------------------------------
@pytest.mark.tmux
def test_list_sessions_rows(server: PrivateTmux, tree: Path) -> None:
    start_sessions(server, tree)
    sessions, error = server.tmux.list_sessions()
    assert error is None
    assert [s.name for s in sessions] == ["alpha", "beta", "delta", "gamma"]
    alpha = sessions[0]
    assert alpha.path == str(tree / "proj")
    assert alpha.attached is False
    assert alpha.windows == 1
    assert alpha.created_at > 1_700_000_000


@pytest.mark.tmux
def test_a_bar_in_a_session_path_stays_in_the_path(server: PrivateTmux, tree: Path) -> None:
    odd = tree / "proj/with|bar"
    odd.mkdir()
    server.new_session("odd", "sleep 1000", cwd=str(odd))
    sessions, _ = server.tmux.list_sessions()
    assert [(s.name, s.path, s.windows) for s in sessions] == [("odd", str(odd), 1)]


@pytest.mark.tmux
def test_pane_maps(server: PrivateTmux, tree: Path) -> None:
    pane = server.new_session("alpha", "sleep 1000", cwd=str(tree / "proj"))
    assert server.tmux.pane_paths() == {"alpha": [str(tree / "proj")]}
    assert server.tmux.pane_pids() == {server.pane_pid(pane): pane}
    assert server.tmux.session_of(pane) == "alpha"
    assert server.tmux.session_of("%999") is None


# The join ---------------------------------------------------------------------------
@pytest.mark.tmux
def test_project_sessions_joins_tmux_with_the_registry(server: PrivateTmux, tree: Path) -> None:
    start_sessions(server, tree)
    registry = [
        entry(101, "alpha", SID_A),
        entry(102, "alpha", None, "codex"),
        entry(103, "gamma", SID_B),  # a nested repo's session: out of scope, adds no row
        entry(104, None, SID_B),  # outside tmux: never listed
    ]
    listing = project_sessions(server.tmux, registry, str(tree / "proj"))
    assert listing.error is None
    rows = listing.rows
    assert [list(row) for row in rows] == [ROW_KEYS] * 3
    tmux_fields = {key: rows[0][key] for key in ROW_KEYS[:5]}
    assert [(r["name"], r["client_type"], r["client_session_id"], r["state"]) for r in rows] == [
        ("alpha", "claude-code", SID_A, {"purpose": "doing a", "updated_at": 5}),
        ("alpha", "codex", None, None),
        ("beta", None, None, None),
    ]
    assert {key: rows[1][key] for key in ROW_KEYS[:5]} == tmux_fields
    assert rows[2]["path"] == str(tree / "outside")  # the session's own path, though matched by its pane


@pytest.mark.tmux
def test_compact_grouping(server: PrivateTmux, tree: Path) -> None:
    start_sessions(server, tree)
    registry = [entry(101, "alpha", SID_A), entry(102, "alpha", None, "codex")]
    groups = project_sessions(server.tmux, registry, str(tree / "proj")).grouped()
    assert [list(g) for g in groups] == [["name", "path", "attached", "created_at", "windows", "agents"]] * 2
    assert [g["name"] for g in groups] == ["alpha", "beta"]
    assert groups[0]["agents"] == [
        {
            "client_type": "claude-code",
            "client_session_id": SID_A,
            "state": {"purpose": "doing a", "updated_at": 5},
        },
        {"client_type": "codex", "client_session_id": None, "state": None},
    ]
    assert groups[1]["agents"] == []


def test_compact_form_is_smaller_for_co_located_agents() -> None:
    session = {"name": "s", "path": "/p", "attached": False, "created_at": 1, "windows": 1}
    rows = tuple(
        {**session, "client_type": "codex", "client_session_id": f"sid-{i}", "state": None} for i in range(4)
    )
    listing = SessionListing(rows, None)
    assert len(listing.grouped()) == 1
    assert len(json.dumps(listing.grouped(), separators=(",", ":"))) < len(
        json.dumps(list(rows), separators=(",", ":"))
    )


@pytest.mark.tmux
def test_scope_follows_the_root(server: PrivateTmux, tree: Path) -> None:
    start_sessions(server, tree)

    def names(root: str) -> list[str]:
        return [row["name"] for row in project_sessions(server.tmux, [], root).rows]

    assert names(str(tree / "proj/nested")) == ["gamma"]
    assert names(str(tree / "proj/sub")) == []  # a subdirectory of a repo: nothing is in scope
    assert names(str(tree / "outside")) == ["beta", "delta"]  # beta's session path is outside
    assert names(realpath_or_self(str(tree / "proj") + "/")) == ["alpha", "beta"]


# Errors ---------------------------------------------------------------------------------
def test_tmux_missing() -> None:
    tmux = Tmux(executable="oxtail-no-such-tmux")
    assert tmux.list_sessions() == ([], "tmux not found")
    assert project_sessions(tmux, [], "/") == SessionListing((), "tmux not found")
    assert tmux.pane_pids() == {}
    assert tmux.pane_paths() == {}


@pytest.mark.tmux
def test_no_server_running_is_not_an_error(server: PrivateTmux, tree: Path) -> None:
    server.new_session("alpha", "sleep 1000", cwd=str(tree / "proj"))
    server.raw("kill-server")  # the socket file stays: tmux reports "no server running"
    deadline = time.monotonic() + 5
    while "exited unexpectedly" in (server.tmux.list_sessions()[1] or "") and time.monotonic() < deadline:
        time.sleep(0.02)  # the server is still on its way out
    assert server.tmux.list_sessions() == ([], None)
    assert project_sessions(server.tmux, [], str(tree / "proj")) == SessionListing((), None)


@pytest.mark.tmux
def test_a_socket_that_never_existed_reports_tmux_stderr(tree: Path) -> None:
    with private_tmux() as never_started:
        sessions, error = never_started.tmux.list_sessions()
    assert sessions == []
    assert error is not None
    assert error.startswith("error connecting to ")
    assert error == error.strip()


def test_other_failures_report_trimmed_stderr(tmp_path: Path) -> None:
    fake = tmp_path / "tmux"
    fake.write_text("#!/bin/sh\necho '  something broke  ' >&2\nexit 3\n")
    fake.chmod(0o755)
    assert Tmux(executable=str(fake)).list_sessions() == ([], "something broke")
    silent = tmp_path / "silent"
    silent.write_text("#!/bin/sh\nexit 3\n")
    silent.chmod(0o755)
    assert Tmux(executable=str(silent)).list_sessions() == ([], "tmux failed")


def test_a_hung_tmux_times_out(tmp_path: Path) -> None:
    fake = tmp_path / "tmux"
    fake.write_text("#!/bin/sh\nexec sleep 5\n")
    fake.chmod(0o755)
    sessions, error = Tmux(executable=str(fake), timeout_s=0.2).list_sessions()
    assert sessions == []
    assert error is not None
    assert "timed out" in error


def test_malformed_lines_are_skipped(tmp_path: Path) -> None:
    fake = tmp_path / "tmux"
    lines = ["good|/p|100|1|2", "|/p|1|0|1", "nopath||1|0|1", "short|/p", "nums|/q|x|2|y", ""]
    fake.write_text("#!/bin/sh\nprintf '%s\\n' " + " ".join(shlex.quote(line) for line in lines) + "\n")
    fake.chmod(0o755)
    sessions, error = Tmux(executable=str(fake)).list_sessions()
    assert error is None
    assert sessions == [TmuxSession("good", "/p", True, 100, 2), TmuxSession("nums", "/q", False, 0, 0)]


def test_pane_pid_lines_need_a_positive_pid_and_a_pane_id(tmp_path: Path) -> None:
    fake = tmp_path / "tmux"
    lines = ["123|%1", "0|%2", "abc|%3", "5|%4; evil", "6|", "-7|%5", "8|%6", "9|@1", "garbage"]
    fake.write_text("#!/bin/sh\nprintf '%s\\n' " + " ".join(shlex.quote(line) for line in lines) + "\n")
    fake.chmod(0o755)
    assert Tmux(executable=str(fake)).pane_pids() == {123: "%1", 8: "%6"}


@pytest.mark.tmux
def test_an_entry_of_another_machine_gets_no_pane_and_keeps_its_own_cwd_though_its_pid_lives_here(
    server: PrivateTmux, tree: Path
) -> None:
    """On a shared store a pid of another machine can be a live process here (in a pane, in this
    project): it lends that entry neither its pane, its tmux session nor its cwd."""
    server.new_session("alpha", "sleep 1000", cwd=str(tree / "proj"))
    assert wait_for(lambda: bool(server.tmux.pane_pids()))
    ((pid, pane),) = server.tmux.pane_pids().items()
    client = ClientInfo("claude-code", SID_A, cwd="/there")
    theirs = attrs.evolve(entry(pid, None, SID_A), host_id="h2", client=client)
    (remote,) = verified(server.tmux, [theirs], here="h1")
    assert (remote.tmux_pane, remote.tmux_session, remote.client.cwd) == (None, None, "/there")
    (local,) = verified(server.tmux, [theirs], here="h2")  # the same entry read on its own machine
    assert (local.tmux_pane, local.tmux_session, local.client.cwd) == (pane, "alpha", str(tree / "proj"))
