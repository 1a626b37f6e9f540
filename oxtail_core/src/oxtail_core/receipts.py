"""Delivery receipts, the sender's outbox, and message_status (accounting.md §1.2, §1.3, §2).

A receipt says *handed into the agent's context*. We write it when a read is
settled -- after its response was flushed to the client (a server) or
returned to the caller (the Python API) -- never before, so a batch a crash
lost is never reported ``delivered`` (the reference wrote it before the
response, A5). A batch that is put back instead gets no receipt (A6).

Both records are write-once (the first hand-off, the first enqueue win) and
best effort: no receipt or outbox failure ever changes a delivery.

message_status answers from those records and from a read-only peek of the
target's inboxes, in this order:

| receipt | outbox | id in a target inbox (waiting or in flight) | status |
|---|---|---|---|
| valid | any | any | ``delivered`` |
| none | yes | yes | ``pending`` (in flight counts: A3, ours) |
| none | yes | no | ``unknown`` + N1 |
| none | none | any | ``unknown`` + N2 |
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from oxtail_core.context import Context
from oxtail_core.errors import StoreError
from oxtail_core.ids import HEX16
from oxtail_core.model import Envelope, OutboxRecord, Receipt, ReceiptVia, RegistryEntry
from oxtail_core.protocols import Batch, InboxId
from oxtail_core.results import Handoff, MessageStatus
from oxtail_core.routing import session_inbox
from oxtail_core.trace import safe_emit

RETENTION_MS = 7 * 24 * 3600 * 1000
"""Receipts and outbox records older than this are removed at registry writes (accounting.md §1.8)."""


def collect_old_records(ctx: Context) -> None:
    """Remove receipts and outbox records past :data:`RETENTION_MS`; best effort, never raises."""
    try:
        ctx.store.receipts_gc(ctx.clock.now_ms() - RETENTION_MS)
    except Exception as exc:  # noqa: BLE001 - housekeeping never fails a registry write
        safe_emit(ctx.tracer, "receipts_gc_failed", error=str(exc))


def write_receipts(
    ctx: Context, envelopes: Iterable[Envelope], via: ReceiptVia, recipient: str | None
) -> None:
    """One write-once receipt per message (ids that are not hex16 are skipped); failures swallowed."""
    now_s = ctx.clock.now_ms() // 1000
    for env in envelopes:
        if not HEX16.match(env.id):
            continue
        try:
            ctx.store.receipt_put(Receipt(env.id, now_s, via, recipient))
        except Exception as exc:  # noqa: BLE001 - a receipt never affects the delivery it records
            safe_emit(ctx.tracer, "receipt_write_failed", message_id=env.id, error=str(exc))


def settle_delivered(ctx: Context, batch: Batch, via: ReceiptVia, recipient: str | None) -> None:
    """The messages of ``batch`` were handed on: settle it, then receipt each of them.

    Settling first means a receipt never exists for a batch that could still
    be delivered again from the store; a crash between the two leaves a
    delivered message without receipt (``unknown``, N1), never the reverse.
    """
    ctx.store.settle(batch)
    write_receipts(ctx, batch.envelopes, via, recipient)


def settle_handoff(ctx: Context, handoff: Handoff) -> None:
    """:func:`settle_delivered` for a :class:`~oxtail_core.results.Handoff`."""
    settle_delivered(ctx, handoff.batch, handoff.via, handoff.recipient)


def prepare_handoff(ctx: Context, handoff: Handoff) -> Callable[[], None]:
    """:func:`settle_handoff` split in two: call this before handing the messages on, and the
    callable it returns right after; it commits the settle first (the store's one step, see
    :meth:`~oxtail_core.protocols.Store.prepare_settle`), then writes the receipts."""
    commit = ctx.store.prepare_settle(handoff.batch)

    def settled() -> None:
        commit()
        write_receipts(ctx, handoff.batch.envelopes, handoff.via, handoff.recipient)

    return settled


def record_outbox(ctx: Context, peer: RegistryEntry, envelope: Envelope) -> None:
    """The sender's write-once note of a fresh enqueue (after the append succeeded); best effort.

    For an unclaimed target it names the process inbox exactly (pid and start).
    """
    record = OutboxRecord(
        message_id=envelope.id,
        enqueued_at=envelope.enqueued_at,
        target_session_id=peer.session_id,
        target_server_pid=peer.server_pid,
        from_session_id=envelope.from_session_id,
        target_started_at=None if peer.session_id else peer.started_at,
    )
    try:
        ctx.store.outbox_put(record)
    except Exception as exc:  # noqa: BLE001 - the message is delivered; its note is best effort
        safe_emit(ctx.tracer, "outbox_write_failed", message_id=envelope.id, error=str(exc))


def _target_inboxes(ctx: Context, out: OutboxRecord) -> list[InboxId]:
    """Every inbox where the message can still wait: the session inbox of a claimed target; for an
    unclaimed one its process inbox, plus the session inbox of that process if it has claimed since
    (the claim moved the process inbox there)."""
    if out.target_session_id:
        return [session_inbox(out.target_session_id)]
    try:
        entries = ctx.store.registry_entries()
    except (StoreError, OSError):
        entries = []
    same_pid = [e for e in entries if e.server_pid == out.target_server_pid]
    if out.target_started_at is not None:
        same_pid = [e for e in same_pid if e.started_at == out.target_started_at]
        inboxes = [InboxId.for_process(out.target_server_pid, out.target_started_at)]
    else:  # a record written by the reference: any incarnation of that pid we know of
        inboxes = [InboxId.for_process(e.server_pid, e.started_at) for e in same_pid]
    inboxes += [session_inbox(e.session_id) for e in same_pid if e.session_id]
    return inboxes


def _peek(ctx: Context, inbox: InboxId, message_id: str) -> bool:
    try:
        return ctx.store.peek(inbox, message_id)
    except (StoreError, OSError):
        return False  # A12: at most a flip to "unknown", never a failure


def message_status(ctx: Context, message_id: str) -> MessageStatus:
    """delivered (receipt), pending (still in an inbox of the target) or unknown; anyone may ask (§2.4)."""
    try:
        receipt = ctx.store.receipt_get(message_id)
    except (StoreError, OSError):
        receipt = None
    if receipt is not None:
        return MessageStatus(message_id, "delivered", receipt=receipt)
    try:
        out = ctx.store.outbox_get(message_id)
    except (StoreError, OSError):
        out = None
    if out is None:
        return MessageStatus(message_id, "unknown")
    pending = any(_peek(ctx, inbox, message_id) for inbox in _target_inboxes(ctx, out))
    return MessageStatus(message_id, "pending" if pending else "unknown", outbox=out)
