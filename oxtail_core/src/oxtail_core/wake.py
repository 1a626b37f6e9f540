"""Wake gating: when a message may type into a peer's terminal, and how.

Three gates feed one funnel:

- lenient (``wake:"auto"``, ask_peer, late replies): skip a peer whose busy
  marker is fresh, otherwise wake;
- strict (a reply with ``wake`` unset): wake only a freshly idle peer, at most
  once per (peer, reply_to) and at most once per interval per peer;
- the funnel, :func:`wake_peer`: strategy, in-process debounce, a target
  verified from the live process tree, then the keystrokes.

Wake bookkeeping never raises into a tool: the message is already delivered,
and an error would invite a retry that duplicates it.
"""

from __future__ import annotations

from oxtail_core.context import Context
from oxtail_core.effects import Flow, Sleep
from oxtail_core.errors import StoreError
from oxtail_core.ids import canonical_session_id, is_pane_id
from oxtail_core.model import WAKE_TEXT, ActivityMarker, RegistryEntry, WakeMode, WakeOutcome, WakeReason
from oxtail_core.model import WakeStatus as S
from oxtail_core.pending import consume_pending
from oxtail_core.trace import safe_emit


def activity(ctx: Context, entry: RegistryEntry) -> ActivityMarker | None:
    """The peer's busy/idle marker, or None when unknown (no hooks, unclaimed, unreadable)."""
    if not entry.session_id:
        return None
    try:
        return ctx.store.activity_get(canonical_session_id(entry.session_id))
    except StoreError:
        return None


def is_fresh_idle(ctx: Context, entry: RegistryEntry, now_ms: int) -> bool:
    """Idle, and recently: a marker from the future is not trusted."""
    marker = activity(ctx, entry)
    if marker is None or marker.status != "idle":
        return False
    age = now_ms - marker.at_ms
    return 0 <= age < ctx.settings.fresh_idle_ms


def is_fresh_busy(ctx: Context, entry: RegistryEntry, now_ms: int) -> bool:
    """Busy within the busy TTL (a future marker counts as fresh busy)."""
    marker = activity(ctx, entry)
    return marker is not None and marker.status == "busy" and now_ms - marker.at_ms < ctx.settings.busy_ttl_ms


def wake_peer(ctx: Context, peer: RegistryEntry) -> Flow[S]:
    """The single funnel for keystrokes: strategy, debounce, verified target, then text and Enter."""
    settings = ctx.settings
    if settings.wake_strategy == "off":
        safe_emit(ctx.tracer, "ask_peer_wake_skipped", reason="strategy-off", server_pid=peer.server_pid)
        return S.DISABLED
    now = ctx.clock.now_ms()
    sid = canonical_session_id(peer.session_id) if peer.session_id else None
    if sid and ctx.debounce.active(sid, now):
        safe_emit(ctx.tracer, "ask_peer_wake_skipped", reason="debounced", target_session_id=sid)
        return S.SKIPPED_DEBOUNCED
    if not peer.tmux_pane:
        safe_emit(
            ctx.tracer, "ask_peer_wake_skipped", reason="no-pane-or-session", server_pid=peer.server_pid
        )
        return S.SKIPPED_NO_TARGET
    try:
        target = ctx.waker.locate(peer) if ctx.host.is_alive(peer.server_pid, peer.process_start) else None
    except Exception:  # noqa: BLE001 - a broken waker means "no verified target"
        target = None
    if target is None or not is_pane_id(target):
        safe_emit(ctx.tracer, "ask_peer_wake_skipped", reason="no-verified-pane", server_pid=peer.server_pid)
        return S.SKIPPED_NO_TARGET
    if target != peer.tmux_pane:
        safe_emit(
            ctx.tracer,
            "ask_peer_wake_pane_refreshed",
            cached=peer.tmux_pane,
            live=target,
            server_pid=peer.server_pid,
        )
    flavor = "unknown" if settings.wake_strategy == "legacy" else peer.client.type
    if sid:
        ctx.debounce.stamp(sid, now)
    ok = _keystroke(ctx, "text", target)
    if ok and flavor == "codex":
        yield Sleep(settings.codex_submit_gap_ms)
    ok = ok and _keystroke(ctx, "enter", target)
    if ok:
        safe_emit(ctx.tracer, "ask_peer_wake_fired", target=target)
        return S.FIRED
    safe_emit(ctx.tracer, "ask_peer_wake_failed", target=target, error="send-keys failed")
    return S.SKIPPED_NO_TARGET


def _keystroke(ctx: Context, what: str, target: str) -> bool:
    try:
        if what == "text":
            return bool(ctx.waker.send_text(target, WAKE_TEXT))
        return bool(ctx.waker.send_enter(target))
    except Exception:  # noqa: BLE001 - any waker failure is a failed wake, not a failed tool
        return False


def lenient_wake(ctx: Context, peer: RegistryEntry) -> Flow[S]:
    """Wake unless the peer is visibly busy."""
    if is_fresh_busy(ctx, peer, ctx.clock.now_ms()):
        safe_emit(ctx.tracer, "send_wake_skipped_busy", target_session_id=peer.session_id)
        return S.SKIPPED_BUSY
    return (yield from wake_peer(ctx, peer))


def strict_reply_wake(ctx: Context, peer: RegistryEntry, reply_to: str) -> Flow[S]:
    """Wake a freshly idle peer for a reply, once per (peer, reply_to), rate-limited per peer.

    The dedupe slot is claimed (single winner) before the keystrokes and given
    back if none were sent, and the rate stamp is written only after a real
    wake: a gate that passed but typed nothing must not swallow a later,
    deliverable wake (the reference kept both, R59).
    """
    settings = ctx.settings
    if settings.autowake_off:
        return S.DISABLED
    now = ctx.clock.now_ms()
    sid = canonical_session_id(peer.session_id) if peer.session_id else None
    if not sid or not is_fresh_idle(ctx, peer, now):
        safe_emit(
            ctx.tracer, "autowake_reply_skipped", target_session_id=sid, status=S.SKIPPED_NO_FRESH_IDLE.value
        )
        return S.SKIPPED_NO_FRESH_IDLE
    ttl = int(settings.dedupe_ttl_ms)
    try:
        ctx.store.wake_gc(now - ttl)
        claimed_at = ctx.store.dedupe_get(sid, reply_to)
        rated_at = ctx.store.rate_get(sid)
        if claimed_at is not None and now - claimed_at < ttl:
            status = S.SKIPPED_DEDUPED
        elif rated_at is not None and now - rated_at < settings.min_interval_ms:
            status = S.SKIPPED_RATE_LIMITED
        elif not ctx.store.dedupe_claim(sid, reply_to, now, now - ttl):
            status = S.SKIPPED_DEDUPED
        else:
            status = S.FIRED
    except StoreError:
        status = S.SKIPPED_STORE_ERROR
    if status is not S.FIRED:
        safe_emit(ctx.tracer, "autowake_reply_skipped", target_session_id=sid, status=status.value)
        return status
    safe_emit(ctx.tracer, "autowake_reply_fire", target_session_id=sid)
    result = yield from wake_peer(ctx, peer)
    try:
        if result is S.FIRED:
            ctx.store.rate_put(sid, now)
        else:
            ctx.store.dedupe_release(sid, reply_to, now)
    except StoreError:
        pass
    return result


def _stamp_late(ctx: Context, sid: str, reply_to: str, now: int) -> None:
    try:
        if ctx.store.dedupe_claim(sid, reply_to, now, now - int(ctx.settings.dedupe_ttl_ms)):
            ctx.store.rate_put(sid, now)
    except StoreError:
        pass


def resolve_send_wake(
    ctx: Context, me: RegistryEntry, peer: RegistryEntry, wake: WakeMode | None, reply_to: str | None
) -> Flow[WakeOutcome]:
    """Decide and perform the wake of a message already delivered (send_message, reply_to_message).

    Order: a live pending ask from this exact peer pulls the asker back
    (late reply); else a reply with ``wake`` unset takes the strict gate;
    else ``wake:"auto"`` takes the lenient one; else no wake at all.
    """
    now = ctx.clock.now_ms()
    if reply_to and consume_pending(ctx, peer.session_id, reply_to, me.session_id, now):
        if wake == "off":
            safe_emit(ctx.tracer, "late_reply_pending_suppressed", target_session_id=peer.session_id)
            return WakeOutcome(None, WakeReason.LATE_REPLY_SUPPRESSED)
        if wake is None and ctx.settings.autowake_off:
            return WakeOutcome(S.DISABLED, WakeReason.LATE_REPLY)
        if peer.session_id:
            _stamp_late(ctx, canonical_session_id(peer.session_id), reply_to, now)
        safe_emit(ctx.tracer, "late_reply_pending_wake", target_session_id=peer.session_id)
        status = yield from lenient_wake(ctx, peer)
        return WakeOutcome(status, WakeReason.LATE_REPLY)
    if reply_to and wake is None:
        status = yield from strict_reply_wake(ctx, peer, reply_to)
        return WakeOutcome(status, WakeReason.REPLY_TO_DEFAULT)
    if wake == "auto":
        status = yield from lenient_wake(ctx, peer)
        return WakeOutcome(status, None)
    return WakeOutcome(None, None)


def unresolved_wake(ctx: Context, wake: WakeMode | None, reply_to: str | None, error: str) -> WakeOutcome:
    """The wake fields of a send or reply whose target did not resolve.

    ``skipped_no_target`` when a wake was intended and the target is unknown;
    under the kill switch a reply-default reports ``disabled`` instead (the
    reference ignored the kill switch here).
    """
    reply_default = bool(reply_to) and wake is None
    intended = wake == "auto" or reply_default
    status: S | None = None
    if intended and error == "target-not-found":
        status = S.DISABLED if reply_default and ctx.settings.autowake_off else S.SKIPPED_NO_TARGET
    return WakeOutcome(status, WakeReason.REPLY_TO_DEFAULT if reply_default else None)
