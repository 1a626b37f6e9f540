"""Delivery: mint an envelope once, record it in the receiver's ledger, then append it.

Record-before-append is the invariant behind reply-by-id: any message id a
receiver can see already resolves in its ledger, because the line only
becomes visible after the ledger write finished (or failed, which is traced
and degrades to ``message-not-found``; it never blocks delivery).
"""

from __future__ import annotations

from oxtail_core.context import Context
from oxtail_core.errors import StoreError
from oxtail_core.ids import canonical_session_id, new_id
from oxtail_core.limits import SESSION_ID_MAX_CHARS, check_id
from oxtail_core.model import Envelope, RegistryEntry, check_body
from oxtail_core.routing import inbox_of
from oxtail_core.trace import safe_emit
from oxtail_core.wire import utf8len


def mint(
    ctx: Context,
    body: str,
    sender: str | None,
    *,
    request_id: str | None = None,
    reply_to: str | None = None,
    source_message_id: str | None = None,
) -> Envelope:
    """A fresh envelope: new id, integer-second timestamp, byte count, provenance; ids bounded (limits)."""
    check_body(body)
    check_id("from_session_id", sender, SESSION_ID_MAX_CHARS)
    check_id("request_id", request_id)
    check_id("reply_to", reply_to)
    check_id("source_message_id", source_message_id)
    return Envelope(
        id=new_id(),
        body=body,
        enqueued_at=ctx.clock.now_ms() // 1000,
        body_bytes=utf8len(body),
        origin="peer",
        from_session_id=sender,
        request_id=request_id,
        reply_to=reply_to,
        source_message_id=source_message_id,
    )


def record_received(ctx: Context, session_id: str | None, envelope: Envelope) -> None:
    """Ledger write, best effort: a failure is traced and swallowed so delivery still happens."""
    if not session_id:
        return
    sid = canonical_session_id(session_id)
    try:
        dropped = ctx.store.ledger_record(sid, envelope, ctx.settings.received_max)
    except StoreError as exc:
        safe_emit(ctx.tracer, "received_ledger_write_failed", message_id=envelope.id, error=str(exc))
        return
    if dropped:
        safe_emit(
            ctx.tracer,
            "received_ledger_pruned",
            session_id=sid,
            dropped=dropped,
            kept=ctx.settings.received_max,
        )


def deliver(ctx: Context, peer: RegistryEntry, envelope: Envelope) -> bool:
    """Record, then append; False if ``peer`` vanished since it was resolved (nothing was delivered).

    Mail for an agent goes to its session inbox, which outlives every server.
    Mail for an unclaimed server goes to that process's inbox, and only while
    the server's registry entry still stands: the store makes this append
    atomic with the removal of the last breadcrumb, so mail can never land
    where no reader will ever look. An append failure propagates: the caller
    reports it and nothing was sent.
    """
    record_received(ctx, peer.session_id, envelope)
    inbox = inbox_of(peer)
    if inbox.kind == "session":
        return ctx.store.append(inbox, [envelope])
    return ctx.store.append(inbox, [envelope], only_if_registered=peer)
