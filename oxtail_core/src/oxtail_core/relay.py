"""A host's wake relay, one request at a time (redis-store.md §6.2): claim, verify, type, report.

Sans-IO like every flow: the store, waker and host are the relay's own (its host's process tree
and tmux), the Codex gap is a yielded :class:`~oxtail_core.effects.Sleep`, and the loop that reads
requests (``oxtail_redis.relay.serve``) drives :func:`handle` with :func:`oxtail_core.effects.run`.
What to do with a request is :data:`oxtail_core.gates.RELAY_SIDE`.

Invariants: nothing is typed without this relay's claim winning the request's single-winner slot
(so never after the sender withdrew, never twice); the target is located from this host's process
tree for the registry entry of the request's incarnation, never from the request (which carries
neither a pane nor text); the only text typed is :data:`~oxtail_core.model.WAKE_TEXT`; a strict
wake's dedupe slot is finalized before the report (§6.5), so a sender that reads the report finds
the bookkeeping done.
"""

from __future__ import annotations

from typing import cast

import attrs

from oxtail_core import gates
from oxtail_core.context import Context
from oxtail_core.effects import Flow, Sleep
from oxtail_core.gates import Step
from oxtail_core.model import WAKE_TEXT, RegistryEntry
from oxtail_core.protocols import WakeDelivery, WakeRelay, WakeReport, WakeRequest
from oxtail_core.trace import safe_emit
from oxtail_core.wake import finalize_slot, locate_verified


def handle(ctx: Context, host: str, consumer: str, delivery: WakeDelivery) -> Flow[WakeReport | None]:
    """Decide, type if allowed, finalize, report and acknowledge one request read from ``host``'s
    stream by ``consumer``; the report made (None: the sender withdrew first, or the entry was
    unreadable: nothing reported)."""
    relay = cast(WakeRelay, ctx.store)
    request = delivery.request
    if request is None:
        relay.wake_ack(host, delivery.entry_id)
        return None
    facts = gates.RelaySideFacts(stale=delivery.age_ms > request.ttl_ms)
    verdict = gates.relay_side(facts, ctx.settings)
    entry: RegistryEntry | None = None
    while isinstance(verdict, Step):
        if verdict is Step.CLAIM:
            facts = attrs.evolve(facts, claim=relay.wake_claim(request.req, consumer))
            entry = _registered(ctx, request) if facts.claim == "won" else None
            facts = attrs.evolve(facts, registered=entry is not None)
        else:
            assert entry is not None
            facts = attrs.evolve(facts, target=locate_verified(ctx, entry))
        verdict = gates.relay_side(facts, ctx.settings)
    report: WakeReport | None = None
    if verdict == gates.TYPE_IT:
        typed = yield from _type(ctx, facts.target or "", request)
        report = WakeReport("typed") if typed else WakeReport("skipped", "send-keys-failed")
    elif verdict == "claimed-elsewhere":
        report = WakeReport("unconfirmed", verdict)
    elif verdict is not None:
        report = WakeReport("skipped", verdict)
    if report is not None:
        if facts.claim == "won":
            finalize_slot(ctx, request.slot, gates.AFTER_STRICT_WAKE[report.outcome == "typed"])
        relay.wake_report(request.req, report)
        safe_emit(ctx.tracer, "relay_wake", req=request.req, outcome=report.outcome, reason=report.reason)
    relay.wake_ack(host, delivery.entry_id)
    return report


def _registered(ctx: Context, request: WakeRequest) -> RegistryEntry | None:
    """This host's registry entry of exactly the request's incarnation (re-read now), or None."""
    wanted = (ctx.host.host_id, request.pid, request.started_at, request.process_start)
    for entry in ctx.store.registry_entries():
        if (entry.host_id, entry.server_pid, entry.started_at, entry.process_start) == wanted:
            return entry
    return None


def _type(ctx: Context, target: str, request: WakeRequest) -> Flow[bool]:
    """The constant wake line, the clamped Codex gap, Enter; True iff both keystrokes landed."""
    try:
        if not ctx.waker.send_text(target, WAKE_TEXT):
            return False
    except Exception:  # noqa: BLE001 - a waker failure is a failed wake, never a crashed relay
        return False
    if request.flavor == "codex":
        low, high = gates.RELAY_CLAMP_GAP_MS
        yield Sleep(min(max(request.gap_ms, low), high))
    try:
        return bool(ctx.waker.send_enter(target))
    except Exception:  # noqa: BLE001
        return False
