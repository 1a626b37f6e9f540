"""What the cockpit says, as pure functions (liveness, badges, labels, previews), and what the jump
hands tmux: only the verified pane id, never a name a peer wrote."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import attrs

from oxtail_core.operator import Target
from oxtail_core.waitgraph import Wait, WaitGraph
from oxtail_fs.tmux.client import Tmux, TmuxResult
from oxtail_mcp.cockpit import view
from oxtail_mcp.cockpit.jump import jump
from oxtail_mcp.commands.status import Row, Snapshot
from tests.support.world import A, B, make_world

ROW = Row(
    client="claude-code",
    session_id=A,
    server_pid=1,
    tmux_session=None,
    purpose=None,
    activity=None,
    activity_age_ms=None,
    activity_stale=False,
    inbox=0,
    open_asks=0,
    last_wake=None,
    last_wake_at=None,
)


def test_liveness_follows_the_table_first_match_wins() -> None:
    cases = [
        (dict(alive=False, activity="busy"), "dead"),
        (dict(liveness="dead", activity="busy"), "dead"),  # the core's verdict: exited or pid reused
        (dict(liveness="active", activity="idle", activity_age_ms=600_000, inbox=1), "working"),  # §5.2
        (dict(liveness="active"), "working"),  # a fresh transcript, a busy pane or a running tool
        (dict(liveness="idle"), "unknown"),  # no hooks: idle by the transcript is not known idle
        (dict(activity="busy", activity_stale=True), "stalled"),
        (dict(activity="busy"), "working"),
        (dict(activity="idle", activity_age_ms=60_000, inbox=1), "stalled"),
        (dict(activity="idle", activity_age_ms=59_999, inbox=1), "idle"),
        (dict(activity="idle", activity_age_ms=600_000, inbox=0), "idle"),
        ({}, "unknown"),
    ]
    for changes, expected in cases:
        assert view.liveness(attrs.evolve(ROW, **changes)) == expected, changes  # type: ignore[arg-type]


def test_the_wait_badge_precedence_is_deadlock_then_stale_cycle_then_orphan_then_wait() -> None:
    names = {A: "a", B: "b"}
    wait = Wait(A, B, "r1", since_ms=0, attempts=2, target_state="alive")
    assert view.wait_badge(wait, names, 65_000) == "⏳b 1m ↻2"
    assert view.wait_badge(attrs.evolve(wait, target_state="dead"), names, 0) == "⛔b†"
    stale = attrs.evolve(wait, target_state="dead", in_cycle=True)
    assert view.wait_badge(stale, names, 0) == "⚠cycle? b"
    assert view.wait_badge(attrs.evolve(stale, cycle_all_live=True), names, 0) == "⛔DEADLOCK b"
    assert view.wait_badge(None, names, 0) == ""


def test_a_wait_without_a_target_is_unresolved_and_not_alarming() -> None:
    wait = Wait(A, None, "r1", since_ms=0, attempts=0, target_state="unknown")
    snap = Snapshot((ROW,), WaitGraph((wait,), ()), (), 3_000)
    assert view.wait_lines(snap, {A: "a"}) == [("info", "⏳ a awaiting reply (3s, peer unresolved)")]


def test_labels_are_short_ids_lengthened_only_where_two_collide() -> None:
    twin = "aaaaaaaa-9999-0000-0000-000000000009"
    rows = [
        ROW,
        attrs.evolve(ROW, session_id=twin),
        attrs.evolve(ROW, session_id=B),
        attrs.evolve(ROW, session_id=None),
    ]
    assert view.labels(rows) == {A: A, twin: twin, B: B[:8], "pid:1": "pid:1"}


def test_previews_and_cells_are_one_inert_line() -> None:
    assert view.preview("\n  rm -rf /\x1b[2J\nsecond line") == "rm -rf /\\x1b[2J"
    assert len(view.preview("x" * 500)) == view.BODY_PREVIEW_CHARS
    row = attrs.evolve(ROW, purpose="ok\x9b31m\nhidden", tmux_session="\x1b]0;t\x07")
    cells = view.cells(row, Snapshot((row,), WaitGraph((), ()), (), 0), view.labels([row]))
    assert cells[7] == "ok\\x9b31m" and cells[6] == "\\x1b]0;t\\x07"


class RecordingTmux(Tmux):
    """A tmux that runs nothing and remembers every argument vector."""

    def __init__(self, clients: str = "") -> None:
        super().__init__()
        self.calls: list[tuple[str, ...]] = []
        self.clients = clients

    def run(self, *args: str) -> TmuxResult:
        self.calls.append(args)
        return TmuxResult(0, self.clients if args[0] == "list-clients" else "")


def test_jump_hands_tmux_only_the_verified_pane_id() -> None:
    w = make_world(panes={"%2"})
    w.join(2, B, pane="%2", tmux_session="evil;kill-server")
    tmux = RecordingTmux()
    assert jump(w.ctx, tmux, Target(B, 2), inside_tmux=True) == f"→ {B[:8]} at pane %2"
    assert tmux.calls == [
        ("select-window", "-t", "%2"),
        ("select-pane", "-t", "%2"),
        ("switch-client", "-t", "%2"),
    ]


def test_outside_tmux_jump_moves_the_one_attached_client_or_says_what_to_run() -> None:
    w = make_world(panes={"%2"})
    w.join(2, B, pane="%2")
    one = RecordingTmux("/dev/pts/3\n")
    jump(w.ctx, one, Target(B, 2), inside_tmux=False)
    assert one.calls[-1] == ("switch-client", "-c", "/dev/pts/3", "-t", "%2")
    for clients in ("", "/dev/pts/3\n/dev/pts/4\n", "-t evil\n"):
        tmux = RecordingTmux(clients)
        line = jump(w.ctx, tmux, Target(B, 2), inside_tmux=False)
        assert line.endswith("run: tmux attach -t %2") and [c[0] for c in tmux.calls] == ["list-clients"]


def test_jump_refuses_an_unverified_pane_or_a_dead_agent_and_runs_nothing() -> None:
    w = make_world(panes=set())
    w.join(2, B, pane="%2")
    tmux = RecordingTmux()
    assert "no verified tmux pane" in jump(w.ctx, tmux, Target(B, 2), inside_tmux=True)
    w.host.kill(2)
    assert jump(w.ctx, tmux, Target(B, 2), inside_tmux=True) == f"✗ {B[:8]}: target process is not alive"
    assert tmux.calls == []


def test_the_cockpit_without_a_terminal_says_so_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("oxtail-mcp")), "cockpit", str(tmp_path)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=dict(os.environ, OXTAIL_HOME=str(tmp_path / "state")),
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == "oxtail cockpit: needs a terminal; 'oxtail-mcp status' prints a one-shot view\n"
