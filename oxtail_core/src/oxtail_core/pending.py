"""The pending ask: a durable "I am still owed a reply" note, written when an ask times out.

Its life is the table :data:`LIFECYCLE` (one note, keyed by requester and
request id): written before the asker's final look for the reply (so a reply
landing at the deadline is either caught by that look or finds the note),
consumed by exactly one taker (single-winner take in the store), honored only
within its TTL, and garbage-collected opportunistically. Store failures
degrade to "no note"; they never surface after a message was delivered.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

import attrs

from oxtail_core.context import Context
from oxtail_core.errors import IllegalPendingStep, StoreError
from oxtail_core.ids import canonical_session_id
from oxtail_core.model import PendingAsk


class PendingState(enum.Enum):
    """Where one note (requester, request_id) stands."""

    ABSENT = "absent"  # never written
    LIVE = "live"  # written, younger than the TTL
    EXPIRED = "expired"  # written, at or past the TTL, not yet removed
    GONE = "gone"  # taken or collected; request ids are fresh, so it is never written again


class PendingEvent(enum.Enum):
    """What can happen to a note."""

    RECORD = "record"  # the ask timed out (Store.pending_put)
    TAKE = "take"  # a reply from the asked peer, or the asker's own final look (Store.pending_take)
    TAKE_OTHER = "take-other"  # a reply from someone who was not asked (Store.pending_take refuses)
    EXPIRE = "expire"  # the clock passes the TTL
    GC = "gc"  # Store.pending_gc at a cutoff of now - TTL


@attrs.frozen
class PendingStep:
    """A transition: the state after it, and whether the taker may pull the asker back (late wake)."""

    to: PendingState
    late_wake: bool = False


_S, _E = PendingState, PendingEvent

LIFECYCLE: Mapping[PendingState, Mapping[PendingEvent, PendingStep]] = {
    _S.ABSENT: {
        _E.RECORD: PendingStep(_S.LIVE),  # §1.5 record
        _E.TAKE: PendingStep(_S.ABSENT),  # §1.5 consume: missing -> false
        _E.TAKE_OTHER: PendingStep(_S.ABSENT),
        _E.GC: PendingStep(_S.ABSENT),
    },
    _S.LIVE: {
        _E.RECORD: PendingStep(_S.LIVE),  # R52: a duplicate keeps the first record and its clock
        _E.TAKE: PendingStep(_S.GONE, late_wake=True),  # §1.5 consume, R47: one taker wins
        _E.TAKE_OTHER: PendingStep(_S.LIVE),  # R54 (ours): only the asked peer consumes it
        _E.EXPIRE: PendingStep(_S.EXPIRED),  # §1.5: live iff age < TTL
        _E.GC: PendingStep(_S.LIVE),  # §1.8: gc removes only what is past the TTL
    },
    _S.EXPIRED: {
        _E.RECORD: PendingStep(_S.EXPIRED),  # R52: the TTL keeps counting from the first record
        _E.TAKE: PendingStep(_S.GONE),  # R51: removed, but no late wake
        _E.TAKE_OTHER: PendingStep(_S.EXPIRED),  # R54 (ours)
        _E.GC: PendingStep(_S.GONE),  # §1.5 gc
    },
    _S.GONE: {
        _E.TAKE: PendingStep(_S.GONE),  # R47: the losing taker falls through to the other gates
        _E.TAKE_OTHER: PendingStep(_S.GONE),
        _E.GC: PendingStep(_S.GONE),
    },
}
"""Pending ask (``messaging.md`` §1.5, §7.5): state x event -> step. A missing cell is illegal:
a note expires once and only if it exists, and a removed note is never written again (its
request id was minted for one ask)."""


def pending_step(state: PendingState, event: PendingEvent) -> PendingStep:
    """The transition of ``state`` on ``event``; raises :class:`IllegalPendingStep` for a missing cell."""
    step = LIFECYCLE[state].get(event)
    if step is None:
        raise IllegalPendingStep(state.value, event.value)
    return step


def state_of(record: PendingAsk | None, now_ms: int, ttl_ms: float) -> PendingState:
    """The state of a stored note at ``now_ms`` (a missing one is ABSENT: a store cannot tell GONE)."""
    if record is None:
        return PendingState.ABSENT
    return PendingState.LIVE if now_ms - record.at_ms < ttl_ms else PendingState.EXPIRED


def record_pending(
    ctx: Context,
    requester: str,
    request_id: str,
    peer: str,
    now_ms: int,
    *,
    message_id: str | None = None,
    owner_epoch: int | None = None,
) -> bool:
    """GC old notes, then write ours; False if the store could not.

    A delegator's waiter expectation also names the delegation (``message_id``,
    whose receipt tells the watchdog the peer has it) and the owner's start
    (``owner_epoch``, provenance only).
    """
    try:
        ctx.store.pending_gc(now_ms - int(ctx.settings.pending_ttl_ms))
        return ctx.store.pending_put(
            PendingAsk(
                requester=canonical_session_id(requester),
                request_id=request_id,
                at_ms=now_ms,
                peer=canonical_session_id(peer),
                message_id=message_id,
                owner_epoch=owner_epoch,
            )
        )
    except StoreError:
        return False


def consume_pending(
    ctx: Context, requester: str | None, request_id: str | None, replier: str | None, now_ms: int
) -> bool:
    """Take the note if ``replier`` may (the asked peer, or anyone when None); True iff it was live.

    An expired note is removed all the same, so it cannot fire later.
    """
    if not requester or not request_id:
        return False
    try:
        record = ctx.store.pending_take(
            canonical_session_id(requester),
            request_id,
            canonical_session_id(replier) if replier else None,
        )
    except StoreError:
        return False
    return pending_step(state_of(record, now_ms, ctx.settings.pending_ttl_ms), PendingEvent.TAKE).late_wake
