"""RedisClock: the system clock moved onto Redis's time, so every host's stamps agree.

The core compares its own timestamps across hosts (pending asks, dedupe and rate stamps,
activity markers, state cards). With a skew of d between two hosts every such window moves by
d, and a peer whose clock runs ahead looks "not fresh-idle" (a marker from the future). So
every process on a Redis store reads ``now`` as its system clock plus an offset to Redis
``TIME``:

- of :data:`SAMPLES` readings, the one with the smallest round trip is used, and the offset is
  Redis's time minus the midpoint of that round trip (the error is at most half of it);
- it is measured again every :data:`REMEASURE_S`, on the first ``now_ms`` after that;
- a failed measurement keeps the last offset (0 before any): time never stops.

Sleeps and waits are the system clock's (they are durations, not stamps). Leases never use
this clock: their TTLs are timed by Redis itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from oxtail_core.clock import SystemClock

SAMPLES = 5
REMEASURE_S = 60.0

RedisTime = Callable[[], tuple[int, int]]
"""Redis ``TIME``: (seconds, microseconds)."""


def measure_offset_ms(redis_time: RedisTime, wall: Callable[[], float], samples: int = SAMPLES) -> float:
    """Redis's time minus ours in ms, from the reading with the smallest round trip."""
    best: tuple[float, float] | None = None
    for _ in range(samples):
        before = wall()
        seconds, micros = redis_time()
        after = wall()
        rtt = after - before
        offset = (seconds + micros / 1_000_000) - (before + after) / 2
        if best is None or rtt < best[0]:
            best = (rtt, offset)
    assert best is not None, "samples must be positive"
    return best[1] * 1000


class RedisClock(SystemClock):
    """:class:`~oxtail_core.clock.SystemClock` whose ``now_ms`` is Redis's time (see the module)."""

    def __init__(
        self,
        redis_time: RedisTime,
        *,
        remeasure_s: float = REMEASURE_S,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis_time = redis_time
        self._remeasure_s = remeasure_s
        self._wall = wall
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self.offset_ms = 0.0
        self._due = float("-inf")

    def _refresh(self) -> None:
        now = self._monotonic()
        with self._lock:
            if now < self._due:
                return
            self._due = now + self._remeasure_s  # a failure waits its turn too: no storm on an outage
        try:
            offset = measure_offset_ms(self._redis_time, self._wall)
        except Exception:  # noqa: BLE001 - any failure (Redis away, a bad reply) keeps the last offset
            return
        self.offset_ms = offset

    def now_ms(self) -> int:
        self._refresh()
        return int(self._wall() * 1000 + self.offset_ms)
