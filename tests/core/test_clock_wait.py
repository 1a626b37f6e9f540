"""The asyncio wait of the real clock: noticed when the store's own wait sees it, never starving the pool."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from oxtail_core.clock import WAIT_SLICE_S, SystemClock


class Change:
    """A store's blocking wait in miniature: ``wait(seconds)`` returns once the change happened."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.timeouts: list[float] = []

    def wait(self, seconds: float) -> bool:
        self.timeouts.append(seconds)
        return self.event.wait(seconds)


def test_a_wait_blocks_in_the_stores_own_wait_instead_of_polling_it() -> None:
    change = Change()

    async def main() -> bool:
        threading.Timer(0.3, change.event.set).start()
        return await SystemClock().ablock(change.wait, 5_000)

    assert asyncio.run(main()) is True
    assert all(t > 0 for t in change.timeouts)  # a poll would look with wait(0) again and again
    assert len(change.timeouts) <= int(0.3 / WAIT_SLICE_S) + 3


def test_a_wait_that_sees_nothing_returns_false_at_its_deadline() -> None:
    change = Change()
    started = time.monotonic()
    assert asyncio.run(SystemClock().ablock(change.wait, 120)) is False
    assert 0.1 <= time.monotonic() - started < 2.0
    assert sum(change.timeouts) == pytest.approx(0.12, abs=0.05)


def test_many_waits_at_once_leave_the_pool_that_runs_the_flows_steps_free() -> None:
    changes = [Change() for _ in range(80)]  # more than the default pool's workers on any machine here

    async def main() -> float:
        clock = SystemClock()
        waits = [asyncio.ensure_future(clock.ablock(c.wait, 10_000)) for c in changes]
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await asyncio.to_thread(lambda: None)  # a flow's step
        took = time.monotonic() - started
        for c in changes:
            c.event.set()
        assert all(await asyncio.gather(*waits))
        return took

    assert asyncio.run(main()) < 1.0


def test_a_cancelled_wait_returns_at_once_and_its_thread_ends_within_a_slice() -> None:
    change = Change()

    async def main() -> float:
        task = asyncio.ensure_future(SystemClock().ablock(change.wait, 60_000))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - started

    assert asyncio.run(main()) < 0.1
    deadline = time.monotonic() + WAIT_SLICE_S + 2.0
    while any(t.name == "oxtail-wait" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(t.name == "oxtail-wait" for t in threading.enumerate())


def test_an_error_of_the_stores_wait_reaches_the_waiting_flow() -> None:
    def broken(seconds: float) -> bool:
        raise OSError("inotify went away")

    with pytest.raises(OSError, match="inotify went away"):
        asyncio.run(SystemClock().ablock(broken, 1_000))
