"""The cockpit: a live Textual view of one project's fleet, with keys to act on an agent.

Refresh: every :data:`POLL_S` the cheap :meth:`Source.fingerprint` is compared with the last one;
a change (or :data:`TICK_S` without one, so ages stay current) reads a new frame in a worker thread
and redraws. Reads and sends never overlap (one lock), and never run on the UI loop: a store lock
wait cannot freeze the screen.

Selection sticks to an agent's identity (session id, else pid), never to a row index, so a fleet
that changes between two refreshes never re-points a key at another agent. Every action re-resolves
its target from the registry at the moment it runs (:mod:`oxtail_core.operator`).

| key | action |
|---|---|
| ↑ ↓ | select an agent |
| ``enter`` / ``j`` | jump to its tmux pane (:mod:`.jump`) |
| ``n`` | nudge it: the standard operator nudge, with a wake |
| ``m`` | write it an operator message (framed as untrusted, one-way) |
| ``r`` | refresh now |
| ``q`` | quit |
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.widgets import Footer

from oxtail_core.errors import StoreError
from oxtail_core.operator import NUDGE_BODY, Target
from oxtail_fs.tmux.client import Tmux
from oxtail_mcp.cockpit import view
from oxtail_mcp.cockpit.jump import jump
from oxtail_mcp.cockpit.source import Frame, Source
from oxtail_mcp.cockpit.widgets import AgentList, Cells, MessagePrompt, Panel, Plain, plain, styled
from oxtail_mcp.commands.message import deliver, operator_context, outcome_line
from oxtail_mcp.commands.status import Row
from oxtail_mcp.commands.terminal import inert
from oxtail_mcp.home import state_home

POLL_S = 0.25
TICK_S = 1.5
WAIT_ROWS = 8
LOG_ROWS = 12
QUIT_HINT = "q quit · ↑↓ select · enter jump · n nudge · m message · r refresh"


class CockpitApp(App[int]):
    """``oxtail-mcp cockpit``: agents, their waits and the conversation, live."""

    TITLE = "oxtail cockpit"
    CSS = """
    Screen { layout: vertical; }
    #top { height: 1; padding: 0 1; background: $primary-darken-3; }
    #attention { height: 1; padding: 0 1; }
    #agents { height: auto; max-height: 24; }
    #status { height: 1; padding: 0 1; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "quit"),
        Binding("j", "jump", "jump"),
        Binding("n", "nudge", "nudge"),
        Binding("m", "message", "message"),
        Binding("r", "reload", "refresh"),
    ]

    def __init__(
        self,
        source: Source,
        *,
        tmux: Tmux | None = None,
        inside_tmux: bool = False,
        poll_s: float = POLL_S,
        tick_s: float = TICK_S,
    ) -> None:
        super().__init__()
        self.source = source
        self.tmux = tmux or Tmux()
        self.inside_tmux = inside_tmux
        self.poll_s = poll_s
        self.tick_s = tick_s
        self.frame: Frame | None = None
        self.selected: str | None = None
        self.names: dict[str, str] = {}
        self._rows: dict[str, Row] = {}
        self._io = asyncio.Lock()
        self._fingerprint: tuple[object, ...] | None = None
        self._last_read = 0.0

    def compose(self) -> ComposeResult:
        yield Plain(id="top")
        yield Plain(id="attention")
        yield AgentList(view.COLUMNS, id="agents")
        yield Panel("selected agent", id="details")
        yield Panel("wait-graph", id="waits")
        yield Panel("recent communications", id="comms")
        yield Plain(plain(QUIT_HINT), id="status")
        yield Footer()

    async def on_mount(self) -> None:
        self.query_one(AgentList).focus()
        await self.reload()
        self.set_interval(self.poll_s, self._poll)

    # Refresh ---------------------------------------------------------------------------------

    async def _poll(self) -> None:
        if self._io.locked():
            return
        fingerprint = await asyncio.to_thread(self.source.fingerprint)
        if fingerprint != self._fingerprint or time.monotonic() - self._last_read >= self.tick_s:
            self._fingerprint = fingerprint
            await self.reload()

    async def reload(self) -> None:
        """Read a frame (off the loop) and show it; a state that cannot be read is said, and the last
        frame stays on screen."""
        try:
            frame = await self._blocking(self.source.read)
        except (StoreError, OSError) as exc:
            with contextlib.suppress(NoMatches):
                self.say(inert(f"✗ cannot read the state: {exc}"))
            return
        self._last_read = time.monotonic()
        with contextlib.suppress(NoMatches):  # the app closed while the frame was read: nothing to draw
            self.show(frame)

    async def action_reload(self) -> None:
        await self.reload()

    async def _blocking(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        async with self._io:
            return await asyncio.to_thread(fn, *args, **kwargs)

    def show(self, frame: Frame) -> None:
        """Redraw every panel from ``frame``; the selection follows its agent."""
        self.frame = frame
        snap = frame.snap
        self._rows = view.rows_by_key(snap.rows)
        self.names = view.labels(snap.rows)
        refreshed = time.strftime("%H:%M:%S", time.localtime(frame.read_at))
        self.query_one("#top", Plain).show(
            plain(f"{view.header(snap, self.source.root)}   refreshed {refreshed}   q quit")
        )
        attention = view.attention(snap)
        calm = attention.startswith(("✓", "no agents"))
        self.query_one("#attention", Plain).show(plain(attention, "green" if calm else "bold red"))
        self._fill_table(snap.rows)
        waits = view.wait_lines(snap, self.names)
        self.query_one("#waits", Panel).show(
            styled(waits[:WAIT_ROWS] or [("dim", "nobody is waiting on anybody")])
        )
        log = [view.comm_line(c, self.names) for c in frame.comms[-LOG_ROWS:]]
        self.query_one("#comms", Panel).show(plain(log or ["no messages yet"]))
        self._show_details()

    def _fill_table(self, rows: tuple[Row, ...]) -> None:
        assert self.frame is not None
        table: dict[str, Cells] = {}
        for row in rows:
            cells = view.cells(row, self.frame.snap, self.names)
            table[view.key_of(row)] = tuple(zip(cells, view.cell_styles(row, cells), strict=True))
        agents = self.query_one(AgentList)
        agents.set_rows(table)
        self.selected = agents.selected

    def on_agent_list_highlighted(self, event: AgentList.Highlighted) -> None:
        self.selected = event.key
        self._show_details()

    async def on_agent_list_chosen(self, event: AgentList.Chosen) -> None:
        await self.action_jump()

    def _show_details(self) -> None:
        row = self._rows.get(self.selected or "")
        panel = self.query_one("#details", Panel)
        if row is None or self.frame is None:
            panel.show(plain("no agent selected"))
            return
        panel.show(plain(view.details(row, self.names, self.frame.snap.generated_at_ms)))

    # Actions ---------------------------------------------------------------------------------

    def target(self) -> Target | None:
        """The selected agent as an identity to re-resolve (never the row's stale entry)."""
        row = self._rows.get(self.selected or "")
        return None if row is None else Target(row.session_id, row.server_pid)

    def say(self, line: str) -> None:
        """Put an outcome (already inert) on the status line."""
        self.query_one("#status", Plain).show(plain(f"{line}   ({QUIT_HINT})"))

    async def action_jump(self) -> None:
        target = self.target()
        if target is None:
            return
        self.say(await self._blocking(jump, self.source.ctx, self.tmux, target, inside_tmux=self.inside_tmux))

    async def action_nudge(self) -> None:
        target = self.target()
        if target is not None:
            await self.send(target, NUDGE_BODY)

    def action_message(self) -> None:
        target = self.target()
        if target is None:
            return

        async def sent(text: str | None) -> None:
            if text is not None and text.strip():
                await self.send(target, text)
            elif text is not None:
                self.say("✗ empty message: nothing sent")

        self.push_screen(MessagePrompt(self.names.get(self.selected or "", target.label)), sent)

    async def send(self, target: Target, body: str) -> None:
        """One operator send through the core, then a fresh frame (the log shows it)."""
        result = await self._blocking(deliver, self.source.ctx, target, body, wake=True, env=self.source.env)
        self.say(
            outcome_line(
                result, self.names.get(target.session_id or f"pid:{target.server_pid}", target.label)
            )
        )
        await self.reload()


def main(root: str, env: Mapping[str, str] = os.environ) -> int:
    """Run the cockpit on this terminal until ``q``; 1 when there is no terminal or no state directory."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print("oxtail cockpit: needs a terminal; 'oxtail-mcp status' prints a one-shot view", file=sys.stderr)
        return 1
    ctx = operator_context(env)
    if isinstance(ctx, str):
        print(f"oxtail cockpit: {ctx}", file=sys.stderr)
        return 1
    trace = Path(env["MCP_TRACE_FILE"]) if env.get("MCP_TRACE_FILE") else None
    source = Source(ctx, root, state_home(env), env, trace)
    CockpitApp(source, inside_tmux=bool(env.get("TMUX"))).run()
    return 0
