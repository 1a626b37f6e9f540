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

import math
from collections.abc import Callable

import attrs

from oxtail_core import gates
from oxtail_core.context import Context
from oxtail_core.effects import Flow, Sleep, WaitForWake
from oxtail_core.errors import Cancelled, ErrorCode, StoreError
from oxtail_core.gates import Gate, Step
from oxtail_core.ids import canonical_session_id, is_pane_id, new_id
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
from oxtail_core.protocols import WakeRelay, WakeRequest
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


Slot = tuple[str, str, int]
"""A strict reply wake's claimed dedupe slot: (target session, ``reply_to``, claimed at)."""


def wake_peer(ctx: Context, peer: RegistryEntry, slot: Slot | None = None) -> Flow[WakeStatus]:
    """The single funnel for keystrokes: the funnel gate, then text and Enter at the verified pane.

    A peer on another host (its entry's ``host_id`` differs from ours) passes the same strategy,
    debounce and registered-pane rows, then is woken by its host's relay (:func:`remote_wake`).
    With ``slot`` (a strict wake's claimed dedupe slot) the funnel also finalizes it: the rate
    stamp after keystrokes, the slot given back when none were sent (R59); for a remote peer the
    relay, which knows, does it, and the sender only where it knows better (§6.5).
    """
    now = ctx.clock.now_ms()
    sid = canonical_session_id(peer.session_id) if peer.session_id else None
    debounced = sid is not None and ctx.debounce.active(sid, now)
    remote = remote_host(ctx, peer)
    facts = gates.FunnelFacts(debounced=debounced, has_pane=bool(peer.tmux_pane), remote=remote is not None)
    verdict = gates.funnel_gate(facts, ctx.settings)
    if verdict is Step.LOCATE:
        facts = attrs.evolve(facts, target=locate_verified(ctx, peer))
        verdict = gates.funnel_gate(facts, ctx.settings)
    if isinstance(verdict, WakeStatus):
        _trace_funnel_skip(ctx, peer, sid, verdict, facts)
        finalize_slot(ctx, slot, gates.AFTER_STRICT_WAKE[False])
        return verdict
    flavor = "unknown" if ctx.settings.wake_strategy == "legacy" else peer.client.type
    if sid and not ctx.debounce.claim(sid, now):  # a concurrent wake of this session won the window
        _trace_funnel_skip(ctx, peer, sid, WakeStatus.SKIPPED_DEBOUNCED, facts)
        finalize_slot(ctx, slot, gates.AFTER_STRICT_WAKE[False])
        return WakeStatus.SKIPPED_DEBOUNCED
    if verdict is Step.RELAY:
        assert remote is not None
        return (yield from remote_wake(ctx, peer, remote, flavor, slot))
    target = facts.target or ""
    if target != peer.tmux_pane:
        safe_emit(
            ctx.tracer,
            "ask_peer_wake_pane_refreshed",
            cached=peer.tmux_pane,
            live=target,
            server_pid=peer.server_pid,
        )
    ok = _keystroke(ctx, "text", target)
    if ok and flavor == "codex":
        yield Sleep(ctx.settings.codex_submit_gap_ms)
    ok = ok and _keystroke(ctx, "enter", target)
    if ok:
        status = gates.FIRED_AS[gates.liveness(bool(sid), activity(ctx, peer))]  # read after the keys
        safe_emit(ctx.tracer, "ask_peer_wake_fired", target=target)
    else:
        safe_emit(ctx.tracer, "ask_peer_wake_failed", target=target, error="send-keys failed")
        status = WakeStatus.SKIPPED_NO_TARGET
    finalize_slot(ctx, slot, gates.AFTER_STRICT_WAKE[status in gates.TYPED])
    return status


def remote_host(ctx: Context, peer: RegistryEntry) -> str | None:
    """The peer's host when it is not ours (then only that host's relay can type into its pane)."""
    theirs = peer.host_id
    return theirs if theirs is not None and theirs != ctx.host.host_id else None


def remote_wake(
    ctx: Context, peer: RegistryEntry, host: str, flavor: str, slot: Slot | None = None
) -> Flow[WakeStatus]:
    """Wake a peer on ``host`` through that host's relay, and report only what is known (§6.2, §6.3).

    The steps and the end are :data:`oxtail_core.gates.RELAY_GATE` and
    :data:`~oxtail_core.gates.RELAY_ENDS`: queue the request (no relay lease: nothing to wait
    for), wait for the report up to bound1, else withdraw; a withdrawal that won means nothing
    was or will be typed; one that lost means a relay claimed it, so wait up to bound2 more, then
    ``fired_unconfirmed``. The waits are yielded (:class:`~oxtail_core.effects.WaitForWake`).
    A cancellation withdraws first, so a caller that gave up leaves nothing to type.
    """
    relay = ctx.store if isinstance(ctx.store, WakeRelay) else None
    if relay is None:
        safe_emit(ctx.tracer, "ask_peer_wake_skipped", reason="no-relay", server_pid=peer.server_pid)
        finalize_slot(ctx, slot, gates.SlotFollowUp.RELEASE_SLOT)
        return WakeStatus.SKIPPED_NO_TARGET
    gap = int(ctx.settings.codex_submit_gap_ms) if flavor == "codex" else 0
    request = WakeRequest(
        req=new_id(),
        pid=peer.server_pid,
        started_at=peer.started_at,
        process_start=peer.process_start,
        flavor="codex" if flavor == "codex" else "other",
        gap_ms=gap,
        sid=slot[0] if slot else None,
        reply_to=slot[1] if slot else None,
        claimed_at=slot[2] if slot else None,
    )
    facts = gates.RelayFacts()
    verdict = gates.relay_gate(facts, ctx.settings)
    try:
        while isinstance(verdict, Step):
            facts = yield from _relay_step(ctx, relay, verdict, facts, host=host, request=request)
            verdict = gates.relay_gate(facts, ctx.settings)
    except Cancelled:
        if _withdraw(relay, request.req) is True:
            finalize_slot(ctx, slot, gates.SlotFollowUp.RELEASE_SLOT)
        raise
    row = gates.RELAY_ENDS[verdict]
    status = row.status
    if verdict is gates.RelayEnd.REPORTED:
        status = gates.REPORTED_AS.get(facts.outcome or "", WakeStatus.FIRED_UNCONFIRMED)
        if status is None:  # typed: confirmed only by the peer's hooks, as a local wake (A42)
            sid = canonical_session_id(peer.session_id) if peer.session_id else None
            status = gates.FIRED_AS[gates.liveness(bool(sid), activity(ctx, peer))]
    assert status is not None
    if row.slot is not None:
        finalize_slot(ctx, slot, row.slot)
    safe_emit(ctx.tracer, "ask_peer_wake_relayed", host=host, status=status.value, end=verdict.value)
    return status


def _relay_step(
    ctx: Context,
    relay: WakeRelay,
    step: Step,
    facts: gates.RelayFacts,
    *,
    host: str,
    request: WakeRequest,
) -> Flow[gates.RelayFacts]:
    """Perform one step the relay gate asks for; a store error is recorded as a fact."""
    if step is Step.ENQUEUE:
        try:
            return attrs.evolve(facts, queued=relay.wake_enqueue(host, request))
        except StoreError:
            return attrs.evolve(facts, queued=gates.STORE_FAILED)
    if step is Step.WITHDRAW:
        return attrs.evolve(facts, withdrew=_withdraw(relay, request.req))
    bound = (
        ctx.settings.relay_outcome_ms + request.gap_ms
        if step is Step.AWAIT_REPORT
        else ctx.settings.relay_silent_ms
    )
    outcome = yield from _await_report(ctx, relay, request.req, ctx.clock.now_ms() + math.ceil(bound))
    if step is Step.AWAIT_REPORT:
        return attrs.evolve(facts, outcome=outcome, first_wait_over=True)
    return attrs.evolve(facts, outcome=outcome, second_wait_over=True)


def _await_report(ctx: Context, relay: WakeRelay, req: str, until_ms: int) -> Flow[str | None]:
    """Look for the relay's report, waiting until ``until_ms`` (a store error reads as none yet)."""
    while True:
        try:
            report = relay.wake_outcome(req)
        except StoreError:
            report = None
        if report is not None:
            return report.outcome
        if ctx.clock.now_ms() >= until_ms:
            return None
        yield WaitForWake(req, until_ms)  # a store's wait reads an error as "nothing yet"


def _withdraw(relay: WakeRelay, req: str) -> bool | gates.StoreFailed:
    try:
        return relay.wake_withdraw(req)
    except StoreError:
        return gates.STORE_FAILED


def finalize_slot(ctx: Context, slot: Slot | None, follow_up: gates.SlotFollowUp) -> None:
    """The strict gate's bookkeeping of a claimed slot (R59): stamp the rate, or give the slot back
    (a store error leaves the slot claimed: one lost wake at worst, never a doubled one)."""
    if slot is None:
        return
    sid, reply_to, claimed_at = slot
    try:
        if follow_up is gates.SlotFollowUp.STAMP_RATE:
            ctx.store.rate_put(sid, claimed_at)
        else:
            ctx.store.dedupe_release(sid, reply_to, claimed_at)
    except StoreError:
        pass


def locate_verified(ctx: Context, peer: RegistryEntry) -> str:
    """The pane verified from the live process tree, or ``""`` when there is none."""
    try:
        alive = ctx.host.is_alive(peer.server_pid, peer.process_start, peer.host_id)
        target = ctx.waker.locate(peer) if alive else None
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
    return (yield from wake_peer(ctx, peer, slot=(sid, reply_to, now)))


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
