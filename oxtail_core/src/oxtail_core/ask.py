"""ask_peer: delegate a question to a peer and wait for its correlated reply.

The flow, in order:

1. resolve the peer (it must have a session id), deliver the question with a
   fresh ``request_id``;
2. a peer whose marker says *fresh idle* is woken at once; a peer in any other
   state gets a grace period to answer by itself (its hooks deliver mid-turn:
   an answer within it reports ``skipped_busy``, nothing was typed), then a
   lenient wake (``fired_unconfirmed`` for a peer without hooks);
3. wait for the reply, waking the moment it lands, until the deadline;
4. at the deadline (correlated peer, claimed asker): record a pending ask
   *before* one last look, so a reply racing the deadline is either caught by
   that look or finds the note and pulls the asker back later (R38);
5. a caught reply is returned in an in-flight batch; a cancellation while
   holding it puts it back, same id, before re-raising (never lost, R45).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from oxtail_core.context import Context
from oxtail_core.delivery import deliver, mint
from oxtail_core.effects import Flow, Sleep, WaitForMail
from oxtail_core.errors import AskAborted, Cancelled, StoreBusy
from oxtail_core.gates import ASK_GRACE_HIT
from oxtail_core.ids import new_id, same_session_id
from oxtail_core.messaging import fold_process_inbox, holder_of
from oxtail_core.model import Envelope, RegistryEntry, WakeStatus, check_body
from oxtail_core.pending import consume_pending, record_pending
from oxtail_core.protocols import Batch
from oxtail_core.results import PEER_HAS_NO_SESSION_ID, Asked, NotAsked, Refused
from oxtail_core.routing import VANISHED, Unresolved, inboxes_of, is_holder_alive, resolve_target
from oxtail_core.trace import safe_emit
from oxtail_core.wake import is_fresh_idle, lenient_wake

Matcher = Callable[[Envelope], bool]


def reply_matcher(peer_sid: str, request_id: str, correlated: bool) -> Matcher:
    """Strict: from the peer AND answering this request. Legacy peers: anything from the peer."""
    if correlated:
        return lambda m: same_session_id(m.from_session_id, peer_sid) and m.reply_to == request_id
    return lambda m: same_session_id(m.from_session_id, peer_sid)


def _first(matches: Matcher) -> Callable[[Sequence[Envelope]], list[int]]:
    def select(messages: Sequence[Envelope]) -> list[int]:
        return next(([i] for i, m in enumerate(messages) if matches(m)), [])

    return select


def take_reply(ctx: Context, me: RegistryEntry, matches: Matcher) -> tuple[Batch | None, bool]:
    """Take the first matching message from our inboxes; also report whether an inbox was busy."""
    folded = fold_process_inbox(ctx, me)
    busy = not folded
    # Folded, our process inbox is empty: the first inbox (session, or process if unclaimed) is all.
    for inbox in inboxes_of(me)[:1] if folded else inboxes_of(me):
        try:
            ctx.store.recover(inbox, is_holder_alive(ctx))
            batch = ctx.store.take(inbox, _first(matches), holder_of(me))
        except StoreBusy:
            busy = True
            continue
        if batch is not None:
            return batch, busy
    return None, busy


def await_reply(ctx: Context, me: RegistryEntry, matches: Matcher, until_ms: int) -> Flow[Batch | None]:
    """Look, then wait for a change and look again, until a match or ``until_ms``.

    The change token is read *before* each look, so an append between the
    look and the wait still ends the wait. A busy inbox is retried after one
    poll interval instead of waiting for a change that may never come (R42).
    """
    while True:
        inboxes = inboxes_of(me)
        token = ctx.store.change_token(inboxes)
        batch, busy = take_reply(ctx, me, matches)
        if batch is not None:
            return batch
        now = ctx.clock.now_ms()
        if now >= until_ms:
            return None
        wait_until = min(until_ms, now + math.ceil(ctx.settings.ask_poll_ms)) if busy else until_ms
        yield WaitForMail(inboxes, token, wait_until)


def _final_look(ctx: Context, me: RegistryEntry, matches: Matcher, request_id: str) -> Flow[Batch | None]:
    batch, busy = take_reply(ctx, me, matches)
    if batch is None and busy:
        yield Sleep(ctx.settings.ask_poll_ms)
        batch, busy = take_reply(ctx, me, matches)
        if batch is None and busy:
            safe_emit(ctx.tracer, "ask_peer_skipped_after_final_retry", request_id=request_id, skipped=1)
    return batch


def _first_wake(
    ctx: Context, me: RegistryEntry, peer: RegistryEntry, matches: Matcher, started: int
) -> Flow[tuple[WakeStatus, Batch | None]]:
    """Step 2: wake a fresh idle peer at once; give any other a grace to answer, then wake it."""
    batch: Batch | None = None
    if is_fresh_idle(ctx, peer, started):
        status = yield from lenient_wake(ctx, peer)
    else:
        batch = yield from await_reply(ctx, me, matches, started + math.ceil(ctx.settings.ask_grace_ms))
        status = ASK_GRACE_HIT if batch else (yield from lenient_wake(ctx, peer))
    safe_emit(
        ctx.tracer,
        "wake_outcome",
        via="ask_peer",
        wake_status=status.value,
        target_session_id=peer.session_id,
        client_type=peer.client.type,
    )
    return status, batch


def _after_deadline(
    ctx: Context,
    me: RegistryEntry,
    peer: RegistryEntry,
    matches: Matcher,
    request_id: str,
    *,
    message_id: str,
) -> Flow[Batch | None]:
    """Step 4: record the pending ask, then one last look; a caught reply takes the note back (R38).

    The note names the ask's message, so the waiter-heal watchdog can tell whether the peer ever got
    it (selfheal §2.1 (2))."""
    my_sid, peer_sid = me.session_id, peer.session_id
    if not peer.reply_to_capable or not peer_sid:
        return None
    if not my_sid:
        safe_emit(ctx.tracer, "ask_peer_pending_skipped_unclaimed", request_id=request_id)
        return None
    now = ctx.clock.now_ms()
    if not record_pending(
        ctx, my_sid, request_id, peer_sid, now, message_id=message_id, owner_epoch=me.started_at
    ):
        safe_emit(ctx.tracer, "ask_peer_pending_record_failed", request_id=request_id)
    batch = yield from _final_look(ctx, me, matches, request_id)
    if batch is not None:
        consume_pending(ctx, my_sid, request_id, None, ctx.clock.now_ms())
        safe_emit(ctx.tracer, "ask_peer_late_catch", request_id=request_id, message_id=batch.envelopes[0].id)
    return batch


def _ids(peer: RegistryEntry, message_id: str, request_id: str) -> dict[str, str | None]:
    """The fields that tie an ask's trace events together (in the reference's order)."""
    return {"target_session_id": peer.session_id, "message_id": message_id, "request_id": request_id}


def ask_peer(
    ctx: Context, me: RegistryEntry, target: str, body: str, *, timeout_ms: float | None = None
) -> Flow[Asked | NotAsked | Refused]:
    """Deliver a question and wait for its reply; the steps are the module docstring's."""
    check_body(body)
    peer = resolve_target(ctx, me, target)  # 1. resolve and deliver
    if isinstance(peer, Unresolved):
        return NotAsked(peer)
    if not peer.session_id:
        return PEER_HAS_NO_SESSION_ID
    request_id = new_id()
    question = mint(ctx, body, me.session_id, request_id=request_id)
    if not deliver(ctx, peer, question):
        return NotAsked(VANISHED)
    correlated = peer.reply_to_capable
    safe_emit(
        ctx.tracer, "ask_peer_start", **_ids(peer, question.id, request_id), require_reply_to=correlated
    )
    started = ctx.clock.now_ms()
    requested = timeout_ms if timeout_ms is not None else ctx.settings.ask_timeout_ms
    effective = min(requested, ctx.settings.ask_max_timeout_ms)
    matches = reply_matcher(peer.session_id, request_id, correlated)
    wake_status, batch = WakeStatus.SKIPPED_NO_TARGET, None
    try:
        wake_status, batch = yield from _first_wake(ctx, me, peer, matches, started)  # 2.
        if batch is None:  # 3. wait until the deadline
            batch = yield from await_reply(ctx, me, matches, started + math.ceil(effective))
        if batch is None:  # 4.
            batch = yield from _after_deadline(ctx, me, peer, matches, request_id, message_id=question.id)
    except Cancelled:  # 5. never lose a reply in hand (R45)
        if batch is not None:
            ctx.store.restore(batch)
            safe_emit(ctx.tracer, "ask_peer_abort_reenqueue", message_id=batch.envelopes[0].id)
            raise AskAborted() from None
        raise
    result = Asked(
        message_id=question.id,
        request_id=request_id,
        wake_status=wake_status,
        reply=batch.envelopes[0] if batch is not None else None,
        correlated=correlated,
        timeout_ms=effective,
        clamped_from_ms=requested if effective < requested else None,
        batch=batch,
    )
    safe_emit(
        ctx.tracer,
        "ask_peer_end",
        **_ids(peer, question.id, request_id),
        duration_ms=ctx.clock.now_ms() - started,
        wake_status=wake_status.value,
        timed_out=result.timed_out,
        correlation=result.correlation,
    )
    return result
