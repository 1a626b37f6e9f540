"""send_message, reply_to_message and read_my_messages as core operations.

Each sending operation resolves, delivers (record-before-append), then
resolves the wake; wake problems never turn a delivered message into an
error. Reading takes a budgeted, order-preserving prefix of the inbox into an
in-flight batch that the caller settles once the messages are handed on.
"""

from __future__ import annotations

from collections.abc import Sequence

from oxtail_core.context import Context
from oxtail_core.delivery import deliver, mint
from oxtail_core.effects import Flow
from oxtail_core.errors import StoreBusy, StoreError
from oxtail_core.ids import canonical_session_id
from oxtail_core.model import Envelope, RegistryEntry, WakeMode, WakeOutcome, WakeReason, check_body
from oxtail_core.protocols import Holder, InboxId
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
from oxtail_core.trace import safe_emit
from oxtail_core.wake import resolve_send_wake, unresolved_wake


def holder_of(me: RegistryEntry) -> Holder:
    """The identity under which ``me`` holds messages in flight."""
    return Holder(me.server_pid, me.process_start)


def _trace_wake(ctx: Context, via: str, peer: RegistryEntry, wake: WakeOutcome) -> None:
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
    """Fire and forget: deliver ``body`` to ``target``, then wake it as ``wake``/``reply_to`` say."""
    check_body(body)
    peer = resolve_target(ctx, me, target)
    if isinstance(peer, Unresolved):
        return NotSent(peer, unresolved_wake(ctx, wake, reply_to, peer.error))
    envelope = mint(ctx, body, me.session_id, reply_to=reply_to, source_message_id=source_message_id)
    if not deliver(ctx, peer, envelope):
        return NotSent(VANISHED, unresolved_wake(ctx, wake, reply_to, VANISHED.error))
    outcome = yield from resolve_send_wake(ctx, me, peer, wake, reply_to or None)
    _trace_wake(ctx, "send_message", peer, outcome)
    return Sent(envelope.id, peer.session_id, peer.server_pid, outcome)


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
    _trace_wake(ctx, "reply_to_message", peer, outcome)
    return Replied(envelope.id, message_id, peer.session_id, peer.server_pid, bool(reply_to), outcome)


class _Budget:
    """Selects the longest prefix within the count and byte budgets (the first message always fits).

    Prefix, not best-fit: a newer message is never delivered ahead of an
    older one that was deferred (the reference could, R20).
    """

    def __init__(self, max_messages: float, max_bytes: float) -> None:
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.deferred = 0

    def __call__(self, messages: Sequence[Envelope]) -> list[int]:
        chosen: list[int] = []
        used = 0
        for index, message in enumerate(messages):
            if len(chosen) >= self.max_messages or (chosen and used + message.size > self.max_bytes):
                break
            chosen.append(index)
            used += message.size
        self.deferred = len(messages) - len(chosen)
        return chosen


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
    delivered again with the same ids.
    """
    skipped = 0 if fold_process_inbox(ctx, me) else 1
    inbox: InboxId = inboxes_of(me)[0]
    budget = _Budget(ctx.settings.read_max_messages, ctx.settings.read_max_body_bytes)
    try:
        ctx.store.recover(inbox, is_holder_alive(ctx))
        batch = ctx.store.take(inbox, budget, holder_of(me))
    except StoreBusy:
        return Messages((), skipped=skipped + 1)
    if batch is None:
        return Messages((), skipped=skipped)
    return Messages(batch.envelopes, deferred=budget.deferred, skipped=skipped, batch=batch)
