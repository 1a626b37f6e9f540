"""The asyncio driver re-raises the cancellation it was handed (oxtail_core/effects.py).

A cancel scope recognizes its own cancellation by the exception it delivered:
when a cancellation lands while a flow segment runs in a worker thread, the
driver waits for the segment and must then raise *that* exception, or it
escapes the scope that asked for it (a watchdog under ``move_on_after`` took
the whole server's task group down this way).
"""

from __future__ import annotations

import threading
import time

import anyio

from oxtail_core.effects import Flow, call_async, run_async
from tests.support.world import make_world


def _slow_segment(started: threading.Event, log: list[str]) -> Flow[str]:
    started.set()
    time.sleep(0.2)  # the segment is in its worker thread when the scope is cancelled
    log.append("segment finished")
    return "done"
    yield


def test_a_cancel_scope_catches_a_cancellation_that_landed_mid_segment() -> None:
    w = make_world()
    log: list[str] = []
    caught: list[bool] = []

    async def main() -> None:
        started = threading.Event()
        with anyio.move_on_after(0.05) as scope:
            await run_async(_slow_segment(started, log), w.ctx.store, w.ctx.clock, abandon=log.append)
        caught.append(scope.cancelled_caught)

    anyio.run(main)
    assert caught == [True]
    assert log == ["segment finished", "done"]  # the finished result went to abandon


def test_call_async_hands_back_the_same_cancellation() -> None:
    taken: list[str] = []
    caught: list[bool] = []

    def slow() -> str:
        time.sleep(0.2)
        return "taken"

    async def main() -> None:
        with anyio.move_on_after(0.05) as scope:
            await call_async(slow, abandon=taken.append)
        caught.append(scope.cancelled_caught)

    anyio.run(main)
    assert caught == [True]
    assert taken == ["taken"]
