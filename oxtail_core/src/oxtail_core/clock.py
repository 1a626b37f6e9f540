"""Clocks: the real one, and a fake one that jumps so tests of deadlines never sleep."""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable

WAIT_POLL_MS = 20
"""How often an asyncio wait re-checks for a change: the latency it adds to noticing mail."""


class SystemClock:
    """Real time: ``time.time()`` for timestamps, real sleeps and real blocking waits."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def sleep(self, ms: float) -> None:
        if ms > 0:
            time.sleep(ms / 1000)

    async def asleep(self, ms: float) -> None:
        import asyncio  # here, not at the top: a command that never awaits (status) skips its ~25 ms

        await asyncio.sleep(max(ms, 0) / 1000)

    def block(self, wait: Callable[[float], bool], ms: float) -> bool:
        return wait(max(ms, 0) / 1000)

    async def ablock(self, wait: Callable[[float], bool], ms: float) -> bool:
        """Poll ``wait(0)`` every :data:`WAIT_POLL_MS` on the loop's own timer.

        Each look runs in a worker thread and returns at once, so a wait holds
        no thread: any number of waits (and a cancelled one, which simply stops
        polling) never starve the pool that runs the flows' steps.
        """
        import asyncio

        deadline = time.monotonic() + max(ms, 0) / 1000
        while True:
            if await asyncio.to_thread(wait, 0):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await asyncio.sleep(min(WAIT_POLL_MS / 1000, left))


class FakeClock:
    """A clock that only moves when told to, or when a flow would otherwise wait.

    Scheduled callbacks stand in for other actors ("at t=700 the peer replies").
    A blocking wait runs every callback that falls due before its deadline, in
    time order, and returns as soon as one of them changed what the flow waits
    for; otherwise time jumps straight to the deadline. No real time passes.
    """

    def __init__(self, start_ms: int = 1_800_000_000_000) -> None:
        self._now = start_ms
        self._queue: list[tuple[int, int, Callable[[], object]]] = []
        self._seq = itertools.count()

    def now_ms(self) -> int:
        return self._now

    def advance(self, ms: float) -> None:
        """Move time forward, running callbacks that fall due on the way."""
        self._run_until(self._now + int(ms), stop=None)

    def at(self, when_ms: int, action: Callable[[], object]) -> None:
        """Run ``action`` when the clock reaches ``when_ms`` (absolute)."""
        heapq.heappush(self._queue, (when_ms, next(self._seq), action))

    def after(self, delay_ms: float, action: Callable[[], object]) -> None:
        """Run ``action`` ``delay_ms`` from now."""
        self.at(self._now + int(delay_ms), action)

    def sleep(self, ms: float) -> None:
        self.advance(ms)

    async def asleep(self, ms: float) -> None:
        self.advance(ms)

    def block(self, wait: Callable[[float], bool], ms: float) -> bool:
        if wait(0):
            return True
        return self._run_until(self._now + max(int(ms), 0), stop=lambda: wait(0))

    async def ablock(self, wait: Callable[[float], bool], ms: float) -> bool:
        return self.block(wait, ms)

    def _run_until(self, deadline: int, stop: Callable[[], bool] | None) -> bool:
        while self._queue and self._queue[0][0] <= deadline:
            when, _, action = heapq.heappop(self._queue)
            self._now = max(self._now, when)
            action()
            if stop is not None and stop():
                return True
        self._now = max(self._now, deadline)
        return False
