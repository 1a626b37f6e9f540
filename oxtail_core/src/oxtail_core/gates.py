"""The wake gates as tables: which gate a message takes, and what each gate decides.

Everything here is pure: a decider takes the facts a flow has read (a marker,
a stamp, the clock) and returns a verdict; :mod:`oxtail_core.wake` reads the
facts, calls the decider and performs the verdict. Each table row names the
rule of the spec it encodes (``messaging.md`` §4.7–§4.10, ``accounting.md``
§4–§6), so a reader can check the tables line by line and
``tests/core/test_gates.py`` enumerates every row.

Which gate (:data:`WAKE_PLAN`, keyed by "is ``reply_to`` set?" and the
``wake`` argument), overridden by :data:`LATE_PLAN` when a live pending ask was
consumed. A plan's ``kill_switch`` column says whether ``OXTAIL_AUTOWAKE=off``
turns it into ``disabled`` (:func:`killed`): that rule, and the reply-default
rule, exist only here.

A plain message (``wake`` unset, no ``reply_to``) takes the *plain seam*
(:data:`PLAIN_SEAM`), which looks at the target before it picks: an unclaimed
target gets nothing, a hookless one (claimed, no marker) the lenient wake with
the reason ``hookless_default``, a fresh-busy one nothing, any other hooked one
the advisory ``delivery_outlook:"stranded_until_read"`` instead of a wake.
Callers that are never on that seam (a delegation, ``complete_work``,
``block_work``) pass their effective wake (``"auto"`` when unset), so they
cannot reach it; ``ask_peer`` does not resolve a send wake at all.

What each gate decides, as ordered rule tables (first match wins):
:data:`LENIENT_GATE`, :data:`REPLY_GATE` (the strict reply default, staged so
that it reads the store only once the marker allowed it, R58), and
:data:`FUNNEL_GATE` (strategy, debounce, verified target). A store error in the
strict gate's store stage is a fact like any other and has its row (R57, R58).
Keystrokes that landed are reported by :data:`FIRED_AS`, over the target's
:class:`Liveness` read *after* the keystrokes: only a hooked peer's wake is a
confident ``fired`` (accounting §5.1, A42).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import Generic, Literal, TypeVar

import attrs

from oxtail_core.model import ActivityMarker, Outlook, WakeMode, WakeReason, WakeStatus
from oxtail_core.settings import Settings

F = TypeVar("F")
V = TypeVar("V")


class Gate(enum.Enum):
    """Which decision a message's wake goes through."""

    NONE = "none"
    LENIENT = "lenient"
    STRICT = "strict"
    PLAIN = "plain"  # not a gate yet: the plain seam picks one from the target (:data:`PLAIN_SEAM`)


@attrs.frozen
class Plan:
    """A row of the plan tables: the gate, the reason reported beside its status, and two columns.

    ``kill_switch``: ``OXTAIL_AUTOWAKE=off`` makes this plan ``disabled``
    without touching the store. ``stamp``: claim the strict gate's dedupe slot
    (and rate stamp) before waking, so a later duplicate reply is deduped (R48).
    """

    gate: Gate
    reason: WakeReason | None = None
    kill_switch: bool = False
    stamp: bool = False

    @property
    def intends_wake(self) -> bool:
        """A wake was meant: a target that does not resolve reports ``skipped_no_target``.

        The plain seam wakes only a target it can see to be hookless, so an
        unresolved plain message reports nothing (0.32.1 ``send_message``).
        """
        return self.gate in (Gate.LENIENT, Gate.STRICT)


NO_WAKE = Plan(Gate.NONE)

WAKE_PLAN: Mapping[tuple[bool, WakeMode | None], Plan] = {
    # (reply_to set?, wake)      gate, reason                                   spec
    (True, None): Plan(Gate.STRICT, WakeReason.REPLY_TO_DEFAULT, kill_switch=True),  # §4.7 step 2
    (True, "auto"): Plan(Gate.LENIENT),  # §4.7 step 3: auto skips the strict gate and the kill switch
    (True, "off"): NO_WAKE,  # §4.7 step 4
    (False, None): Plan(Gate.PLAIN),  # accounting §5.3 step 4: the plain seam decides (PLAIN_SEAM)
    (False, "auto"): Plan(Gate.LENIENT),  # §4.7 step 3
    (False, "off"): NO_WAKE,  # §4.7 step 4
}
"""The gate of a message whose ``reply_to`` consumed no pending ask (``messaging.md`` §4.7 steps 2–4)."""

LATE_PLAN: Mapping[WakeMode | None, Plan] = {
    None: Plan(Gate.LENIENT, WakeReason.LATE_REPLY, kill_switch=True, stamp=True),  # §4.7 1b, R50
    "auto": Plan(Gate.LENIENT, WakeReason.LATE_REPLY, stamp=True),  # §4.7 1b, R50: auto ignores it
    "off": Plan(Gate.NONE, WakeReason.LATE_REPLY_SUPPRESSED),  # §4.7 1b, R49: no wake, no stamp
}
"""The late-reply override: a live pending ask was consumed (``messaging.md`` §4.7 step 1)."""


def plan_wake(reply_to: str | None, wake: WakeMode | None, *, late: bool) -> Plan:
    """The one place that says which gate a message's wake takes."""
    return LATE_PLAN[wake] if late else WAKE_PLAN[(bool(reply_to), wake)]


def killed(plan: Plan, settings: Settings) -> bool:
    """The kill switch: ``OXTAIL_AUTOWAKE=off`` disables exactly the plans that honor it."""
    return plan.kill_switch and settings.autowake_off


def unresolved_status(plan: Plan, target_not_found: bool, settings: Settings) -> WakeStatus | None:
    """The status of a send whose target did not resolve (``messaging.md`` §8.1 presence rules).

    A wake was meant and the target is unknown: ``skipped_no_target``, or
    ``disabled`` under the kill switch (the reference ignored the switch here).
    """
    if not plan.intends_wake or not target_not_found:
        return None
    return WakeStatus.DISABLED if killed(plan, settings) else WakeStatus.SKIPPED_NO_TARGET


# Ordered rule tables ----------------------------------------------------------------------------


@attrs.frozen
class Rule(Generic[F, V]):
    """One row of a gate: when ``applies`` to the facts, the verdict is ``then``."""

    spec: str
    applies: Callable[[F, Settings], bool]
    then: V


def decide(rules: tuple[Rule[F, V], ...], facts: F, settings: Settings) -> V | None:
    """The verdict of the first rule that applies; None when none does (the gate passes)."""
    return next((rule.then for rule in rules if rule.applies(facts, settings)), None)


def is_fresh_idle(marker: ActivityMarker | None, now_ms: int, settings: Settings) -> bool:
    """Idle, and recently: a marker from the future is not trusted (``messaging.md`` §4.8 2c)."""
    if marker is None or marker.status != "idle":
        return False
    return 0 <= now_ms - marker.at_ms < settings.fresh_idle_ms


def is_fresh_busy(marker: ActivityMarker | None, now_ms: int, settings: Settings) -> bool:
    """Busy within the busy TTL (``messaging.md`` §4.9 step 2).

    A marker from the future is not fresh busy (0.24, accounting §0.1, A40): a
    skewed clock must not silence every wake. The lenient gate and the plain
    seam's outlook share this one predicate, so they never disagree.
    """
    if marker is None or marker.status != "busy":
        return False
    return 0 <= now_ms - marker.at_ms < settings.busy_ttl_ms


class Liveness(enum.Enum):
    """What a target's wake can be confirmed by (accounting §0.1): its hooks, or nothing."""

    HOOKED = "hooked"  # claimed, and its hooks keep a marker
    HOOKLESS = "hookless"  # claimed, no marker (Codex, or Claude Code without hooks)
    UNCLAIMED = "unclaimed"  # no session id: always hookless for wake honesty


def liveness(claimed: bool, marker: ActivityMarker | None) -> Liveness:
    """A marker of any status or age makes a claimed peer hooked (accounting §0.1).

    The store reads a marker file it cannot parse as no marker (the reference
    counts any readable file): such a peer is treated as hookless, so it is
    woken rather than merely advised, and its wake reports ``fired_unconfirmed``.
    """
    if not claimed:
        return Liveness.UNCLAIMED
    return Liveness.HOOKED if marker is not None else Liveness.HOOKLESS


@attrs.frozen
class SeamFacts:
    """What the plain seam looks at: the target's liveness and marker, read after delivery."""

    liveness: Liveness
    marker: ActivityMarker | None
    now_ms: int


HOOKLESS_WAKE = Plan(Gate.LENIENT, WakeReason.HOOKLESS_DEFAULT)
"""The hookless default: lenient, and deliberately deaf to ``OXTAIL_AUTOWAKE=off`` (Appendix B.7)."""

PLAIN_SEAM: tuple[Rule[SeamFacts, Plan | Outlook], ...] = (
    Rule("accounting §6.2, A47", lambda f, s: f.liveness is Liveness.UNCLAIMED, NO_WAKE),
    Rule("accounting §5.2, §5.3 step 4, A43", lambda f, s: f.liveness is Liveness.HOOKLESS, HOOKLESS_WAKE),
    Rule(
        "accounting §4, A40: its hooks deliver this turn",
        lambda f, s: is_fresh_busy(f.marker, f.now_ms, s),
        NO_WAKE,
    ),
    Rule(
        "accounting §4, A39 A40: idle, stale or skewed busy", lambda f, s: True, Outlook.STRANDED_UNTIL_READ
    ),
)
"""A plain message, by target: no wake, the hookless wake, or the advisory outlook (never both, A39).

``unknown_liveness`` is no verdict here: a hookless target is woken instead (A41).
"""


def plain_seam(facts: SeamFacts, settings: Settings) -> Plan | Outlook:
    """The plain seam's verdict (its last row always applies)."""
    verdict = decide(PLAIN_SEAM, facts, settings)
    assert verdict is not None  # the catch-all row
    return verdict


@attrs.frozen
class MarkerFacts:
    """What the lenient gate looks at."""

    marker: ActivityMarker | None
    now_ms: int


LENIENT_GATE: tuple[Rule[MarkerFacts, WakeStatus], ...] = (
    Rule("§4.9 step 2, R61, A40", lambda f, s: is_fresh_busy(f.marker, f.now_ms, s), WakeStatus.SKIPPED_BUSY),
)
"""Wake unless the peer is visibly busy; passing goes on to the funnel."""


class Step(enum.Enum):
    """What a staged gate needs done before it can decide."""

    READ_SLOTS = "read-slots"
    CLAIM_SLOT = "claim-slot"
    LOCATE = "locate"
    RELAY = "relay"  # the peer runs on another host: its relay locates and types (RELAY_GATE)
    ENQUEUE = "enqueue"
    AWAIT_REPORT = "await-report"
    WITHDRAW = "withdraw"
    AWAIT_SILENT = "await-silent"
    CLAIM = "claim"


StoreFailed = Literal["store-failed"]
STORE_FAILED: StoreFailed = "store-failed"


@attrs.frozen
class Slots:
    """The strict gate's store stage, as read: when the (peer, reply_to) slot was claimed, and when
    the peer was last woken for a reply."""

    claimed_at: int | None
    rated_at: int | None


@attrs.frozen
class ReplyFacts:
    """What the strict gate has read so far. ``None`` is "not read yet"; a store error is a fact."""

    claimed: bool
    marker: ActivityMarker | None
    now_ms: int
    slots: Slots | StoreFailed | None = None
    won: bool | StoreFailed | None = None


def _slot_live(f: ReplyFacts, s: Settings) -> bool:
    return (
        isinstance(f.slots, Slots)
        and f.slots.claimed_at is not None
        and (f.now_ms - f.slots.claimed_at < s.dedupe_ttl_ms)
    )


def _rate_limited(f: ReplyFacts, s: Settings) -> bool:
    return (
        isinstance(f.slots, Slots)
        and f.slots.rated_at is not None
        and (f.now_ms - f.slots.rated_at < s.min_interval_ms)
    )


REPLY_GATE: tuple[Rule[ReplyFacts, WakeStatus | Step], ...] = (
    Rule(
        "§4.8 2b-2c, R63",
        lambda f, s: not f.claimed or not is_fresh_idle(f.marker, f.now_ms, s),
        WakeStatus.SKIPPED_NO_FRESH_IDLE,
    ),
    Rule("§4.8 2d (no store before this), R58", lambda f, s: f.slots is None, Step.READ_SLOTS),
    Rule(
        "§4.8 2d store error, R57 R58", lambda f, s: f.slots == STORE_FAILED, WakeStatus.SKIPPED_STORE_ERROR
    ),
    Rule("§4.8 2d.2, R48", _slot_live, WakeStatus.SKIPPED_DEDUPED),
    Rule("§4.8 2d.3, R56", _rate_limited, WakeStatus.SKIPPED_RATE_LIMITED),
    Rule("§4.8 2d.4", lambda f, s: f.won is None, Step.CLAIM_SLOT),
    Rule("§4.8 2d store error, R58", lambda f, s: f.won == STORE_FAILED, WakeStatus.SKIPPED_STORE_ERROR),
    Rule("§4.8 2d.4, R55", lambda f, s: f.won is False, WakeStatus.SKIPPED_DEDUPED),
)
"""The strict reply default (``messaging.md`` §4.8 step 2; the kill switch, 2a, is the plan's column).

Passing (no rule applies: the slot was won) goes on to the funnel.
"""


def reply_gate(facts: ReplyFacts, settings: Settings) -> WakeStatus | Step | None:
    """The strict gate's verdict on what has been read: a status, a step to perform first, or None
    (passed: wake through the funnel)."""
    return decide(REPLY_GATE, facts, settings)


class SlotFollowUp(enum.Enum):
    """What the strict gate does with its claimed slot once the funnel has answered (R59, ours)."""

    STAMP_RATE = "stamp-rate"
    RELEASE_SLOT = "release-slot"


TYPED: frozenset[WakeStatus] = frozenset({WakeStatus.FIRED, WakeStatus.FIRED_UNCONFIRMED})
"""Statuses meaning keystrokes landed, confirmed by a marker or not (accounting §5.1)."""

AFTER_STRICT_WAKE: Mapping[bool, SlotFollowUp] = {
    True: SlotFollowUp.STAMP_RATE,  # R59 (ours): the rate stamp only after a wake that typed
    False: SlotFollowUp.RELEASE_SLOT,  # R59 (ours): a gate that typed nothing gives its slot back
}
"""Keyed by "did the keystrokes land?" (the status is in :data:`TYPED`)."""


@attrs.frozen
class FunnelFacts:
    """What the single keystroke funnel looks at. ``target``: None until located, then the verified
    pane or ``""`` when none could be verified."""

    debounced: bool
    has_pane: bool
    target: str | None = None
    remote: bool = False
    """The peer's entry names another host than ours: only that host's relay can type there."""


FUNNEL_GATE: tuple[Rule[FunnelFacts, WakeStatus | Step], ...] = (
    Rule("§4.10 step 1, §4.11.3", lambda f, s: s.wake_strategy == "off", WakeStatus.DISABLED),
    Rule("§4.10 step 2, R60", lambda f, s: f.debounced, WakeStatus.SKIPPED_DEBOUNCED),
    Rule("§4.11.1 step 1, R64", lambda f, s: not f.has_pane, WakeStatus.SKIPPED_NO_TARGET),
    Rule("redis-store §6.7: another host's pane", lambda f, s: f.remote, Step.RELAY),
    Rule("§4.10 step 3", lambda f, s: f.target is None, Step.LOCATE),
    Rule("§4.10 step 3, §4.11.1 step 5, R64", lambda f, s: not f.target, WakeStatus.SKIPPED_NO_TARGET),
)
"""``wakePeer`` (``messaging.md`` §4.10) up to the keystrokes; passing types at ``target``.

A peer on another host passes the same strategy, debounce and registered-pane rows, then goes to
its host's relay (:data:`RELAY_GATE`) instead of being located here.
"""


def funnel_gate(facts: FunnelFacts, settings: Settings) -> WakeStatus | Step | None:
    """The funnel's verdict: a status, a step to perform first, or None (type at ``facts.target``)."""
    return decide(FUNNEL_GATE, facts, settings)


FIRED_AS: Mapping[Liveness, WakeStatus] = {
    Liveness.HOOKED: WakeStatus.FIRED,  # accounting §5.1, A42: any marker, even stale busy
    Liveness.HOOKLESS: WakeStatus.FIRED_UNCONFIRMED,  # §5.1, A42: nothing confirms the pickup
    Liveness.UNCLAIMED: WakeStatus.FIRED_UNCONFIRMED,  # §5.1, §6.2, A47
}
"""The status of keystrokes that landed, by the target's liveness read *after* them (so a marker a
Codex peer wrote during the submit gap counts, A42)."""


ASK_GRACE_HIT = WakeStatus.SKIPPED_BUSY
"""ask_peer's status when the reply arrived within the grace, before any keystroke: the peer was
mid-turn and its hooks delivered the question (accounting §5.1, A44; 0.15.0 said ``fired``)."""


# The wake relay (redis-store.md §6) --------------------------------------------------------------


@attrs.frozen
class RelayFacts:
    """What the sender of a remote wake has learned so far. ``None``: not done yet; a store error
    is a fact. ``queued``: ``wake_enqueue``'s answer (False: no relay holds the host's lease)."""

    queued: bool | StoreFailed | None = None
    outcome: str | None = None
    """The relay's report (:data:`~oxtail_core.protocols.RELAY_OUTCOMES`), once read."""
    first_wait_over: bool = False
    withdrew: bool | StoreFailed | None = None
    second_wait_over: bool = False


class RelayEnd(enum.Enum):
    """How a remote wake ended, from the sender's side (redis-store.md §6.3)."""

    NO_RELAY = "no-relay"
    REFUSED = "relay-unreachable"
    REPORTED = "reported"
    WITHDRAWN = "relay-timeout"
    SILENT = "relay-silent"


def _enqueue_failed(f: RelayFacts, s: Settings) -> bool:
    return f.queued == STORE_FAILED


RELAY_GATE: tuple[Rule[RelayFacts, RelayEnd | Step], ...] = (
    Rule("§6.2 sender", lambda f, s: f.queued is None, Step.ENQUEUE),
    Rule(
        "§6.3 a refused request may still be queued: take its slot first",
        lambda f, s: _enqueue_failed(f, s) and f.withdrew is None,
        Step.WITHDRAW,
    ),
    Rule(
        "§6.3 Redis refused the request",
        lambda f, s: _enqueue_failed(f, s) and f.withdrew is not False,
        RelayEnd.REFUSED,
    ),
    Rule("§6.3 no relay lease for the host", lambda f, s: f.queued is False, RelayEnd.NO_RELAY),
    Rule("§6.3 the relay reported", lambda f, s: f.outcome is not None, RelayEnd.REPORTED),
    Rule("§6.2 wait up to bound1", lambda f, s: not f.first_wait_over, Step.AWAIT_REPORT),
    Rule("§6.2 no report: withdraw", lambda f, s: f.withdrew is None, Step.WITHDRAW),
    Rule("§6.3 the withdrawal won: nothing typed", lambda f, s: f.withdrew is True, RelayEnd.WITHDRAWN),
    Rule(
        "§6.2 a relay holds the claim: wait up to bound2",
        lambda f, s: not f.second_wait_over,
        Step.AWAIT_SILENT,
    ),
    Rule("§6.3 the claiming relay went silent", lambda f, s: True, RelayEnd.SILENT),
)
"""The sender of a remote wake, step by step (first match wins; the last row always applies)."""


def relay_gate(facts: RelayFacts, settings: Settings) -> RelayEnd | Step:
    """The remote wake's next step, or how it ended."""
    verdict = decide(RELAY_GATE, facts, settings)
    assert verdict is not None  # the catch-all row
    return verdict


@attrs.frozen
class RelayEndRow:
    """A remote wake's status (None: the relay's report says it, :data:`REPORTED_AS`) and what the
    sender does with a strict wake's dedupe slot (None: nothing, the relay finalized it or keys may
    have landed)."""

    status: WakeStatus | None
    slot: SlotFollowUp | None


RELAY_ENDS: Mapping[RelayEnd, RelayEndRow] = {
    RelayEnd.NO_RELAY: RelayEndRow(WakeStatus.SKIPPED_NO_TARGET, SlotFollowUp.RELEASE_SLOT),  # §6.3
    RelayEnd.REFUSED: RelayEndRow(WakeStatus.SKIPPED_STORE_ERROR, SlotFollowUp.RELEASE_SLOT),  # §6.3
    RelayEnd.REPORTED: RelayEndRow(None, None),  # §6.5: the relay stamped or released before reporting
    RelayEnd.WITHDRAWN: RelayEndRow(WakeStatus.SKIPPED_NO_TARGET, SlotFollowUp.RELEASE_SLOT),  # §6.3, §6.5
    RelayEnd.SILENT: RelayEndRow(WakeStatus.FIRED_UNCONFIRMED, None),  # §6.5: the claim stays
}
"""Each end of a remote wake: its status and the sender's part of the strict gate's bookkeeping."""

REPORTED_AS: Mapping[str, WakeStatus | None] = {
    "typed": None,  # the keys landed: FIRED_AS over the peer's liveness read now, as for a local wake
    "skipped": WakeStatus.SKIPPED_NO_TARGET,  # §6.3: the relay could not verify the pane, or it failed
    "unconfirmed": WakeStatus.FIRED_UNCONFIRMED,  # §6.2: a dead relay had claimed it; never typed twice
}
"""The sender's status for a relay's report."""


@attrs.frozen
class RelaySideFacts:
    """What a relay knows about one request it read. ``claim``: ``wake_claim``'s answer (None: not
    tried yet); ``registered``: the registry holds that incarnation on this host; ``target``: as in
    :class:`FunnelFacts`."""

    claim: str | None = None
    stale: bool = False
    registered: bool = False
    target: str | None = None


RELAY_SIDE: tuple[Rule[RelaySideFacts, str | Step | None], ...] = (
    Rule("§6.2 single winner", lambda f, s: f.claim is None, Step.CLAIM),
    Rule("§6.2 the sender withdrew first: ack only", lambda f, s: f.claim == "withdrawn", None),
    Rule(
        "§6.2 another relay claimed it: never type twice", lambda f, s: f.claim == "held", "claimed-elsewhere"
    ),
    Rule("§6.6 requests expire", lambda f, s: f.stale, "stale"),
    Rule("§6.6 the registered incarnation only", lambda f, s: not f.registered, "not-registered"),
    Rule("§6.2 R64 locate from this host's process tree", lambda f, s: f.target is None, Step.LOCATE),
    Rule("§6.2 R64 no verified pane", lambda f, s: not f.target, "no-verified-pane"),
)
"""A relay's decision on one request: a step, ``None`` (acknowledge, report nothing), or the reason it
reports (``claimed-elsewhere`` is reported ``unconfirmed``, any other reason ``skipped``). Passing
(no row applies) types at ``target``."""


def relay_side(facts: RelaySideFacts, settings: Settings) -> str | Step | None:
    """The relay's next step on a request, or its verdict; :data:`TYPE_IT` when it passed."""
    return next((r.then for r in RELAY_SIDE if r.applies(facts, settings)), TYPE_IT)


TYPE_IT = "type"
""":func:`relay_side` passed: type the wake line at the verified target."""

RELAY_CLAMP_GAP_MS = (0, 5_000)
"""The Codex submit gap a relay honors (a request's ``gap_ms`` is clamped into it, §6.6)."""
