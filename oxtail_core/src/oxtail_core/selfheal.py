"""Nothing waits forever: the wake-intent record and the two watchdogs (selfheal.md §1, §2).

A keystroke wake can be swallowed (a strict gate skipped it, a TUI ate the
Enter, the pane churned) while the mail sits durably in the inbox. Two
watchdogs, each run by a server for *its own* session, close the gap:

- **self-heal** (recipient side): the sender leaves a wake-intent record
  (:func:`note_wake_intent`, accounting §8.1) whenever its wake was no
  confident delivery; the recipient's server re-nudges its own pane until the
  message has a receipt (:func:`self_heal_tick`, §1.3 in its exact order).
- **waiter-heal** (delegator side): a delegation or a timed-out ask leaves an
  expectation (a pending ask naming ``peer`` and ``message_id``); the
  delegator's server re-pokes the peer while there is evidence it never got
  the message, i.e. no receipt yet (:func:`waiter_heal_tick`, §2.2).

Every rule is a row of a table below (first match wins, :func:`~oxtail_core.gates.decide`);
the flows read the facts, ask the table, and perform the verdict. Time comes
only from ``ctx.clock``, so every timing rule is testable on a fake clock. A
tick never raises: each store step that fails degrades as its row says (the
self-heal throttle fails open, the waiter claim fails safe).
"""

from __future__ import annotations

import contextlib
import enum

import attrs

from oxtail_core import gates
from oxtail_core.context import Context
from oxtail_core.effects import Flow
from oxtail_core.errors import StoreError
from oxtail_core.gates import Rule
from oxtail_core.ids import canonical_session_id
from oxtail_core.model import (
    ActivityMarker,
    PendingAsk,
    PendingWake,
    RegistryEntry,
    WakeOutcome,
    WakeStatus,
)
from oxtail_core.routing import Unresolved, resolve_target
from oxtail_core.settings import Settings
from oxtail_core.trace import safe_emit
from oxtail_core.wake import lenient_wake

WAKE_INTENT_STATUSES: frozenset[WakeStatus] = frozenset(
    {
        WakeStatus.FIRED_UNCONFIRMED,  # keystrokes sent, nothing confirms the pickup
        WakeStatus.SKIPPED_NO_FRESH_IDLE,
        WakeStatus.SKIPPED_NO_TARGET,
        WakeStatus.SKIPPED_DEBOUNCED,
        WakeStatus.SKIPPED_RATE_LIMITED,
        WakeStatus.SKIPPED_STORE_ERROR,
    }
)
"""accounting §8.1, A45: the wake statuses that leave a record. Not ``fired`` (hooked, confident),
``skipped_busy`` (its hooks deliver at turn end), ``skipped_deduped`` or ``disabled``."""


def age_s(now_ms: int, at_ms: int) -> int:
    """Whole seconds since ``at_ms`` (floor); a record from the future has age 0 (S4)."""
    return max(0, now_ms - at_ms) // 1000


def note_wake_intent(
    ctx: Context, me: RegistryEntry, peer: RegistryEntry, message_id: str, outcome: WakeOutcome
) -> bool:
    """After a send's wake decision: record a wake intent iff the recipient is claimed and the status
    is one of :data:`WAKE_INTENT_STATUSES`. True iff a record was created. Never raises: the mail is
    already delivered."""
    if not peer.session_id or not message_id or outcome.status not in WAKE_INTENT_STATUSES:
        return False
    record = PendingWake(
        recipient=canonical_session_id(peer.session_id),
        message_id=message_id,
        sender=canonical_session_id(me.session_id) if me.session_id else None,
        sent_at_ms=ctx.clock.now_ms(),
    )
    try:
        return ctx.store.wake_intent_put(record)
    except Exception:  # noqa: BLE001 - a failed record is no record (selfheal §1.1)
        return False


def _has_receipt(ctx: Context, message_id: str) -> bool:
    """A receipt that cannot be read is none: the watchdog keeps the record and tries again."""
    try:
        return ctx.store.receipt_get(message_id) is not None
    except Exception:  # noqa: BLE001
        return False


# Self-heal ------------------------------------------------------------------------------------------


class RecordVerdict(enum.Enum):
    """What one pending-wake record gets this tick (None from the table: it is eligible)."""

    CONSUME = "consume"  # the message has a receipt: the record is done
    GRACE = "grace"  # the sender's own wake goes first
    CAPPED = "capped"  # left for the TTL


@attrs.frozen
class RecordFacts:
    receipt: bool
    age_s: int
    attempts: int


SELF_HEAL_RECORD: tuple[Rule[RecordFacts, RecordVerdict], ...] = (
    Rule("selfheal §1.3 step 5, S3", lambda f, s: f.receipt, RecordVerdict.CONSUME),
    Rule("§1.3 step 5, S4", lambda f, s: f.age_s * 1000 < s.self_wake_grace_ms, RecordVerdict.GRACE),
    Rule("§1.3 step 5", lambda f, s: f.attempts >= s.self_wake_cap, RecordVerdict.CAPPED),
)
"""One record, first match wins; a fractional cap behaves as the next integer (``>=``)."""


@attrs.frozen
class SessionFacts:
    throttled_at: int | None  # the persistent stamp; None also when it could not be read (fail open)
    marker: ActivityMarker | None
    now_ms: int


SELF_HEAL_SESSION: tuple[Rule[SessionFacts, str], ...] = (
    Rule(
        "§1.3 step 6",
        lambda f, s: f.throttled_at is not None and f.now_ms - f.throttled_at < s.self_wake_throttle_ms,
        "throttled",
    ),
    Rule("§1.3 step 6, S6: idle cannot be confirmed", lambda f, s: f.marker is None, "no_marker"),
    Rule("§1.3 step 6", lambda f, s: f.marker is not None and f.marker.status != "idle", "not_idle"),
    Rule("§1.3 step 6, S10", lambda f, s: f.marker is not None and f.now_ms < f.marker.at_ms, "skew"),
)
"""The session gate once some record is eligible: first failing check wins; None = wake."""


@attrs.frozen
class SelfHealResult:
    """``reason``: ``unclaimed``, ``disabled``, ``no_records``, ``nothing_eligible``, a session-gate
    row, a wake status, or ``wake_error``."""

    reason: str
    records: int = 0
    consumed: int = 0
    fired: bool = False


def _list_mine(ctx: Context, sid: str, now: int) -> list[PendingWake]:
    ttl = ctx.settings.pending_wake_ttl_ms
    try:
        ctx.store.wake_intent_gc(now - int(ttl))
        records = ctx.store.wake_intent_list(sid)
    except StoreError:
        return []
    return [r for r in records if now - r.sent_at_ms < ttl]


def self_heal_tick(ctx: Context, me: RegistryEntry, *, off: bool) -> Flow[SelfHealResult]:
    """One self-heal tick of the server ``me`` for its own session (selfheal §1.3, in order).

    ``off`` is the kill switch as read now (:func:`oxtail_core.settings.heals_off`).
    """
    if not me.session_id:
        return SelfHealResult("unclaimed")
    if off:
        return SelfHealResult("disabled")
    sid = canonical_session_id(me.session_id)
    now = ctx.clock.now_ms()
    records = _list_mine(ctx, sid, now)
    if not records:
        return SelfHealResult("no_records")
    consumed, eligible = 0, []
    for record in records:
        facts = RecordFacts(
            _has_receipt(ctx, record.message_id), age_s(now, record.sent_at_ms), record.attempts
        )
        verdict = gates.decide(SELF_HEAL_RECORD, facts, ctx.settings)
        if verdict is RecordVerdict.CONSUME:
            consumed += _take_wake(ctx, sid, record.message_id)
        elif verdict is None:
            eligible.append(record)
    if not eligible:
        return SelfHealResult("nothing_eligible", len(records), consumed)
    gate = gates.decide(
        SELF_HEAL_SESSION, SessionFacts(_throttle(ctx, sid), _marker(ctx, sid), now), ctx.settings
    )
    if gate is not None:
        return SelfHealResult(gate, len(eligible), consumed)
    with contextlib.suppress(StoreError):  # stamped before the keystrokes; a failure fails open
        ctx.store.self_wake_put(sid, now)
    try:
        status = yield from lenient_wake(ctx, me)
    except Exception as exc:  # noqa: BLE001 - a tick never raises
        safe_emit(ctx.tracer, "self_heal_wake_error", session_id=sid, error=str(exc))
        return SelfHealResult("wake_error", len(eligible), consumed)
    fired = status in gates.TYPED
    if fired:  # a wake that provably did nothing does not burn the cap (S11: one fire bumps all)
        for record in eligible:
            _bump_wake(ctx, sid, record.message_id, now)
    safe_emit(
        ctx.tracer,
        "self_heal_wake",
        session_id=sid,
        records=len(eligible),
        wake_status=status.value,
        fired=fired,
    )
    return SelfHealResult(status.value, len(eligible), consumed, fired)


def _take_wake(ctx: Context, sid: str, message_id: str) -> int:
    try:
        return int(ctx.store.wake_intent_take(sid, message_id))
    except StoreError:
        return 0


def _bump_wake(ctx: Context, sid: str, message_id: str, now: int) -> None:
    with contextlib.suppress(StoreError):
        ctx.store.wake_intent_bump(sid, message_id, now)


def _throttle(ctx: Context, sid: str) -> int | None:
    """The self-wake stamp; an unreadable store never blocks the wake (fail open)."""
    try:
        return ctx.store.self_wake_get(sid)
    except StoreError:
        return None


def _marker(ctx: Context, sid: str) -> ActivityMarker | None:
    try:
        return ctx.store.activity_get(sid)
    except StoreError:
        return None


# Waiter-heal ----------------------------------------------------------------------------------------


class WaiterVerdict(enum.Enum):
    """What one expectation gets this tick (None from the table: claim the target, then re-poke)."""

    CONSUME = "consume"  # the answer is in my ledger
    TARGET_GONE = "target-gone"  # not consumed, not poked
    POST_RECEIPT = "post-receipt"  # the peer has it in context: stop poking, do not consume
    GRACE = "grace"  # the peer's own self-heal goes first
    GAVE_UP = "gave-up"  # left for the TTL


@attrs.frozen
class WaiterFacts:
    answered: bool
    resolved: bool
    receipt: bool
    age_s: int
    attempts: int


WAITER_HEAL: tuple[Rule[WaiterFacts, WaiterVerdict], ...] = (
    Rule("selfheal §2.2 5a, S19", lambda f, s: f.answered, WaiterVerdict.CONSUME),
    Rule("§2.2 5b, S14: before the receipt", lambda f, s: not f.resolved, WaiterVerdict.TARGET_GONE),
    Rule("§2.2 5c", lambda f, s: f.receipt, WaiterVerdict.POST_RECEIPT),
    Rule("§2.2 5d, S15", lambda f, s: f.age_s * 1000 < s.waiter_heal_grace_ms, WaiterVerdict.GRACE),
    Rule("§2.2 5d", lambda f, s: f.attempts >= s.waiter_heal_cap, WaiterVerdict.GAVE_UP),
)
"""One expectation, first match wins."""


@attrs.frozen
class WaiterHealResult:
    """``reason``: ``unclaimed``, ``disabled``, ``no_records`` or ``ran`` (then the counts)."""

    reason: str
    fired: int = 0
    consumed: int = 0
    gave_up: int = 0
    target_gone: int = 0


def _expectations(ctx: Context, sid: str, now: int) -> list[PendingAsk]:
    ttl = ctx.settings.pending_ttl_ms
    try:
        ctx.store.pending_gc(now - int(ttl))
        records = ctx.store.pending_list()
    except StoreError:
        return []
    return [r for r in records if r.requester == sid and r.peer and r.message_id and now - r.at_ms < ttl]


def _answered(ctx: Context, sid: str) -> set[str] | None:
    """The ``reply_to`` values in my ledger; None if it cannot be read (then nothing is consumed or
    poked this tick: an answer may be in there)."""
    try:
        return ctx.store.ledger_reply_tos(sid)
    except StoreError:
        return None


def waiter_heal_tick(ctx: Context, me: RegistryEntry, *, off: bool) -> Flow[WaiterHealResult]:
    """One waiter-heal tick of the server ``me`` for its own expectations (selfheal §2.2)."""
    if not me.session_id:
        return WaiterHealResult("unclaimed")
    if off:
        return WaiterHealResult("disabled")
    sid = canonical_session_id(me.session_id)
    now = ctx.clock.now_ms()
    records = _expectations(ctx, sid, now)
    answered = _answered(ctx, sid) if records else set()
    if not records or answered is None:
        return WaiterHealResult("no_records")
    counts = {verdict: 0 for verdict in WaiterVerdict}
    fired = 0
    for record in records:
        target = record.peer or ""
        peer = None if record.request_id in answered else resolve_target(ctx, me, target, as_session=True)
        resolved = isinstance(peer, RegistryEntry)
        facts = WaiterFacts(
            answered=record.request_id in answered,
            resolved=resolved,
            receipt=resolved and _has_receipt(ctx, record.message_id or ""),
            age_s=age_s(now, record.at_ms),
            attempts=record.attempts,
        )
        verdict = gates.decide(WAITER_HEAL, facts, ctx.settings)
        if verdict is WaiterVerdict.CONSUME:
            counts[verdict] += _take_expectation(ctx, record)
            continue
        if verdict is WaiterVerdict.TARGET_GONE:
            counts[verdict] += 1
            error = peer.error if isinstance(peer, Unresolved) else "unresolved"
            safe_emit(ctx.tracer, "waiter_heal_target_gone", owner=sid, target=target, error=error)
            continue
        if verdict is not None:
            counts[verdict] += 1
            continue
        assert isinstance(peer, RegistryEntry)
        fired += yield from _repoke(ctx, sid, record, peer, now)
    return WaiterHealResult(
        "ran",
        fired=fired,
        consumed=counts[WaiterVerdict.CONSUME],
        gave_up=counts[WaiterVerdict.GAVE_UP],
        target_gone=counts[WaiterVerdict.TARGET_GONE],
    )


def _take_expectation(ctx: Context, record: PendingAsk) -> int:
    try:
        return int(ctx.store.pending_take(record.requester, record.request_id, None) is not None)
    except StoreError:
        return 0


def _claim(ctx: Context, target: str, now: int, settings: Settings) -> bool:
    """The per-target single-winner claim; any store error loses (fail safe: a broken store never
    licenses a blind cross-agent keystroke)."""
    try:
        return ctx.store.waiter_claim(target, now, now - int(settings.waiter_heal_throttle_ms))
    except Exception:  # noqa: BLE001
        return False


def _repoke(ctx: Context, sid: str, record: PendingAsk, peer: RegistryEntry, now: int) -> Flow[int]:
    """Claim the target, wake it leniently, count the attempt iff keystrokes landed; 1 if fired."""
    target = canonical_session_id(peer.session_id) if peer.session_id else record.peer or ""
    if not _claim(ctx, target, now, ctx.settings):
        return 0
    try:
        status = yield from lenient_wake(ctx, peer)
    except Exception as exc:  # noqa: BLE001 - a tick never raises
        safe_emit(ctx.tracer, "waiter_heal_wake_error", owner=sid, target=target, error=str(exc))
        return 0
    fired = status in gates.TYPED
    attempts = record.attempts
    if fired:
        try:
            ctx.store.pending_bump(record.requester, record.request_id, now)
            attempts += 1
        except StoreError:
            pass
    safe_emit(
        ctx.tracer,
        "waiter_heal_repoke",
        owner=sid,
        target=target,
        request_id=record.request_id,
        message_id=record.message_id,
        wake_status=status.value,
        attempts=attempts,
    )
    return int(fired)
