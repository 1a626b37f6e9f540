"""The cockpit driven by Textual's Pilot against a real FsStore whose agents are real processes.

The fleet is built through the core: A and B ask each other (a live deadlock), C asks D and D dies
holding C's question (an orphaned wait and stranded mail), E is a healthy agent in a pane the test's
waker knows. What the screen shows is read back from the widgets; the keys act through the core,
so a nudge is a keystroke recorded by the waker and a message is an operator line in E's inbox.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Static

from oxtail_core import Context, Peer, RecordingWaker, SystemClock
from oxtail_core.errors import StoreError
from oxtail_core.model import WAKE_TEXT
from oxtail_core.operator import NUDGE_BODY, OPERATOR_SOURCE
from oxtail_core.results import Asked
from oxtail_core.routing import session_inbox
from oxtail_fs.host import proctree
from oxtail_fs.host.project import LocalHost
from oxtail_fs.store.fs_store import FsStore
from oxtail_mcp.cockpit.app import CockpitApp
from oxtail_mcp.cockpit.source import Frame, Source
from oxtail_mcp.cockpit.widgets import AgentList
from tests.support.e2e import sid

A, B, C, D, E = sid(0xA1), sid(0xB2), sid(0xC3), sid(0xD4), sid(0xE5)
PANE = "%7"
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Textual runs on asyncio


@attrs.define
class World:
    proj: Path
    home: Path
    ctx: Context
    waker: RecordingWaker
    servers: dict[int, subprocess.Popen[bytes]] = attrs.Factory(dict)

    def join(self, session_id: str, *, pane: str | None = None, purpose: str | None = None) -> Peer:
        server = subprocess.Popen(["sleep", "300"], cwd=self.proj)
        self.servers[server.pid] = server
        peer = Peer.join(
            self.ctx,
            server.pid,
            session_id=session_id,
            client_type="claude-code",
            cwd=str(self.proj),
            process_start=proctree.process_start(server.pid),
            tmux_pane=pane,
        )
        if purpose is not None:
            peer.set_state(purpose)
        return peer

    def kill(self, peer: Peer) -> None:
        server = self.servers.pop(peer.me.server_pid)
        server.kill()
        server.wait()

    def source(self) -> Source:
        return Source(self.ctx, str(self.proj), self.home, {}, panes=None)  # no tmux server here


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    proj = tmp_path / "proj"
    (proj / ".git").mkdir(parents=True)
    home = tmp_path / "oxtail"
    waker = RecordingWaker({PANE})
    w = World(proj, home, Context(FsStore(home), waker, SystemClock(), LocalHost()), waker)
    try:
        yield w
    finally:
        for server in w.servers.values():
            server.kill()
            server.wait()


def troubled(w: World) -> dict[str, Peer]:
    """A↔B deadlocked, C waiting on a dead D that holds C's question, E healthy and hostile-named."""
    peers = {s: w.join(s) for s in (A, B, C, D)}
    peers[E] = w.join(E, pane=PANE, purpose="[red]fake markup[/red] \x1b]52;c;aGk=\x07 refactor")
    for asker, asked in ((A, B), (B, A), (C, D)):
        out = peers[asker].ask(asked, f"{asker[:4]} asks", timeout_ms=50)
        assert isinstance(out, Asked) and out.reply is None
    w.kill(peers[D])
    return peers


def text(app: CockpitApp, selector: str) -> str:
    return str(app.query_one(selector, Static).render())


def table_rows(app: CockpitApp) -> dict[str, list[str]]:
    return app.query_one(AgentList).cells


def select(app: CockpitApp, key: str) -> None:
    app.query_one(AgentList).select(key)


async def until(pilot: Pilot[int], holds: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not holds():
        assert time.monotonic() < deadline, "the cockpit never got there"
        await pilot.pause(0.05)


async def test_the_cockpit_shows_the_deadlock_the_orphaned_wait_and_the_stranded_mail(world: World) -> None:
    troubled(world)
    app = CockpitApp(world.source())
    async with app.run_test(size=(180, 60)) as pilot:
        await until(pilot, lambda: app.frame is not None)
        rows = table_rows(app)
        assert set(rows) == {A, B, C, D, E}
        assert rows[A][5] == f"⛔DEADLOCK {B[:8]}" and rows[B][5] == f"⛔DEADLOCK {A[:8]}"
        assert rows[C][5] == f"⛔{D[:8]}†"
        assert rows[D][2] == "dead" and rows[D][3] == "✉1"  # dead, holding C's question
        assert rows[E][2].startswith("unknown")
        attention = text(app, "#attention")
        assert "⛔ 1 live deadlock" in attention and "⛔ 1 orphaned wait" in attention
        assert "✉ 1 stranded mail (dead owner)" in attention
        waits = text(app, "#waits")
        assert f"⛔ DEADLOCK: {A[:8]} → {B[:8]} → {A[:8]}" in waits
        assert f"⛔ {C[:8]} awaiting reply from {D[:8]} (" in waits and "— target is dead" in waits
        comms = text(app, "#comms")
        assert f"{C[:8]} → {D[:8]} ask  {C[:4]} asks" in comms
        top = text(app, "#top")
        assert "5 agents" in top and "refreshed " in top and "q quit" in top


async def test_peer_text_is_shown_inert_never_as_markup_or_escapes(world: World) -> None:
    troubled(world)
    app = CockpitApp(world.source())
    async with app.run_test(size=(180, 60)) as pilot:
        await until(pilot, lambda: app.frame is not None)
        purpose = table_rows(app)[E][7]
        assert purpose.startswith("[red]fake markup[/red] \\x1b]52;c;aGk=\\x07")
        assert "\x1b" not in purpose and "\x07" not in purpose


async def test_selecting_an_agent_shows_its_open_asks_and_what_it_owes(world: World) -> None:
    peers = troubled(world)
    peers[A].send(E, "please review", action_required=True)
    app = CockpitApp(world.source())
    async with app.run_test(size=(180, 60)) as pilot:
        await until(pilot, lambda: app.frame is not None)
        select(app, E)
        await until(pilot, lambda: "owes" in text(app, "#details"))
        assert f"owes {A[:8]} a result since " in text(app, "#details")
        assert table_rows(app)[E][4] == "⚑1"
        select(app, C)
        await until(pilot, lambda: f"asked {D[:8]}" in text(app, "#details"))


async def test_the_selection_follows_its_agent_when_the_fleet_changes(world: World) -> None:
    peers = troubled(world)
    app = CockpitApp(world.source(), poll_s=0.05)
    async with app.run_test(size=(180, 60)) as pilot:
        await until(pilot, lambda: app.frame is not None)
        select(app, E)
        await until(pilot, lambda: app.selected == E)
        world.join(sid(0x01))  # a new agent sorts ahead of E
        await until(pilot, lambda: len(table_rows(app)) == 6)
        assert app.selected == E and app.target() is not None
        assert str(app.target().session_id) == E  # type: ignore[union-attr]
        assert peers[E].me.session_id == E


async def test_nudge_wakes_through_the_waker_and_leaves_an_operator_nudge(world: World) -> None:
    peers = troubled(world)
    app = CockpitApp(world.source())
    async with app.run_test(size=(180, 60)) as pilot:
        await until(pilot, lambda: app.frame is not None)
        select(app, E)
        await until(pilot, lambda: app.selected == E)
        await pilot.press("n")
        await until(pilot, lambda: "✓ operator → " in text(app, "#status"))
        assert "wake:fired_unconfirmed" in text(app, "#status")
        assert world.waker.keys == [(PANE, WAKE_TEXT), (PANE, "Enter")]
        [msg] = peers[E].read_messages().messages
        assert (msg.body, msg.origin, msg.operator_source, msg.from_session_id) == (
            NUDGE_BODY,
            "operator",
            OPERATOR_SOURCE,
            None,
        )


async def test_m_sends_an_operator_message_that_the_log_shows_as_the_operators(world: World) -> None:
    peers = troubled(world)
    app = CockpitApp(world.source())
    async with app.run_test(size=(180, 60)) as pilot:
        await until(pilot, lambda: app.frame is not None)
        select(app, E)
        await until(pilot, lambda: app.selected == E)
        await pilot.press("m")
        await until(pilot, lambda: bool(app.screen.query(Input)))
        await pilot.press(*"stop and summarize", "enter")
        await until(pilot, lambda: "✓ operator → " in text(app, "#status"))
        await until(pilot, lambda: f"operator ⇒ {E[:8]}  stop and summarize" in text(app, "#comms"))
        [msg] = peers[E].read_messages().messages
        assert (msg.body, msg.origin, msg.from_session_id) == ("stop and summarize", "operator", None)


async def test_a_message_to_a_dead_agent_is_refused_on_screen_and_nothing_is_sent(world: World) -> None:
    troubled(world)
    app = CockpitApp(world.source())
    async with app.run_test(size=(180, 60)) as pilot:
        await until(pilot, lambda: app.frame is not None)
        select(app, D)
        await until(pilot, lambda: app.selected == D)
        await pilot.press("n")
        await until(pilot, lambda: "✗ " in text(app, "#status"))
        assert f"✗ {D[:8]}: target process is not alive" in text(app, "#status")
        assert world.ctx.store.depth(session_inbox(D)) == 1 and world.waker.keys == []


async def test_jump_refuses_an_agent_without_a_verified_pane(world: World) -> None:
    troubled(world)
    app = CockpitApp(world.source())
    async with app.run_test(size=(180, 60)) as pilot:
        await until(pilot, lambda: app.frame is not None)
        select(app, A)
        await until(pilot, lambda: app.selected == A)
        await pilot.press("j")
        await until(pilot, lambda: "✗ " in text(app, "#status"))
        assert f"✗ {A[:8]}: no verified tmux pane" in text(app, "#status")


async def test_a_change_in_the_store_is_shown_without_a_key(world: World) -> None:
    peers = troubled(world)
    app = CockpitApp(world.source(), poll_s=0.05, tick_s=60)
    async with app.run_test(size=(180, 60)) as pilot:
        await until(pilot, lambda: app.frame is not None)
        peers[A].send(E, "new work arrives")
        await until(pilot, lambda: table_rows(app)[E][3] == "✉1")
        await until(pilot, lambda: "new work arrives" in text(app, "#comms"))


async def test_the_arrow_keys_move_the_selection_and_the_screen_marks_it(world: World) -> None:
    troubled(world)
    app = CockpitApp(world.source())
    async with app.run_test(size=(180, 60)) as pilot:
        await until(pilot, lambda: app.frame is not None)
        keys = list(table_rows(app))
        assert app.selected == keys[0]
        await pilot.press("down", "down")
        await until(pilot, lambda: app.selected == keys[2])
        [marked] = [line for line in text(app, "#agents").splitlines() if line.startswith("▶ ")]
        assert app.names[keys[2]] in marked
        await pilot.press("up")
        await until(pilot, lambda: app.selected == keys[1])


async def test_a_repoked_delegation_shows_its_attempts_keeps_aging_and_goes_once_answered(
    world: World,
) -> None:
    """selfheal.md §2.3: the waiter's expectation is its wait edge, ``⏳<B> <age> ↻<n>`` once re-poked,
    still shown after the delegation was received, gone when the result arrives."""
    lead, worker = world.join(A), world.join(E, pane=PANE)
    lead.send(E, "cut the release", action_required=True)
    [expectation] = world.ctx.store.pending_list()
    assert world.ctx.store.pending_bump(
        A, expectation.request_id, int(time.time() * 1000)
    )  # as waiter-heal does
    app = CockpitApp(world.source(), poll_s=0.05)
    async with app.run_test(size=(180, 60)) as pilot:
        await until(pilot, lambda: app.frame is not None)
        assert table_rows(app)[A][5].startswith(f"⏳{E[:8]} ") and table_rows(app)[A][5].endswith(" ↻1")
        assert f"⏳ {A[:8]} awaiting reply from {E[:8]} (" in text(app, "#waits") and "re-poked 1×" in text(
            app, "#waits"
        )
        [delegation] = worker.read_messages().messages  # received: post-receipt, the wait stays
        await until(pilot, lambda: table_rows(app)[E][3] == "")
        assert table_rows(app)[A][5].endswith(" ↻1") and table_rows(app)[E][4] == "⚑1"
        worker.complete_work(delegation.id, "released 0.3")
        await until(pilot, lambda: table_rows(app)[A][5] == "" and table_rows(app)[E][4] == "")
        assert "nobody is waiting on anybody" in text(app, "#waits")
        await until(pilot, lambda: f"{A[:8]} → {E[:8]} ⚑ [done]  cut the release" in text(app, "#comms"))
        assert "released 0.3" in text(app, "#comms")  # the result, delivered to the lead


async def test_a_state_that_cannot_be_read_is_said_on_screen_and_the_last_frame_stays(world: World) -> None:
    troubled(world)

    class Broken(Source):
        fail = False

        def read(self) -> Frame:
            if self.fail:
                raise StoreError("refusing registry: a symlink")
            return super().read()

    source = Broken(world.ctx, str(world.proj), world.home, {})
    app = CockpitApp(source)
    async with app.run_test(size=(180, 60)) as pilot:
        await until(pilot, lambda: app.frame is not None)
        source.fail = True
        await pilot.press("r")
        await until(
            pilot, lambda: "✗ cannot read the state: refusing registry: a symlink" in text(app, "#status")
        )
        assert len(table_rows(app)) == 5 and app.is_running
