"""Delivery: mint an envelope once, record it in the receiver's ledger, append it, note it in the outbox.

Record-before-append is the invariant behind reply-by-id and obligations: any
message id a receiver can see already resolves in its ledger (and a
delegation is already listed by my_open_work, A13), because the line only
becomes visible after the ledger write finished. A failed ledger write is
traced and degrades to ``message-not-found`` for a plain message; for a
durable delegation (``action_required``) it aborts the delivery before
anything is appended (fail loud, :class:`~oxtail_core.errors.ObligationNotRecorded`).
"""

from __future__ import annotations

from collections.abc import Callable

from oxtail_core import texts
from oxtail_core.context import Context
from oxtail_core.errors import InboxFull, ObligationNotRecorded, OutcomeUnknown, StoreError
from oxtail_core.ids import canonical_session_id, new_id
from oxtail_core.limits import SESSION_ID_MAX_CHARS, check_id
from oxtail_core.model import Envelope, Obligation, RegistryEntry, check_body
from oxtail_core.receipts import record_outbox
from oxtail_core.routing import fold_if_dead, inbox_of
from oxtail_core.trace import safe_emit
from oxtail_core.wire import utf8len


def mint(
    ctx: Context,
    body: str,
    sender: str | None,
    *,
    message_id: str | None = None,
    request_id: str | None = None,
    reply_to: str | None = None,
    source_message_id: str | None = None,
    action_required: bool = False,
    checked: bool = False,
) -> Envelope:
    """A fresh envelope: new id (or ``message_id``: pre-minted, or a completion's deterministic id),
    integer-second timestamp, byte count, provenance; ids bounded (limits).

    ``checked``: the caller already bounded the text it was given (block_work's
    ``[blocked] `` prefix is not counted against the 8192 bytes, A28).
    """
    if not checked:
        check_body(body)
    check_id("from_session_id", sender, SESSION_ID_MAX_CHARS)
    check_id("request_id", request_id)
    check_id("reply_to", reply_to)
    check_id("source_message_id", source_message_id)
    return Envelope(
        id=message_id or new_id(),
        body=body,
        enqueued_at=ctx.clock.now_ms() // 1000,
        body_bytes=utf8len(body),
        origin="peer",
        from_session_id=sender,
        request_id=request_id,
        reply_to=reply_to,
        source_message_id=source_message_id,
        action_required=action_required,
    )


def fresh_id() -> str:
    """A new hex16 id (request ids, pre-minted message ids); minted here so race machines replay it."""
    return new_id()


def record_received(ctx: Context, session_id: str | None, envelope: Envelope) -> None:
    """Ledger write. Best effort for plain messages: a failure is traced and swallowed so delivery
    still happens. A durable delegation raises :class:`ObligationNotRecorded` instead (fail loud)."""
    if not session_id:
        return
    sid = canonical_session_id(session_id)
    try:
        dropped = ctx.store.ledger_record(sid, envelope, ctx.settings.received_max)
    except StoreError as exc:
        safe_emit(ctx.tracer, "received_ledger_write_failed", message_id=envelope.id, error=str(exc))
        if envelope.action_required:
            raise ObligationNotRecorded(str(exc)) from exc
        return
    if dropped:
        safe_emit(
            ctx.tracer,
            "received_ledger_pruned",
            session_id=sid,
            dropped=dropped,
            kept=ctx.settings.received_max,
        )


def _withdraw(ctx: Context, peer: RegistryEntry, envelope: Envelope) -> None:
    """Undo what a refused delegation recorded: its ledger line is closed as blocked (so it is no
    open work of the receiver) and its waiter expectation dropped. Best effort, traced."""
    if not envelope.action_required or not peer.session_id:
        return
    try:
        note = texts.NOT_DELIVERED_INBOX_FULL
        ctx.store.ledger_close(
            canonical_session_id(peer.session_id),
            envelope.id,
            Obligation(state="blocked", at=ctx.clock.now_ms() // 1000, note=note),
        )
        if envelope.from_session_id and envelope.request_id:
            ctx.store.pending_take(envelope.from_session_id, envelope.request_id, peer.session_id)
    except StoreError as exc:
        safe_emit(ctx.tracer, "inbox_full_withdraw_failed", message_id=envelope.id, error=str(exc))


def deliver(
    ctx: Context, peer: RegistryEntry, envelope: Envelope, *, recorded: Callable[[], None] | None = None
) -> bool:
    """Record, then append, then write the outbox; False if ``peer`` vanished since it was resolved
    (nothing was delivered). ``recorded`` runs between the ledger write and the append (a durable
    delegation's waiter expectation, so a failed ledger write leaves none behind).

    Mail for an agent goes to its session inbox, which outlives every server.
    Mail for an unclaimed server goes to that process's inbox, and only while
    the server's registry entry still stands: the store makes this append
    atomic with the removal of the last breadcrumb, so mail can never land
    where no reader will ever look. An append failure propagates: the caller
    reports it and nothing was sent.

    A full inbox (``inbox-full``, ours) is refused before anything is recorded
    (:meth:`~oxtail_core.protocols.Store.admit`). If it filled between that look
    and the append, what was recorded is withdrawn (:func:`_withdraw`).
    """
    inbox = inbox_of(peer)
    ctx.store.admit(inbox, [envelope])
    record_received(ctx, peer.session_id, envelope)
    if recorded is not None:
        recorded()
    try:
        if inbox.kind == "session":
            appended = ctx.store.append(inbox, [envelope])
        else:
            appended = ctx.store.append(inbox, [envelope], only_if_registered=peer)
            if appended:
                fold_if_dead(ctx, peer)
    except InboxFull:
        _withdraw(ctx, peer, envelope)
        raise
    except OutcomeUnknown as exc:
        exc.message_id = envelope.id  # maybe delivered: the caller can ask message_status of it
        raise
    if appended:
        record_outbox(ctx, peer, envelope)
    return appended
