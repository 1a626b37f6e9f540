"""The two self-heal watchdogs of a server, as periodic tasks (selfheal.md §1.3, §2.2).

The rules live in :mod:`oxtail_core.selfheal`; this module only drives them:
one loop per watchdog, its first tick one interval after start, each tick run
off the event loop like every other flow. A loop never raises (an error is a
``<name>_tick_error`` trace and the next tick comes as usual), and it dies
with the server's task group. The kill switches are read at every tick.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio

from oxtail_core.context import Context
from oxtail_core.effects import Flow, run_async
from oxtail_core.model import RegistryEntry
from oxtail_core.selfheal import self_heal_tick, waiter_heal_tick
from oxtail_core.settings import heals_off
from oxtail_core.trace import safe_emit
from oxtail_mcp.server.agent import Agent

Tick = Callable[..., Flow[Any]]


async def _watch(agent: Agent, name: str, tick: Tick, interval_ms: float) -> None:
    while True:
        await anyio.sleep(interval_ms / 1000)
        try:
            ctx: Context = agent.ctx
            me: RegistryEntry = agent.me
            if me.session_id:  # only a claimed session has records to heal
                await run_async(tick(ctx, me, off=heals_off(agent.env)), ctx.store, ctx.clock)
        except Exception as exc:  # noqa: BLE001 - a watchdog never takes the server down
            safe_emit(agent.ctx.tracer, f"{name}_tick_error", error=str(exc))


def start_watchdogs(agent: Agent, task_group: anyio.abc.TaskGroup) -> None:
    """Start self-heal (every ``OXTAIL_SELF_WAKE_INTERVAL_MS``) and waiter-heal (every
    ``OXTAIL_WAITER_HEAL_INTERVAL_MS``) in ``task_group``."""
    settings = agent.ctx.settings
    task_group.start_soon(_watch, agent, "self_heal", self_heal_tick, settings.self_wake_interval_ms)
    task_group.start_soon(_watch, agent, "waiter_heal", waiter_heal_tick, settings.waiter_heal_interval_ms)
