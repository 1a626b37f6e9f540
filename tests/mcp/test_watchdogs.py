"""The server's watchdog loops (oxtail_mcp/server/watchdogs.py): they tick on their interval, only
for a claimed session, read the kill switch at every tick, and never raise."""

from __future__ import annotations

from typing import Any

import anyio
import attrs

from oxtail_core import Settings
from oxtail_core.effects import Flow
from oxtail_mcp.server import watchdogs
from tests.support.world import A, make_world


@attrs.define
class FakeAgent:
    ctx: Any
    me: Any
    env: dict[str, str]


def test_a_failing_tick_is_traced_and_the_loop_goes_on_and_the_kill_switch_is_read_each_tick() -> None:
    w = make_world(Settings(self_wake_interval_ms=5))
    agent = FakeAgent(w.ctx, w.join(1, A).me, {})
    seen: list[bool] = []

    def tick(ctx: Any, me: Any, *, off: bool) -> Flow[None]:
        seen.append(off)
        agent.env = {"OXTAIL_SELF_WAKE": "off"}
        if len(seen) == 1:
            raise RuntimeError("boom")
        return None
        yield

    async def main() -> None:
        with anyio.move_on_after(0.5):
            await watchdogs._watch(agent, "self_heal", tick, 5)  # type: ignore[arg-type]

    anyio.run(main)
    assert seen[0] is False and all(seen[1:]) and len(seen) >= 3
    assert w.tracer.named("self_heal_tick_error") == [{"error": "boom"}]


def test_an_unclaimed_server_does_not_tick() -> None:
    w = make_world()
    agent = FakeAgent(w.ctx, w.join(1, None, tmux_session="t").me, {})
    calls: list[object] = []

    def tick(ctx: Any, me: Any, *, off: bool) -> Flow[None]:
        calls.append(me)
        return None
        yield

    async def main() -> None:
        with anyio.move_on_after(0.1):
            await watchdogs._watch(agent, "self_heal", tick, 5)  # type: ignore[arg-type]

    anyio.run(main)
    assert calls == []
