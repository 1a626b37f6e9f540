"""The recent-communications log: the in-scope agents' received ledgers, merged, oldest first.

Every delivered message is recorded in exactly one ledger, its receiver's, with its sender in
``from_session_id`` (none for the operator), so the merged ledgers are the fleet's conversation.
The Store protocol has no "list a ledger" call, so this reads the files of the state directory the
way :class:`oxtail_fs.store.FsStore` lays them out, lock-free (a ledger is only appended to or
replaced whole by a rename) and tolerant of torn or foreign lines, which are skipped. A ledger is
parsed again only when its size, mtime or inode changed, so an idle fleet costs one ``stat`` per
agent per refresh.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import attrs

from oxtail_core.errors import StoreError
from oxtail_fs import ledger
from oxtail_fs.atomic import read_all
from oxtail_fs.layout import Layout

LOG_LIMIT = 50


@attrs.frozen
class Comm:
    """One delivered message, as the log shows it."""

    message_id: str
    sender: str | None
    receiver: str
    body: str
    at_s: int
    operator: bool
    asked: bool  # it carries a request_id: an ask or a delegation expecting an answer
    reply: bool
    action_required: bool
    closed: str | None  # "done" / "blocked" once a delegation was closed


class CommsLog:
    """Reads and caches the ledgers of a state directory."""

    def __init__(self, home: Path) -> None:
        self._layout = Layout(home)
        self._cache: dict[str, tuple[tuple[int, int, int], tuple[Comm, ...]]] = {}

    def recent(self, session_ids: Iterable[str], limit: int = LOG_LIMIT) -> list[Comm]:
        """The newest ``limit`` messages received by ``session_ids``, oldest first (ties by id)."""
        merged: dict[str, Comm] = {}
        for sid in dict.fromkeys(session_ids):
            for comm in self._ledger(sid):
                merged.setdefault(comm.message_id, comm)
        ordered = sorted(merged.values(), key=lambda c: (c.at_s, c.message_id))
        return ordered[-limit:]

    def _ledger(self, session_id: str) -> tuple[Comm, ...]:
        path = self._layout.ledger(session_id)
        try:
            st = os.lstat(path)
        except OSError:
            return ()
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        cached = self._cache.get(session_id)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            data = read_all(path)
        except StoreError:
            return ()
        comms = tuple(_comms(session_id, data))
        self._cache[session_id] = (stamp, comms)
        return comms


def _comms(receiver: str, data: bytes) -> Iterable[Comm]:
    for raw in ledger.split(data):
        record = ledger.parse(raw)
        if record is None:
            continue
        env = record.envelope
        yield Comm(
            message_id=env.id,
            sender=env.from_session_id,
            receiver=receiver,
            body=env.body,
            at_s=env.enqueued_at or 0,
            operator=env.origin == "operator",
            asked=env.request_id is not None,
            reply=env.reply_to is not None,
            action_required=env.action_required,
            closed=record.obligation.state if record.obligation else None,
        )
