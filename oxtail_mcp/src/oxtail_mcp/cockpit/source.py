"""Where the cockpit's frames come from: one :func:`~oxtail_mcp.commands.status.snapshot` (the same
read ``status`` makes) plus the recent communications, and a cheap test of whether anything changed.

Change detection polls instead of watching: :meth:`Source.fingerprint` lists the state directories
that a send, a read, a join, an ask or a hook touches and ``stat``\\ s what is in them (a few hundred
microseconds for a fleet of twenty), so the cockpit redraws within one poll of a change and costs
nothing while the fleet is quiet, apart from the slow tick that keeps ages current.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

import attrs

from oxtail_core import Context
from oxtail_core.liveness import PaneActivity, PaneSampler
from oxtail_core.model import RegistryEntry
from oxtail_fs.store import layout, names
from oxtail_mcp.cockpit.comms import Comm, CommsLog
from oxtail_mcp.commands.liveness import PanePass, pane_pass
from oxtail_mcp.commands.status import Snapshot, snapshot

WATCHED = (names.REGISTRY, names.SESSIONS, names.INBOXES, layout.RECEIVED, layout.PENDING, names.ACTIVITY)
"""The directories whose contents make up a frame: registry, mail, ledgers, asks, markers. Receipts
are left out on purpose: nothing shown reads them, and they pile up (one per delivered message)."""


@attrs.frozen
class Frame:
    """One refresh: the snapshot, the log, and when it was read (wall clock, for the screen)."""

    snap: Snapshot
    comms: tuple[Comm, ...]
    read_at: float
    cpu_ms: float


@attrs.define
class Source:
    """A project's view of one state directory."""

    ctx: Context
    root: str
    home: Path
    env: Mapping[str, str]
    trace: Path | None = None
    panes: PanePass | None = pane_pass
    """How the agents' panes are read for liveness (None: never); sampled every 1.5 s (selfheal §5.2)."""
    _comms: CommsLog = attrs.field(init=False)
    _sampler: PaneSampler | None = attrs.field(init=False, default=None)
    _entries: list[RegistryEntry] = attrs.field(init=False, factory=list)

    def __attrs_post_init__(self) -> None:
        self._comms = CommsLog(self.ctx.store)
        if self.panes is not None:
            read = self.panes
            self._sampler = PaneSampler(self.ctx.clock, lambda: dict(read(self.ctx, self._entries)))

    def _sampled(self, ctx: Context, entries: list[RegistryEntry]) -> Mapping[int, PaneActivity]:
        """The last pane pass while it is fresh, else a new one over ``entries``."""
        assert self._sampler is not None
        self._entries = entries
        return self._sampler.current()

    def read(self) -> Frame:
        """One snapshot and the log of its agents (blocking: run it off the UI loop)."""
        started = time.process_time()
        panes = self._sampled if self._sampler is not None else None
        snap = snapshot(self.ctx, self.root, self.home, self.trace, panes=panes, env=self.env)
        comms = self._comms.recent(r.session_id for r in snap.rows if r.session_id)
        return Frame(snap, tuple(comms), time.time(), (time.process_time() - started) * 1000)

    def fingerprint(self) -> tuple[object, ...]:
        """Changes whenever a file in :data:`WATCHED` appears, goes, grows or is rewritten."""
        seen: list[object] = []
        for name in WATCHED:
            try:
                with os.scandir(self.home / name) as entries:
                    for entry in entries:
                        try:
                            st = entry.stat(follow_symlinks=False)
                        except OSError:
                            continue
                        seen.append((entry.name, st.st_ino, st.st_size, st.st_mtime_ns))
            except OSError:
                seen.append((name, None))
        return tuple(seen)
