"""Durable obligations: my_open_work, complete_work and block_work (accounting.md §3).

An obligation is an ``action_required`` line of the receiver's ledger without
an outcome. It lives only there: no mailbox, wake or sender record is needed
for it to stay listed, and it is never pruned (the store's rule). Closing it
is a compare-and-set in the store (:meth:`~oxtail_core.protocols.Store.ledger_close`),
so of concurrent closers exactly one flips it.

The close, in the order of §3.5 (each row decides before the next is looked at):

| # | check | answer |
|---|---|---|
| 1 | caller unclaimed | ``no-session-id`` (E2) |
| 2 | id not in the caller's ledger | ``message-not-found`` (E3) |
| 3 | not ``action_required`` | ``not-an-obligation`` (E4) |
| 4 | already closed | ok, stored state, ``already_closed``, N3; nothing sent |
| 5 | no ``from_session_id`` (unclaimed sender) | claim; ok, N4; nothing sent |
| 6 | a receipt exists for the completion id | claim; ok, ``already_delivered``, N5 (before resolving) |
| 7 | requester does not resolve | ``requester-unreachable`` (E5); stays open |
| 8 | delivery raises | ``delivery-failed`` (E6); stays open |
| 9 | delivered, then claim | ok; a lost claim adds ``already_closed`` (A23) |
| 10 | wake (default ``"auto"``), ``reply_to`` = its request id | consumes a live expectation (late reply) |

On every claiming row (5, 6, 9) a claim lost to a concurrent closer adds
``already_closed`` while keeping the requested state (Appendix B.3); the
reference adds it on row 9 only, so exactly one caller of ours ever reports a
close without ``already_closed``: the one whose claim won.

The completion id is derived from the obligation id, so a retry after a crash
or a concurrent closer delivers the *same* message: the requester's ledger
keeps one line for it and a drain returns it once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from oxtail_core import texts
from oxtail_core.context import Context
from oxtail_core.convert import metadata_size
from oxtail_core.delivery import deliver, mint
from oxtail_core.effects import Flow
from oxtail_core.errors import StoreError
from oxtail_core.ids import canonical_session_id
from oxtail_core.limits import READ_METADATA_MAX_BYTES
from oxtail_core.messaging import trace_wake
from oxtail_core.model import (
    BODY_MAX_BYTES,
    NOTE_MAX_CHARS,
    Envelope,
    Obligation,
    ObligationState,
    RegistryEntry,
    WakeMode,
)
from oxtail_core.results import (
    CLOSE_NO_SESSION_ID,
    OPEN_WORK_NO_SESSION_ID,
    Closed,
    OpenWork,
    Refused,
    RequesterUnreachable,
    delivery_failed,
    not_an_obligation,
    obligation_not_found,
)
from oxtail_core.routing import VANISHED, Unresolved, resolve_target
from oxtail_core.selfheal import note_wake_intent
from oxtail_core.wake import resolve_send_wake
from oxtail_core.wire import utf8len

BLOCKED_PREFIX = "[blocked] "
"""What a block_work completion's body starts with (not counted by the reason's size limit, A28)."""


def completion_id(obligation_id: str) -> str:
    """The deterministic id of an obligation's completion: first 16 hex of SHA-256 (accounting.md §0.1)."""
    return hashlib.sha256(f"oxtail-complete:{obligation_id}".encode()).hexdigest()[:16]


def _budget(items: Sequence[Envelope], max_messages: float, max_bytes: float) -> list[Envelope]:
    """Best fit, not a prefix (A33): an item that does not fit is skipped and a later smaller one may
    still be shown; the first item always fits. Metadata counts beside the bodies, as in a read."""
    shown: list[Envelope] = []
    used = meta = 0
    for item in items:
        if len(shown) >= max_messages:
            break
        extra = metadata_size(item) + utf8len(texts.required_action(item.id))
        if shown and (used + item.size > max_bytes or meta + extra > READ_METADATA_MAX_BYTES):
            continue
        shown.append(item)
        used += item.size
        meta += extra
    return shown


def open_work(ctx: Context, me: RegistryEntry) -> OpenWork | Refused:
    """The caller's open obligations, oldest first (same second: newest first), budgeted like a read.

    Read-only: nothing is drained, no receipt written. An unreadable ledger raises StoreError.
    """
    if not me.session_id:
        return OPEN_WORK_NO_SESSION_ID
    newest_first = ctx.store.ledger_open(canonical_session_id(me.session_id))
    ordered = sorted(newest_first, key=lambda e: e.enqueued_at or 0)  # stable: ties stay newest first
    shown = _budget(ordered, ctx.settings.read_max_messages, ctx.settings.read_max_body_bytes)
    return OpenWork(tuple(shown), ctx.clock.now_ms() // 1000, deferred=len(ordered) - len(shown))


def check_text(name: str, text: str) -> None:
    """ValueError unless ``text`` is 1 character to 8192 UTF-8 bytes (``name`` is body or reason)."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"{name} must be a non-empty string")
    if utf8len(text) > BODY_MAX_BYTES:
        raise ValueError(f"{name} exceeds {BODY_MAX_BYTES} UTF-8 bytes")


def close(
    ctx: Context,
    me: RegistryEntry,
    message_id: str,
    text: str,
    *,
    state: ObligationState,
    wake: WakeMode | None,
) -> Flow[Closed | RequesterUnreachable | Refused]:
    """complete_work (``state="done"``, ``text`` the result) and block_work (``"blocked"``, ``text`` the
    reason, delivered after :data:`BLOCKED_PREFIX`): the table of the module docstring, in order."""
    check_text("body" if state == "done" else "reason", text)
    body = text if state == "done" else BLOCKED_PREFIX + text
    if not me.session_id:  # 1
        return CLOSE_NO_SESSION_ID
    sid = canonical_session_id(me.session_id)
    record = ctx.store.ledger_entry(sid, message_id)  # 2 (a read failure propagates)
    if record is None:
        return obligation_not_found(message_id)
    inbound = record.envelope
    if not inbound.action_required:  # 3
        return not_an_obligation(message_id)
    if record.obligation is not None:  # 4: closed is terminal; the stored state, whoever asks
        return Closed(message_id, record.obligation.state, already_closed=True, note=texts.ALREADY_CLOSED)
    outcome = Obligation(state=state, at=ctx.clock.now_ms() // 1000, note=body[:NOTE_MAX_CHARS])
    requester = inbound.from_session_id
    if not requester:  # 5
        lost = ctx.store.ledger_close(sid, message_id, outcome).kind == "already-closed"
        return Closed(message_id, state, already_closed=lost, note=texts.CLOSED_LOCALLY)
    cid = completion_id(message_id)
    if _has_receipt(ctx, cid):  # 6: checked before resolving, so a gone requester still closes
        lost = ctx.store.ledger_close(sid, message_id, outcome).kind == "already-closed"
        return Closed(
            message_id,
            state,
            completion_message_id=cid,
            requester_session_id=requester,
            already_closed=lost,
            already_delivered=True,
            note=texts.ALREADY_DELIVERED,
        )
    peer = resolve_target(ctx, me, requester, as_session=True)  # 7
    if isinstance(peer, Unresolved):
        return RequesterUnreachable(requester, peer.error)
    completion = mint(
        ctx,
        body,
        me.session_id,
        message_id=cid,
        reply_to=inbound.request_id,
        source_message_id=message_id,
        checked=True,
    )
    try:  # 8: deliver first ...
        delivered = deliver(ctx, peer, completion)
    except (StoreError, OSError) as exc:
        return delivery_failed(str(exc))
    if not delivered:
        return RequesterUnreachable(requester, VANISHED.error)
    claim = ctx.store.ledger_close(sid, message_id, outcome)  # 9: ... then claim
    wake_outcome = yield from resolve_send_wake(  # 10
        ctx, me, peer, "auto" if wake is None else wake, inbound.request_id
    )
    trace_wake(ctx, "complete_work", peer, wake_outcome)
    note_wake_intent(ctx, me, peer, cid, wake_outcome)
    return Closed(
        message_id,
        state,
        completion_message_id=cid,
        requester_session_id=peer.session_id,
        correlated=bool(inbound.request_id),
        already_closed=claim.kind == "already-closed",
        wake=wake_outcome,
    )


def _has_receipt(ctx: Context, message_id: str) -> bool:
    try:
        return ctx.store.receipt_get(message_id) is not None
    except (StoreError, OSError):
        return False
