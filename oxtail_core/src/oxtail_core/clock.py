"""Clocks: the real one, and a fake one that jumps so tests of deadlines never sleep."""

from __future__ import annotations

import contextlib
import heapq
import itertools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

WAIT_SLICE_S = 0.25
"""The longest one blocking look of an asyncio wait lasts: after a cancellation, its thread ends
within this long (the flow has moved on at once)."""


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
        """Block in a thread of the wait's own, in slices of :data:`WAIT_SLICE_S`, never in the pool.

        A change is noticed as soon as the store's own wait sees it (inotify, ``XREAD BLOCK``), not
        at the next tick of a poll. The pool that runs the flows' steps is never used, so any number
        of waits cannot starve it; a cancelled wait returns at once, and its thread ends with its
        slice (the result it finds is dropped).
        """
        import asyncio
        import threading

        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + max(ms, 0) / 1000
        while True:
            left = max(deadline - time.monotonic(), 0.0)
            found: asyncio.Future[bool] = loop.create_future()

            def look(seconds: float = min(left, WAIT_SLICE_S), found: asyncio.Future[bool] = found) -> None:
                try:
                    result: bool | BaseException = wait(seconds)
                except Exception as exc:  # noqa: BLE001 - handed to the waiting task, which re-raises it
                    result = exc
                with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
                    loop.call_soon_threadsafe(_settle, found, result)

            threading.Thread(target=look, name="oxtail-wait", daemon=True).start()
            if await found:
                return True
            if deadline - time.monotonic() <= 0:
                return False


def _settle(found: asyncio.Future[bool], result: bool | BaseException) -> None:
    if found.done():
        return  # cancelled meanwhile
    if isinstance(result, BaseException):
        found.set_exception(result)
    else:
        found.set_result(bool(result))


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
