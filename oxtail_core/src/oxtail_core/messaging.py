"""send_message, reply_to_message and read_my_messages as core operations.

Each sending operation resolves, delivers (record-before-append), then
resolves the wake; wake problems never turn a delivered message into an
error. Reading takes a budgeted, order-preserving prefix of the inbox into an
in-flight batch that the caller settles once the messages are handed on.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

from oxtail_core import texts
from oxtail_core.context import Context
from oxtail_core.convert import metadata_size
from oxtail_core.delivery import deliver, fresh_id, mint
from oxtail_core.effects import Flow
from oxtail_core.errors import OutcomeUnknown, StoreBusy, StoreError
from oxtail_core.ids import canonical_session_id
from oxtail_core.limits import READ_METADATA_MAX_BYTES
from oxtail_core.model import (
    Envelope,
    RegistryEntry,
    WakeMode,
    WakeOutcome,
    WakeReason,
    check_body,
)
from oxtail_core.pending import record_pending
from oxtail_core.protocols import Holder, InboxId, waiting_after
from oxtail_core.results import (
    NO_SESSION_ID,
    Messages,
    NotReplied,
    NotSent,
    Refused,
    Replied,
    Sent,
    message_not_found,
    no_reply_target,
)
from oxtail_core.routing import (
    VANISHED,
    Unresolved,
    inboxes_of,
    is_holder_alive,
    process_inbox,
    resolve_target,
)
from oxtail_core.selfheal import note_wake_intent
from oxtail_core.trace import safe_emit
from oxtail_core.wake import resolve_send_wake, unresolved_wake


def holder_of(me: RegistryEntry) -> Holder:
    """The identity under which ``me`` holds messages in flight (with its host: recover judges it there)."""
    return Holder(me.server_pid, me.process_start, me.host_id)


def trace_wake(ctx: Context, via: str, peer: RegistryEntry, wake: WakeOutcome) -> None:
    if wake.status is None:
        return
    safe_emit(
        ctx.tracer,
        "wake_outcome",
        via="reply_default" if wake.reason is WakeReason.REPLY_TO_DEFAULT else via,
        wake_status=wake.status.value,
        target_session_id=peer.session_id,
        client_type=peer.client.type,
    )


def effective_wake(wake: WakeMode | None, reply_to: str | None, action_required: bool) -> WakeMode | None:
    """A delegation wants prompt pickup: ``"auto"`` unless the caller chose a wake or gave a
    ``reply_to`` (which keeps the strict reply default), accounting.md §3.1 step 1."""
    return "auto" if action_required and wake is None and not reply_to else wake


def _send_note(peer: RegistryEntry, action_required: bool, durable: bool) -> str | None:
    """accounting.md §3.1 step 6 and §6.2: which of S1/S2/S3 a successful send carries."""
    if action_required and not durable:
        return texts.DELEGATION_TO_UNCLAIMED if not peer.session_id else texts.DELEGATION_TO_INCAPABLE
    return texts.UNCLAIMED_TARGET if not peer.session_id else None


def send_message(
    ctx: Context,
    me: RegistryEntry,
    target: str,
    body: str,
    *,
    wake: WakeMode | None = None,
    reply_to: str | None = None,
    source_message_id: str | None = None,
    action_required: bool = False,
) -> Flow[Sent | NotSent]:
    """Fire and forget: deliver ``body`` to ``target``, then wake it as ``wake``/``reply_to`` say.

    ``action_required`` asks for a durable delegation: it becomes one iff the
    target is claimed and obligations-capable (else plain mail plus a note).
    A durable delegation from a claimed sender that allows wakes carries a
    minted ``request_id`` and leaves a waiter expectation (a pending ask on the
    target), recorded once the receiver's ledger line is written. A failed
    ledger write raises :class:`~oxtail_core.errors.ObligationNotRecorded`:
    nothing appended, no outbox, no expectation, no wake.
    """
    check_body(body)
    wake = effective_wake(wake, reply_to, action_required)
    peer = resolve_target(ctx, me, target)
    if isinstance(peer, Unresolved):
        return NotSent(peer, unresolved_wake(ctx, wake, reply_to, peer.error))
    durable = action_required and bool(peer.session_id) and peer.obligations_capable
    expect = durable and bool(me.session_id) and wake != "off"
    envelope = mint(
        ctx,
        body,
        me.session_id,
        message_id=fresh_id() if expect else None,
        request_id=fresh_id() if expect else None,
        reply_to=reply_to,
        source_message_id=source_message_id,
        action_required=durable,
    )
    recorded = functools.partial(_record_expectation, ctx, me, peer, envelope) if expect else None
    if not deliver(ctx, peer, envelope, recorded=recorded):
        return NotSent(VANISHED, unresolved_wake(ctx, wake, reply_to, VANISHED.error))
    outcome = yield from resolve_send_wake(ctx, me, peer, wake, reply_to or None)
    trace_wake(ctx, "send_message", peer, outcome)
    note_wake_intent(ctx, me, peer, envelope.id, outcome)
    return Sent(
        envelope.id,
        peer.session_id,
        peer.server_pid,
        outcome,
        action_required=action_required,
        obligation_durable=durable,
        bootstrap=not peer.session_id,
        note=_send_note(peer, action_required, durable),
    )


def _record_expectation(ctx: Context, me: RegistryEntry, peer: RegistryEntry, envelope: Envelope) -> None:
    """The delegator's "I am owed a result" note (accounting.md §1.5), keyed like a timed-out ask.

    Written after the receiver's ledger line and before the append (Appendix
    B.4: a fail-loud send leaves no orphan to re-poke). Best effort.
    """
    if not me.session_id or not peer.session_id or not envelope.request_id:
        return
    if not record_pending(
        ctx,
        me.session_id,
        envelope.request_id,
        peer.session_id,
        ctx.clock.now_ms(),
        message_id=envelope.id,
        owner_epoch=me.started_at,
    ):
        safe_emit(ctx.tracer, "ask_peer_pending_record_failed", request_id=envelope.request_id)


def reply_to_message(
    ctx: Context, me: RegistryEntry, message_id: str, body: str, *, wake: WakeMode | None = None
) -> Flow[Replied | NotReplied | Refused]:
    """Reply to a message by its id: only messages in our own ledger can be replied to.

    A lock timeout on the ledger propagates (the caller reports a retryable
    error) rather than guessing ``message-not-found``.
    """
    check_body(body)
    my_sid = me.session_id
    if not my_sid:
        return NO_SESSION_ID
    inbound = ctx.store.ledger_lookup(canonical_session_id(my_sid), message_id)
    if inbound is None:
        return message_not_found(message_id)
    origin = inbound.from_session_id
    if not origin:
        return no_reply_target(message_id)
    reply_to = inbound.request_id
    peer = resolve_target(ctx, me, origin, as_session=True)
    if isinstance(peer, Unresolved):
        return NotReplied(peer, message_id, origin, unresolved_wake(ctx, wake, reply_to, peer.error))
    envelope = mint(ctx, body, my_sid, reply_to=reply_to, source_message_id=message_id)
    if not deliver(ctx, peer, envelope):
        return NotReplied(VANISHED, message_id, origin, unresolved_wake(ctx, wake, reply_to, VANISHED.error))
    outcome = yield from resolve_send_wake(ctx, me, peer, wake, reply_to)
    trace_wake(ctx, "reply_to_message", peer, outcome)
    note_wake_intent(ctx, me, peer, envelope.id, outcome)
    return Replied(envelope.id, message_id, peer.session_id, peer.server_pid, bool(reply_to), outcome)


COPIES_WINDOW = 50
"""How far past the count budget a read looks for later copies of the ids it takes."""


class _Budget:
    """Selects the longest prefix within the count, body and metadata budgets (the first message always fits).

    Prefix, not best-fit: a newer message is never delivered ahead of an
    older one that was deferred (the reference could, R20). Bodies count as
    the reference counts them (``max_bytes``); everything else a message
    renders counts against ``READ_METADATA_MAX_BYTES`` (ours, issue 15 item 2),
    so no metadata makes a read larger than its budgets. Later copies of a
    chosen id (a completion re-delivered by a retry or a concurrent close) are
    taken with it, free of budget, and returned once (:func:`distinct`).
    """

    def __init__(self, max_messages: float, max_bytes: float) -> None:
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.deferred = 0
        self.window = int(max_messages) + COPIES_WINDOW if math.isfinite(max_messages) else None
        """The store offers only this prefix (protocols.Selector): a copy further back is read later."""

    def __call__(self, messages: Sequence[Envelope]) -> list[int]:
        chosen: list[int] = []
        used = meta = 0
        for index, message in enumerate(messages):
            extra = metadata_size(message)
            over = used + message.size > self.max_bytes or meta + extra > READ_METADATA_MAX_BYTES
            if len(chosen) >= self.max_messages or (chosen and over):
                break
            chosen.append(index)
            used += message.size
            meta += extra
        ids = {messages[i].id for i in chosen}
        copies = [i for i in range(len(chosen), len(messages)) if messages[i].id in ids]
        self.deferred = len(messages) - len(chosen) - len(copies) + waiting_after(messages)
        return chosen + copies


def distinct(envelopes: Sequence[Envelope]) -> tuple[Envelope, ...]:
    """The first copy of each id, in order: one drain returns an id at most once (A23)."""
    seen: set[str] = set()
    out: list[Envelope] = []
    for env in envelopes:
        if env.id not in seen:
            seen.add(env.id)
            out.append(env)
    return tuple(out)


def open_work_count(ctx: Context, me: RegistryEntry) -> int:
    """The caller's open obligations (0 if unclaimed); a ledger that cannot be read counts 0 and is
    traced -- the read it belongs to is never lost over it (A35, ours)."""
    if not me.session_id:
        return 0
    sid = canonical_session_id(me.session_id)
    try:
        return len(ctx.store.ledger_open(sid))
    except Exception as exc:  # noqa: BLE001 - the batch is taken: nothing may lose it now (A35)
        safe_emit(ctx.tracer, "open_work_count_failed", session_id=sid, error=str(exc))
        return 0


def fold_process_inbox(ctx: Context, me: RegistryEntry) -> bool:
    """Move mail that raced our claim (appended to our process inbox) into our session inbox.

    Returns False if the process inbox could not be looked at this time.
    """
    if not me.session_id:
        return True
    source = process_inbox(me)
    try:
        if ctx.store.depth(source):
            ctx.store.merge(source, inboxes_of(me)[0])
    except StoreError:
        return False
    return True


def read_messages(ctx: Context, me: RegistryEntry) -> Messages:
    """Take the next budgeted batch of our mail, oldest first, into flight.

    Batches a dead reader left in flight are restored first, so they are
    delivered again with the same ids. The open-obligation count is read from
    the ledger after the take, so every delegation in the batch is in it.
    """
    skipped = 0 if fold_process_inbox(ctx, me) else 1
    inbox: InboxId = inboxes_of(me)[0]
    budget = _Budget(ctx.settings.read_max_messages, ctx.settings.read_max_body_bytes)
    try:
        ctx.store.recover(inbox, is_holder_alive(ctx))
        batch = ctx.store.take(inbox, budget, holder_of(me))
    except (StoreBusy, OutcomeUnknown):  # a look that could not be made (or not confirmed): nothing lost
        batch, skipped = None, skipped + 1
    reader = me.session_id
    if batch is None:
        return Messages((), skipped=skipped, open_work=open_work_count(ctx, me), recipient=reader)
    return Messages(
        distinct(batch.envelopes),
        deferred=budget.deferred,
        skipped=skipped,
        batch=batch,
        open_work=open_work_count(ctx, me),
        recipient=reader,
    )
