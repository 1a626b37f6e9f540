"""A small world of peers on a MemoryStore and a FakeClock, for flow tests."""

from __future__ import annotations

import attrs

from oxtail_core import Context, FakeClock, MemoryHost, MemoryStore, Peer, RecordingWaker, Settings
from oxtail_core.model import ActivityMarker
from oxtail_core.routing import session_inbox
from oxtail_core.trace import ListTracer

A = "aaaaaaaa-0000-0000-0000-000000000001"
B = "bbbbbbbb-0000-0000-0000-000000000002"
C = "cccccccc-0000-0000-0000-000000000003"


@attrs.define
class World:
    ctx: Context
    clock: FakeClock
    store: MemoryStore
    waker: RecordingWaker
    host: MemoryHost
    tracer: ListTracer

    def join(self, pid: int, sid: str | None, *, pane: str | None = None, **kw: object) -> Peer:
        return Peer.join(self.ctx, pid, session_id=sid, cwd="/p", tmux_pane=pane, **kw)  # type: ignore[arg-type]

    def mark(self, sid: str, status: str, age_ms: int = 0) -> None:
        self.store.activity_put(sid, ActivityMarker(status=status, at_ms=self.clock.now_ms() - age_ms))

    def depth(self, sid: str) -> int:
        return self.store.depth(session_inbox(sid))


def make_world(settings: Settings | None = None, panes: set[str] | None = None) -> World:
    clock = FakeClock()
    store = MemoryStore()
    waker = RecordingWaker(panes if panes is not None else {"%1", "%2", "%3"})
    host = MemoryHost()
    tracer = ListTracer()
    ctx = Context(store, waker, clock, host, settings=settings or Settings(), tracer=tracer)
    return World(ctx, clock, store, waker, host, tracer)
