"""Everything a flow needs, bundled: the protocols, the settings and in-process wake state."""

from __future__ import annotations

import threading

import attrs

from oxtail_core.protocols import Clock, Host, Store, Waker
from oxtail_core.settings import Settings
from oxtail_core.trace import NullTracer, Tracer


@attrs.define
class Debounce:
    """In-process wake coalescing: one wake per session per window.

    Kept in memory on purpose (as in the reference): it only has to stop one
    process from stacking two wake lines into a composer during a Codex gap.
    The asyncio driver runs flow steps in worker threads, hence the lock.
    """

    window_ms: float
    stamps: dict[str, int] = attrs.field(factory=dict)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False, eq=False)

    def active(self, session_id: str, now_ms: int) -> bool:
        with self._lock:
            at = self.stamps.get(session_id)
        return at is not None and now_ms - at < self.window_ms

    def claim(self, session_id: str, now_ms: int) -> bool:
        """Stamp unless another wake of this session stamped within the window: one check-and-stamp.

        Two sends running in worker threads can both pass :meth:`active` before
        either stamps; only the one that wins here may type.
        """
        with self._lock:
            at = self.stamps.get(session_id)
            if at is not None and now_ms - at < self.window_ms:
                return False
            self._stamp(session_id, now_ms)
            return True

    def _stamp(self, session_id: str, now_ms: int) -> None:
        self.stamps[session_id] = now_ms
        if len(self.stamps) > 256:
            horizon = 10 * self.window_ms
            for sid, at in list(self.stamps.items()):
                if now_ms - at > horizon:
                    del self.stamps[sid]


@attrs.define
class Context:
    """The world as the core sees it. One per process (or per orchestrator)."""

    store: Store
    waker: Waker
    clock: Clock
    host: Host
    settings: Settings = attrs.field(factory=Settings)
    tracer: Tracer = attrs.field(factory=NullTracer)
    debounce: Debounce = attrs.field(
        default=attrs.Factory(lambda self: Debounce(self.settings.debounce_ms), takes_self=True)
    )
