"""The reservation flows: reserve, release, list, and telling a holder of a collision.

Each reserve, release or listing is one registry read (which sessions have a
live server) and then one atomic :meth:`~oxtail_core.protocols.Store.reservations_update`
with a pure step of :mod:`oxtail_core.reservations`, where every rule lives.

A holder hears of a collision: :func:`notify_holders` sends it, from the
session that was refused, one plain message per (holder pattern, requested
pattern) per :data:`NOTICE_WINDOW_MS` -- mail, so it reaches the holder through
its hooks mid-turn, and a reply goes straight back to the one who asked.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import attrs

from oxtail_core.context import Context
from oxtail_core.delivery import mint, record_received
from oxtail_core.errors import StoreError
from oxtail_core.model import RegistryEntry
from oxtail_core.protocols import Host, Store
from oxtail_core.reservations import (
    GRACE_DEFAULT_MS,
    TTL_DEFAULT_S,
    TTL_MAX_S,
    TTL_MIN_S,
    Conflict,
    Reservation,
    ReserveResult,
    check_patterns,
    release_step,
    reserve_step,
    sweep_step,
)
from oxtail_core.routing import session_inbox
from oxtail_core.trace import safe_emit

NOTICE_WINDOW_MS = 600_000
"""A refused session tells a holder about the same collision at most once in this window."""


def live_sessions(store: Store, host: Host) -> frozenset[str]:
    """Session ids with at least one live server (pid and start time), read without reaping."""
    return frozenset(
        e.session_id
        for e in store.registry_entries()
        if e.session_id and host.is_alive(e.server_pid, e.process_start, e.host_id)
    )


def reserve(
    ctx: Context,
    me: RegistryEntry,
    project: str,
    patterns: Sequence[str],
    *,
    exclusive: bool = True,
    ttl_s: int = TTL_DEFAULT_S,
    reason: str | None = None,
    grace_ms: int = GRACE_DEFAULT_MS,
) -> ReserveResult:
    """Reserve ``patterns`` for ``me``'s session; never blocks on another holder (returns conflicts).

    Raises ValueError when ``me`` has no session id (a reservation belongs to a
    session) and PatternError (a ValueError) for a malformed pattern.
    """
    holder = me.session_id
    if not holder:
        raise ValueError("reservations belong to a session: claim_session first")
    now = ctx.clock.now_ms()
    expires = now + max(TTL_MIN_S, min(TTL_MAX_S, ttl_s)) * 1000
    wanted = [
        Reservation(
            pattern=p,
            holder_session_id=holder,
            exclusive=exclusive,
            reserved_at=now,
            expires_at=expires,
            reason=reason or None,
            holder_tmux=me.tmux_session,
            client_type=me.client.type,
        )
        for p in check_patterns(patterns)
    ]
    live = live_sessions(ctx.store, ctx.host) | {holder}
    return ctx.store.reservations_update(project, reserve_step(wanted, now, live, grace_ms))


def release(
    ctx: Context,
    me: RegistryEntry,
    project: str,
    patterns: Sequence[str] | None = None,
    *,
    grace_ms: int = GRACE_DEFAULT_MS,
) -> list[str]:
    """Release ``me``'s session's reservations of ``patterns`` (None: all of them in ``project``)."""
    holder = me.session_id
    if not holder:
        return []
    now = ctx.clock.now_ms()
    step = release_step(holder, patterns, now, live_sessions(ctx.store, ctx.host) | {holder}, grace_ms)
    return ctx.store.reservations_update(project, step)


def current(ctx: Context, project: str, *, grace_ms: int = GRACE_DEFAULT_MS) -> list[Reservation]:
    """Every standing reservation of ``project`` (ended ones are removed on the way)."""
    return standing_in(ctx.store, ctx.host, ctx.clock.now_ms(), project, grace_ms)


def standing_in(store: Store, host: Host, now_ms: int, project: str, grace_ms: int) -> list[Reservation]:
    """:func:`current` for a caller without a full Context (the git guard)."""
    return store.reservations_update(project, sweep_step(now_ms, live_sessions(store, host), grace_ms))


@attrs.define
class Notices:
    """Which collisions this process already told their holders about, and when (in memory, like
    the wake debounce: it only keeps one session from repeating itself)."""

    window_ms: int = NOTICE_WINDOW_MS
    sent: dict[tuple[str, str, str], int] = attrs.field(factory=dict)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False, eq=False)

    def claim(self, key: tuple[str, str, str], now_ms: int) -> bool:
        """True (and stamped) unless ``key`` was claimed within the window."""
        with self._lock:
            at = self.sent.get(key)
            if at is not None and now_ms - at < self.window_ms:
                return False
            self.sent = {k: t for k, t in self.sent.items() if now_ms - t < self.window_ms}
            self.sent[key] = now_ms
            return True


def notice_text(conflict: Conflict) -> str:
    """What the holder reads (from the session that was refused)."""
    held = conflict.held
    kind = "exclusive" if held.exclusive else "shared"
    until = time.strftime("%H:%M:%S UTC", time.gmtime(held.expires_at / 1000))
    return (
        f"oxtail reservations: I asked to reserve {conflict.pattern}, which your {kind} reservation "
        f"{held.pattern} holds until {until}. Reply when I can have it, or call release_paths when "
        "you are done."
    )


def notify_holders(ctx: Context, me: RegistryEntry, result: ReserveResult, notices: Notices) -> int:
    """Send each holder of a conflict one notice from ``me`` (deduplicated); returns how many were sent.

    Best effort: a store failure is traced and the reserve's answer stands.
    """
    sender = me.session_id
    sent = 0
    now = ctx.clock.now_ms()
    for conflict in result.conflicts:
        holder = conflict.held.holder_session_id
        if not sender or not notices.claim((holder, conflict.held.pattern, conflict.pattern), now):
            continue
        envelope = mint(ctx, notice_text(conflict), sender)
        record_received(ctx, holder, envelope)
        try:
            ctx.store.append(session_inbox(holder), [envelope])
        except StoreError as exc:
            safe_emit(ctx.tracer, "reservation_notice_failed", holder=holder, error=str(exc))
            continue
        sent += 1
    return sent
