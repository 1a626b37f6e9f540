"""The pending ask: a durable "I am still owed a reply" note, written when an ask times out.

Its life: written before the asker's final look for the reply (so a reply
landing at the deadline is either caught by that look or finds the note),
consumed by exactly one taker (single-winner take in the store), honored only
within its TTL, and garbage-collected opportunistically. Store failures
degrade to "no note"; they never surface after a message was delivered.
"""

from __future__ import annotations

from oxtail_core.context import Context
from oxtail_core.errors import StoreError
from oxtail_core.ids import canonical_session_id
from oxtail_core.model import PendingAsk


def record_pending(ctx: Context, requester: str, request_id: str, peer: str, now_ms: int) -> bool:
    """GC old notes, then write ours; False if the store could not."""
    try:
        ctx.store.pending_gc(now_ms - int(ctx.settings.pending_ttl_ms))
        return ctx.store.pending_put(
            PendingAsk(
                requester=canonical_session_id(requester),
                request_id=request_id,
                at_ms=now_ms,
                peer=canonical_session_id(peer),
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
    return record is not None and now_ms - record.at_ms < ctx.settings.pending_ttl_ms
