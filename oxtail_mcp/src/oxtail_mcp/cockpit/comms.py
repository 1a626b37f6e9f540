"""The recent-communications log: the in-scope agents' received ledgers, merged, oldest first.

Every delivered message is recorded in exactly one ledger, its receiver's, with its sender in
``from_session_id`` (none for the operator), so the merged ledgers are the fleet's conversation.
The ledgers are read through the Store (:meth:`~oxtail_core.protocols.Store.ledger_records`,
lock-free), so every store shows its log; an unreadable ledger shows nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from oxtail_core.errors import StoreError
from oxtail_core.model import LedgerRecord
from oxtail_core.protocols import Store

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
    """The log of one store's ledgers."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def recent(self, session_ids: Iterable[str], limit: int = LOG_LIMIT) -> list[Comm]:
        """The newest ``limit`` messages received by ``session_ids``, oldest first (ties by id)."""
        merged: dict[str, Comm] = {}
        for sid in dict.fromkeys(session_ids):
            try:
                records = self._store.ledger_records(sid)
            except StoreError:
                continue
            for comm in _comms(sid, records):
                merged.setdefault(comm.message_id, comm)
        ordered = sorted(merged.values(), key=lambda c: (c.at_s, c.message_id))
        return ordered[-limit:]


def _comms(receiver: str, records: Iterable[LedgerRecord]) -> Iterable[Comm]:
    for record in records:
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
