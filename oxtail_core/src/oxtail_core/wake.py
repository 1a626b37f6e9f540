"""Wake gating performed: the flows read the facts, ask :mod:`oxtail_core.gates`, do what it says.

Two gates feed one funnel:

- lenient (``wake:"auto"``, ask_peer, late replies, the hookless default of a
  plain message): skip a peer whose busy marker is fresh, otherwise wake;
- strict (a reply with ``wake`` unset): wake only a freshly idle peer, at most
  once per (peer, reply_to) and at most once per interval per peer;
- the funnel, :func:`wake_peer`: strategy, in-process debounce, a target
  verified from the live process tree, then the keystrokes, reported as
  ``fired`` only when a marker (read after them) confirms the peer's hooks.

A plain message first takes the plain seam, which picks the lenient gate, no
wake, or the advisory ``delivery_outlook`` from the target's liveness.

Which gate a message takes, and what each gate decides, are tables in
:mod:`oxtail_core.gates`; nothing here decides. Wake bookkeeping never raises
into a tool: the message is already delivered, and an error would invite a
retry that duplicates it.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from oxtail_core import gates
from oxtail_core.context import Context
from oxtail_core.effects import Flow, Sleep
from oxtail_core.errors import ErrorCode, StoreError
from oxtail_core.gates import Gate, Step
from oxtail_core.ids import canonical_session_id, is_pane_id
from oxtail_core.model import (
    WAKE_TEXT,
    ActivityMarker,
    Outlook,
    RegistryEntry,
    WakeMode,
    WakeOutcome,
    WakeStatus,
)
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
    """Idle, and recently (:func:`oxtail_core.gates.is_fresh_idle` on the peer's marker)."""
    return gates.is_fresh_idle(activity(ctx, entry), now_ms, ctx.settings)


def is_fresh_busy(ctx: Context, entry: RegistryEntry, now_ms: int) -> bool:
    """Busy within the busy TTL (:func:`oxtail_core.gates.is_fresh_busy` on the peer's marker)."""
    return gates.is_fresh_busy(activity(ctx, entry), now_ms, ctx.settings)


def wake_peer(ctx: Context, peer: RegistryEntry) -> Flow[WakeStatus]:
    """The single funnel for keystrokes: the funnel gate, then text and Enter at the verified pane."""
    now = ctx.clock.now_ms()
    sid = canonical_session_id(peer.session_id) if peer.session_id else None
    debounced = sid is not None and ctx.debounce.active(sid, now)
    facts = gates.FunnelFacts(debounced=debounced, has_pane=bool(peer.tmux_pane))
    verdict = gates.funnel_gate(facts, ctx.settings)
    if verdict is Step.LOCATE:
        facts = attrs.evolve(facts, target=_locate(ctx, peer))
        verdict = gates.funnel_gate(facts, ctx.settings)
    if isinstance(verdict, WakeStatus):
        _trace_funnel_skip(ctx, peer, sid, verdict, facts)
        return verdict
    target = facts.target or ""
    if target != peer.tmux_pane:
        safe_emit(
            ctx.tracer,
            "ask_peer_wake_pane_refreshed",
            cached=peer.tmux_pane,
            live=target,
            server_pid=peer.server_pid,
        )
    flavor = "unknown" if ctx.settings.wake_strategy == "legacy" else peer.client.type
    if sid and not ctx.debounce.claim(sid, now):  # a concurrent wake of this session won the window
        _trace_funnel_skip(ctx, peer, sid, WakeStatus.SKIPPED_DEBOUNCED, facts)
        return WakeStatus.SKIPPED_DEBOUNCED
    ok = _keystroke(ctx, "text", target)
    if ok and flavor == "codex":
        yield Sleep(ctx.settings.codex_submit_gap_ms)
    ok = ok and _keystroke(ctx, "enter", target)
    if ok:
        status = gates.FIRED_AS[gates.liveness(bool(sid), activity(ctx, peer))]  # read after the keys
        safe_emit(ctx.tracer, "ask_peer_wake_fired", target=target)
        return status
    safe_emit(ctx.tracer, "ask_peer_wake_failed", target=target, error="send-keys failed")
    return WakeStatus.SKIPPED_NO_TARGET


def _locate(ctx: Context, peer: RegistryEntry) -> str:
    """The pane verified from the live process tree, or ``""`` when there is none."""
    try:
        target = ctx.waker.locate(peer) if ctx.host.is_alive(peer.server_pid, peer.process_start) else None
    except Exception:  # noqa: BLE001 - a broken waker means "no verified target"
        target = None
    return target if target is not None and is_pane_id(target) else ""


def _trace_funnel_skip(
    ctx: Context, peer: RegistryEntry, sid: str | None, status: WakeStatus, facts: gates.FunnelFacts
) -> None:
    if status is WakeStatus.DISABLED:
        safe_emit(ctx.tracer, "ask_peer_wake_skipped", reason="strategy-off", server_pid=peer.server_pid)
    elif status is WakeStatus.SKIPPED_DEBOUNCED:
        safe_emit(ctx.tracer, "ask_peer_wake_skipped", reason="debounced", target_session_id=sid)
    elif not facts.has_pane:
        safe_emit(
            ctx.tracer, "ask_peer_wake_skipped", reason="no-pane-or-session", server_pid=peer.server_pid
        )
    else:
        safe_emit(ctx.tracer, "ask_peer_wake_skipped", reason="no-verified-pane", server_pid=peer.server_pid)


def _keystroke(ctx: Context, what: str, target: str) -> bool:
    try:
        if what == "text":
            return bool(ctx.waker.send_text(target, WAKE_TEXT))
        return bool(ctx.waker.send_enter(target))
    except Exception:  # noqa: BLE001 - any waker failure is a failed wake, not a failed tool
        return False


def lenient_wake(ctx: Context, peer: RegistryEntry) -> Flow[WakeStatus]:
    """Wake unless the peer is visibly busy (:data:`oxtail_core.gates.LENIENT_GATE`)."""
    facts = gates.MarkerFacts(activity(ctx, peer), ctx.clock.now_ms())
    status = gates.decide(gates.LENIENT_GATE, facts, ctx.settings)
    if status is not None:
        safe_emit(ctx.tracer, "send_wake_skipped_busy", target_session_id=peer.session_id)
        return status
    return (yield from wake_peer(ctx, peer))


def strict_reply_wake(ctx: Context, peer: RegistryEntry, reply_to: str) -> Flow[WakeStatus]:
    """Wake a freshly idle peer for a reply, once per (peer, reply_to), rate-limited per peer.

    The flow performs the steps :data:`oxtail_core.gates.REPLY_GATE` asks for
    (read the slots, claim the slot) until it has a verdict. The dedupe slot is
    claimed (single winner) before the keystrokes and given back if none were
    sent, and the rate stamp is written only after a real wake: a gate that
    passed but typed nothing must not swallow a later, deliverable wake (the
    reference kept both, R59).
    """
    now = ctx.clock.now_ms()
    sid = canonical_session_id(peer.session_id) if peer.session_id else ""
    facts = gates.ReplyFacts(claimed=bool(sid), marker=activity(ctx, peer), now_ms=now)
    verdict = gates.reply_gate(facts, ctx.settings)
    while isinstance(verdict, Step):  # only a claimed peer gets past the first row
        facts = _perform_reply_step(ctx, verdict, facts, sid, reply_to)
        verdict = gates.reply_gate(facts, ctx.settings)
    if verdict is not None:
        safe_emit(ctx.tracer, "autowake_reply_skipped", target_session_id=sid or None, status=verdict.value)
        return verdict
    safe_emit(ctx.tracer, "autowake_reply_fire", target_session_id=sid)
    result = yield from wake_peer(ctx, peer)
    follow_up = gates.AFTER_STRICT_WAKE[result in gates.TYPED]
    try:
        if follow_up is gates.SlotFollowUp.STAMP_RATE:
            ctx.store.rate_put(sid, now)
        else:
            ctx.store.dedupe_release(sid, reply_to, now)
    except StoreError:
        pass
    return result


def _perform_reply_step(
    ctx: Context, step: Step, facts: gates.ReplyFacts, sid: str, reply_to: str
) -> gates.ReplyFacts:
    """Read the slots, or claim the slot; a store error is recorded as a fact (R57, R58)."""
    now = facts.now_ms
    stale_before = now - int(ctx.settings.dedupe_ttl_ms)
    try:
        if step is Step.READ_SLOTS:
            ctx.store.wake_gc(stale_before)
            slots = gates.Slots(ctx.store.dedupe_get(sid, reply_to), ctx.store.rate_get(sid))
            return attrs.evolve(facts, slots=slots)
        return attrs.evolve(facts, won=ctx.store.dedupe_claim(sid, reply_to, now, stale_before))
    except StoreError:
        if step is Step.READ_SLOTS:
            return attrs.evolve(facts, slots=gates.STORE_FAILED)
        return attrs.evolve(facts, won=gates.STORE_FAILED)


def _stamp_late(ctx: Context, sid: str, reply_to: str, now: int) -> None:
    try:
        if ctx.store.dedupe_claim(sid, reply_to, now, now - int(ctx.settings.dedupe_ttl_ms)):
            ctx.store.rate_put(sid, now)
    except StoreError:
        pass


GATES: dict[Gate, Callable[[Context, RegistryEntry, str], Flow[WakeStatus]]] = {
    Gate.LENIENT: lambda ctx, peer, reply_to: lenient_wake(ctx, peer),
    Gate.STRICT: strict_reply_wake,
}
"""Each waking gate's flow (the plain seam resolves to one of them, or to no wake)."""


def _plain_seam(ctx: Context, peer: RegistryEntry, now: int) -> gates.Plan | Outlook:
    """The plain seam's verdict on this target (:data:`oxtail_core.gates.PLAIN_SEAM`)."""
    marker = activity(ctx, peer)
    facts = gates.SeamFacts(gates.liveness(bool(peer.session_id), marker), marker, now)
    return gates.plain_seam(facts, ctx.settings)


def resolve_send_wake(
    ctx: Context, me: RegistryEntry, peer: RegistryEntry, wake: WakeMode | None, reply_to: str | None
) -> Flow[WakeOutcome]:
    """Perform the wake of a message already delivered (send_message, reply_to_message, and the
    completion of complete_work / block_work).

    ``wake`` is the caller's *effective* wake: a delegation and a completion
    pass ``"auto"`` when the agent left it unset, which keeps them off the plain
    seam (no ``hookless_default`` reason, never a ``delivery_outlook``). Only
    ``wake`` unset with no ``reply_to`` is the plain seam.

    A live pending ask from this exact peer selects the late-reply plan; the
    plan tables of :mod:`oxtail_core.gates` say the rest. The outcome carries
    either a status (and perhaps a reason) or an outlook, never both (A39).
    """
    now = ctx.clock.now_ms()
    late = bool(reply_to) and consume_pending(ctx, peer.session_id, reply_to, me.session_id, now)
    plan = gates.plan_wake(reply_to, wake, late=late)
    if plan.gate is Gate.PLAIN:
        seam = _plain_seam(ctx, peer, now)
        if isinstance(seam, Outlook):
            return WakeOutcome(outlook=seam)
        plan = seam
    if plan.gate is Gate.NONE:
        if late:
            safe_emit(ctx.tracer, "late_reply_pending_suppressed", target_session_id=peer.session_id)
        return WakeOutcome(None, plan.reason)
    if gates.killed(plan, ctx.settings):
        return WakeOutcome(WakeStatus.DISABLED, plan.reason)
    if plan.stamp and peer.session_id and reply_to:
        _stamp_late(ctx, canonical_session_id(peer.session_id), reply_to, now)
    if late:
        safe_emit(ctx.tracer, "late_reply_pending_wake", target_session_id=peer.session_id)
    status = yield from GATES[plan.gate](ctx, peer, reply_to or "")
    return WakeOutcome(status, plan.reason)


def unresolved_wake(ctx: Context, wake: WakeMode | None, reply_to: str | None, error: str) -> WakeOutcome:
    """The wake fields of a send or reply whose target did not resolve (the same plan, never late)."""
    plan = gates.plan_wake(reply_to, wake, late=False)
    status = gates.unresolved_status(plan, error == ErrorCode.TARGET_NOT_FOUND, ctx.settings)
    return WakeOutcome(status, plan.reason)
