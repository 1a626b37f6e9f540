"""Every row of the wake-gate and pending-ask tables, checked against the spec's own statement.

Each case quotes the rule it checks (``messaging.md`` section or R-number,
``accounting.md`` section or A-number) in its test id; a coverage test then
makes sure every row of every table is hit by some case, so a row added
without a case fails here.
"""

from __future__ import annotations

from typing import Any

import pytest

from oxtail_core.errors import IllegalPendingStep
from oxtail_core.gates import (
    AFTER_STRICT_WAKE,
    ASK_GRACE_HIT,
    FIRED_AS,
    FUNNEL_GATE,
    HOOKLESS_WAKE,
    LATE_PLAN,
    LENIENT_GATE,
    NO_WAKE,
    PLAIN_SEAM,
    REPLY_GATE,
    STORE_FAILED,
    TYPED,
    WAKE_PLAN,
    FunnelFacts,
    Gate,
    Liveness,
    MarkerFacts,
    Plan,
    ReplyFacts,
    Rule,
    SeamFacts,
    SlotFollowUp,
    Slots,
    Step,
    funnel_gate,
    is_fresh_busy,
    killed,
    liveness,
    plain_seam,
    plan_wake,
    reply_gate,
    unresolved_status,
)
from oxtail_core.model import ActivityMarker, Outlook, PendingAsk, WakeReason, WakeStatus
from oxtail_core.pending import (
    LIFECYCLE,
    PendingEvent,
    PendingState,
    PendingStep,
    pending_step,
    state_of,
)
from oxtail_core.settings import Settings

SETTINGS = Settings()
KILLED = Settings(autowake_off=True)
NOW = 10_000_000
IDLE = ActivityMarker("idle", NOW - 1)
BUSY = ActivityMarker("busy", NOW - 1)


def first_row(rules: tuple[Rule[Any, Any], ...], facts: Any, settings: Settings) -> int | None:
    """The index of the row that decides ``facts`` (None: the gate passes)."""
    return next((i for i, rule in enumerate(rules) if rule.applies(facts, settings)), None)


# Which gate ----------------------------------------------------------------------------------------

PLAN_CASES = [
    # (spec, reply_to, wake, gate, reason, honors the kill switch)
    ("§4.7-2 reply default is strict", "r", None, Gate.STRICT, WakeReason.REPLY_TO_DEFAULT, True),
    ("§4.7-3 auto on a reply is lenient, ignores kill switch", "r", "auto", Gate.LENIENT, None, False),
    ("§4.7-4 off on a reply never wakes", "r", "off", Gate.NONE, None, False),
    ("accounting §5.3-4 a plain message takes the plain seam", None, None, Gate.PLAIN, None, False),
    ("§4.7-3 auto is lenient", None, "auto", Gate.LENIENT, None, False),
    ("§4.7-4 off never wakes", None, "off", Gate.NONE, None, False),
]


@pytest.mark.parametrize(
    ("spec", "reply_to", "wake", "gate", "reason", "kill"), PLAN_CASES, ids=[c[0] for c in PLAN_CASES]
)
def test_each_message_takes_the_gate_the_spec_names(
    *, spec: str, reply_to: str | None, wake: Any, gate: Gate, reason: WakeReason | None, kill: bool
) -> None:
    plan = plan_wake(reply_to, wake, late=False)
    assert (plan.gate, plan.reason, plan.kill_switch, plan.stamp) == (gate, reason, kill, False)
    assert killed(plan, KILLED) is kill
    assert killed(plan, SETTINGS) is False


LATE_CASES = [
    # (spec, wake, gate, reason, kill switch, stamp)
    (
        "§4.7-1b R50 late reply unset: lenient, kill switch disables",
        None,
        Gate.LENIENT,
        WakeReason.LATE_REPLY,
        True,
        True,
    ),
    (
        "§4.7-1b R50 late reply auto: lenient, kill switch ignored",
        "auto",
        Gate.LENIENT,
        WakeReason.LATE_REPLY,
        False,
        True,
    ),
    (
        "§4.7-1b R49 late reply off: suppressed, no stamp",
        "off",
        Gate.NONE,
        WakeReason.LATE_REPLY_SUPPRESSED,
        False,
        False,
    ),
]


@pytest.mark.parametrize(
    ("spec", "wake", "gate", "reason", "kill", "stamp"), LATE_CASES, ids=[c[0] for c in LATE_CASES]
)
def test_a_consumed_pending_ask_overrides_the_plan_whatever_reply_to_says(
    *, spec: str, wake: Any, gate: Gate, reason: WakeReason, kill: bool, stamp: bool
) -> None:
    for reply_to in ("r", None):
        plan = plan_wake(reply_to, wake, late=True)
        assert (plan.gate, plan.reason, plan.kill_switch, plan.stamp) == (gate, reason, kill, stamp)


UNRESOLVED_CASES = [
    # (spec, reply_to, wake, target-not-found?, settings, status)
    (
        "§8.1 reply default to an unknown target: skipped_no_target",
        "r",
        None,
        True,
        SETTINGS,
        WakeStatus.SKIPPED_NO_TARGET,
    ),
    ("§8.1 ours kill switch honored on every path: disabled", "r", None, True, KILLED, WakeStatus.DISABLED),
    (
        "§8.1 auto to an unknown target: skipped_no_target",
        None,
        "auto",
        True,
        KILLED,
        WakeStatus.SKIPPED_NO_TARGET,
    ),
    ("§8.1 other resolution errors: absent", "r", None, False, SETTINGS, None),
    ("§8.1 plain message to an unknown target: absent", None, None, True, SETTINGS, None),
    ("§8.1 off to an unknown target: absent", "r", "off", True, SETTINGS, None),
]


@pytest.mark.parametrize(
    ("spec", "reply_to", "wake", "not_found", "settings", "status"),
    UNRESOLVED_CASES,
    ids=[c[0] for c in UNRESOLVED_CASES],
)
def test_an_unresolved_target_reports_a_status_only_when_a_wake_was_meant(
    *,
    spec: str,
    reply_to: str | None,
    wake: Any,
    not_found: bool,
    settings: Settings,
    status: WakeStatus | None,
) -> None:
    assert unresolved_status(plan_wake(reply_to, wake, late=False), not_found, settings) is status


# What each gate decides -----------------------------------------------------------------------------

LENIENT_CASES = [
    ("§4.9-2 R61 fresh busy is skipped", MarkerFacts(BUSY, NOW), 0, WakeStatus.SKIPPED_BUSY),
    (
        "§4.9-2 A40 busy at TTL-1 ms is fresh",
        MarkerFacts(ActivityMarker("busy", NOW - 599_999), NOW),
        0,
        WakeStatus.SKIPPED_BUSY,
    ),
    (
        "accounting §0.1 A40 a future busy marker is not fresh: wake",
        MarkerFacts(ActivityMarker("busy", NOW + 5), NOW),
        None,
        None,
    ),
    (
        "§4.9-3 A40 stale busy (age = TTL) wakes",
        MarkerFacts(ActivityMarker("busy", NOW - 600_000), NOW),
        None,
        None,
    ),
    ("§4.9-3 R53 no marker wakes", MarkerFacts(None, NOW), None, None),
    ("§4.9-3 idle of any age wakes", MarkerFacts(ActivityMarker("idle", 0), NOW), None, None),
]

FRESH = dict(claimed=True, marker=IDLE, now_ms=NOW)
REPLY_CASES: list[tuple[str, ReplyFacts, int, WakeStatus | Step | None]] = [
    (
        "§4.8-2b unclaimed peer",
        ReplyFacts(claimed=False, marker=IDLE, now_ms=NOW),
        0,
        WakeStatus.SKIPPED_NO_FRESH_IDLE,
    ),
    (
        "§4.8-2c R63 busy peer",
        ReplyFacts(claimed=True, marker=BUSY, now_ms=NOW),
        0,
        WakeStatus.SKIPPED_NO_FRESH_IDLE,
    ),
    (
        "§4.8-2c no marker",
        ReplyFacts(claimed=True, marker=None, now_ms=NOW),
        0,
        WakeStatus.SKIPPED_NO_FRESH_IDLE,
    ),
    (
        "§4.8-2c stale idle",
        ReplyFacts(claimed=True, marker=ActivityMarker("idle", NOW - 300_000), now_ms=NOW),
        0,
        WakeStatus.SKIPPED_NO_FRESH_IDLE,
    ),
    (
        "§4.8-2c future idle untrusted",
        ReplyFacts(claimed=True, marker=ActivityMarker("idle", NOW + 1), now_ms=NOW),
        0,
        WakeStatus.SKIPPED_NO_FRESH_IDLE,
    ),
    ("§4.8-2d R58 the store is read only now", ReplyFacts(**FRESH), 1, Step.READ_SLOTS),
    (
        "§4.8-2d R57 R58 store error reading",
        ReplyFacts(**FRESH, slots=STORE_FAILED),
        2,
        WakeStatus.SKIPPED_STORE_ERROR,
    ),
    (
        "§4.8-2d.2 R48 live dedupe slot",
        ReplyFacts(**FRESH, slots=Slots(NOW - 3_599_999, None)),
        3,
        WakeStatus.SKIPPED_DEDUPED,
    ),
    (
        "§4.8-2d.3 R56 rate limited",
        ReplyFacts(**FRESH, slots=Slots(None, NOW - 3_999)),
        4,
        WakeStatus.SKIPPED_RATE_LIMITED,
    ),
    (
        "§4.8-2d.2 stale slot is no duplicate",
        ReplyFacts(**FRESH, slots=Slots(NOW - 3_600_000, NOW - 4_000)),
        5,
        Step.CLAIM_SLOT,
    ),
    (
        "§4.8-2d R58 store error claiming",
        ReplyFacts(**FRESH, slots=Slots(None, None), won=STORE_FAILED),
        6,
        WakeStatus.SKIPPED_STORE_ERROR,
    ),
    (
        "§4.8-2d.4 R55 claim lost",
        ReplyFacts(**FRESH, slots=Slots(None, None), won=False),
        7,
        WakeStatus.SKIPPED_DEDUPED,
    ),
    ("§4.8-2d.5 claim won: fire", ReplyFacts(**FRESH, slots=Slots(None, None), won=True), None, None),
]

FUNNEL_CASES: list[tuple[str, Settings, FunnelFacts, int, WakeStatus | Step | None]] = [
    (
        "§4.10-1 §4.11.3 strategy off",
        Settings(wake_strategy="off"),
        FunnelFacts(debounced=True, has_pane=False),
        0,
        WakeStatus.DISABLED,
    ),
    (
        "§4.10-2 R60 debounced",
        SETTINGS,
        FunnelFacts(debounced=True, has_pane=True),
        1,
        WakeStatus.SKIPPED_DEBOUNCED,
    ),
    (
        "§4.11.1-1 R64 no registered pane",
        SETTINGS,
        FunnelFacts(debounced=False, has_pane=False),
        2,
        WakeStatus.SKIPPED_NO_TARGET,
    ),
    (
        "redis-store §6.7 another host's pane goes to its relay",
        SETTINGS,
        FunnelFacts(debounced=False, has_pane=True, remote=True),
        3,
        Step.RELAY,
    ),
    (
        "§4.10-3 locate from the process tree",
        SETTINGS,
        FunnelFacts(debounced=False, has_pane=True),
        4,
        Step.LOCATE,
    ),
    (
        "§4.11.1-5 R64 no verified pane",
        SETTINGS,
        FunnelFacts(debounced=False, has_pane=True, target=""),
        5,
        WakeStatus.SKIPPED_NO_TARGET,
    ),
    (
        "§4.10-6 verified pane: type",
        SETTINGS,
        FunnelFacts(debounced=False, has_pane=True, target="%3"),
        None,
        None,
    ),
]


@pytest.mark.parametrize(
    ("spec", "facts", "row", "verdict"), LENIENT_CASES, ids=[c[0] for c in LENIENT_CASES]
)
def test_the_lenient_gate_skips_only_a_fresh_busy_peer(
    spec: str, facts: MarkerFacts, row: int | None, verdict: Any
) -> None:
    assert first_row(LENIENT_GATE, facts, SETTINGS) == row
    assert (LENIENT_GATE[row].then if row is not None else None) is verdict


@pytest.mark.parametrize(("spec", "facts", "row", "verdict"), REPLY_CASES, ids=[c[0] for c in REPLY_CASES])
def test_the_strict_gate_decides_in_the_spec_order(
    spec: str, facts: ReplyFacts, row: int | None, verdict: Any
) -> None:
    assert first_row(REPLY_GATE, facts, SETTINGS) == row
    assert reply_gate(facts, SETTINGS) is verdict


@pytest.mark.parametrize(
    ("spec", "settings", "facts", "row", "verdict"), FUNNEL_CASES, ids=[c[0] for c in FUNNEL_CASES]
)
def test_the_funnel_checks_strategy_debounce_then_a_verified_pane(
    spec: str, settings: Settings, facts: FunnelFacts, row: int | None, verdict: Any
) -> None:
    assert first_row(FUNNEL_GATE, facts, settings) == row
    assert funnel_gate(facts, settings) is verdict


@pytest.mark.parametrize(
    ("status", "follow_up"),
    [
        (
            s,
            SlotFollowUp.STAMP_RATE
            if s in (WakeStatus.FIRED, WakeStatus.FIRED_UNCONFIRMED)
            else SlotFollowUp.RELEASE_SLOT,
        )
        for s in WakeStatus
    ],
    ids=[f"R59 ours: {s.value}" for s in WakeStatus],
)
def test_only_a_strict_wake_that_typed_keeps_its_slot_and_stamps_the_rate(
    status: WakeStatus, follow_up: SlotFollowUp
) -> None:
    assert AFTER_STRICT_WAKE[status in TYPED] is follow_up


# The plain seam and honest statuses (accounting.md §4, §5) -----------------------------------------

STRANDED = Outlook.STRANDED_UNTIL_READ
SEAM_CASES: list[tuple[str, SeamFacts, int, Plan | Outlook]] = [
    (
        "§6.2 A47 unclaimed: no wake, no outlook",
        SeamFacts(Liveness.UNCLAIMED, None, NOW),
        0,
        NO_WAKE,
    ),
    (
        "§5.2 A43 hookless: the hookless default wake",
        SeamFacts(Liveness.HOOKLESS, None, NOW),
        1,
        HOOKLESS_WAKE,
    ),
    ("§4 A40 fresh busy (TTL-1 ms): its hooks deliver", SeamFacts(Liveness.HOOKED, BUSY, NOW), 2, NO_WAKE),
    ("§4 A39 idle hooked peer: stranded until read", SeamFacts(Liveness.HOOKED, IDLE, NOW), 3, STRANDED),
    (
        "§4 A40 stale busy: stranded until read",
        SeamFacts(Liveness.HOOKED, ActivityMarker("busy", NOW - 600_000), NOW),
        3,
        STRANDED,
    ),
    (
        "§4 A40 skewed (future) busy: stranded until read",
        SeamFacts(Liveness.HOOKED, ActivityMarker("busy", NOW + 10_000), NOW),
        3,
        STRANDED,
    ),
    (
        "§4 stale idle: stranded until read",
        SeamFacts(Liveness.HOOKED, ActivityMarker("idle", 0), NOW),
        3,
        STRANDED,
    ),
]


@pytest.mark.parametrize(("spec", "facts", "row", "verdict"), SEAM_CASES, ids=[c[0] for c in SEAM_CASES])
def test_the_plain_seam_wakes_a_hookless_peer_and_advises_about_an_idle_hooked_one(
    spec: str, facts: SeamFacts, row: int, verdict: Plan | Outlook
) -> None:
    assert first_row(PLAIN_SEAM, facts, SETTINGS) == row
    assert plain_seam(facts, SETTINGS) == verdict


def test_the_hookless_default_wakes_leniently_with_its_reason_and_ignores_the_kill_switch() -> None:
    # accounting §5.2, Appendix B.7: OXTAIL_AUTOWAKE=off stops neither it nor wake:"auto"
    plan = HOOKLESS_WAKE
    assert (plan.gate, plan.reason, plan.kill_switch, plan.stamp) == (
        Gate.LENIENT,
        WakeReason.HOOKLESS_DEFAULT,
        False,
        False,
    )
    assert killed(HOOKLESS_WAKE, KILLED) is False
    assert HOOKLESS_WAKE.intends_wake and not Plan(Gate.PLAIN).intends_wake


def test_the_plain_seam_never_answers_unknown_liveness() -> None:  # A41, Appendix B.6
    assert all(rule.then is not Outlook.UNKNOWN_LIVENESS for rule in PLAIN_SEAM)


LIVENESS_CASES = [
    ("§0.1 claimed with an idle marker is hooked", True, IDLE, Liveness.HOOKED),
    ("§0.1 A42 claimed with a stale busy marker is hooked", True, ActivityMarker("busy", 0), Liveness.HOOKED),
    ("§0.1 claimed without a marker is hookless", True, None, Liveness.HOOKLESS),
    ("§0.1 unclaimed is unclaimed (never read)", False, None, Liveness.UNCLAIMED),
    ("§0.1 unclaimed even with a marker", False, IDLE, Liveness.UNCLAIMED),
]


@pytest.mark.parametrize(
    ("spec", "claimed", "marker", "expected"), LIVENESS_CASES, ids=[c[0] for c in LIVENESS_CASES]
)
def test_a_marker_of_any_age_makes_a_claimed_peer_hooked(
    spec: str, claimed: bool, marker: ActivityMarker | None, expected: Liveness
) -> None:
    assert liveness(claimed, marker) is expected


FIRED_CASES = [
    ("§5.1 A42 a hooked peer's wake is fired", Liveness.HOOKED, WakeStatus.FIRED),
    ("§5.1 A42 a hookless peer's wake is unconfirmed", Liveness.HOOKLESS, WakeStatus.FIRED_UNCONFIRMED),
    (
        "§5.1 §6.2 A47 an unclaimed peer's wake is unconfirmed",
        Liveness.UNCLAIMED,
        WakeStatus.FIRED_UNCONFIRMED,
    ),
]


@pytest.mark.parametrize(("spec", "alive", "status"), FIRED_CASES, ids=[c[0] for c in FIRED_CASES])
def test_keystrokes_that_landed_are_fired_only_for_a_hooked_peer(
    spec: str, alive: Liveness, status: WakeStatus
) -> None:
    assert FIRED_AS[alive] is status and status in TYPED


def test_fresh_busy_is_busy_with_an_age_from_zero_to_below_the_ttl() -> None:  # accounting §0.1, A40
    ages = {-1: False, 0: True, 599_999: True, 600_000: False}
    assert {age: is_fresh_busy(ActivityMarker("busy", NOW - age), NOW, SETTINGS) for age in ages} == ages
    assert is_fresh_busy(ActivityMarker("idle", NOW), NOW, SETTINGS) is False
    assert is_fresh_busy(None, NOW, SETTINGS) is False


def test_a_reply_caught_in_the_ask_grace_is_skipped_busy() -> None:  # accounting §5.1, A44
    assert ASK_GRACE_HIT is WakeStatus.SKIPPED_BUSY and ASK_GRACE_HIT not in TYPED


def test_every_row_of_every_gate_table_has_a_case() -> None:
    assert {(c[1] is not None, c[2]) for c in PLAN_CASES} == set(WAKE_PLAN)
    assert {c[1] for c in LATE_CASES} == set(LATE_PLAN)
    assert {c[2] for c in LENIENT_CASES} - {None} == set(range(len(LENIENT_GATE)))
    assert {c[2] for c in REPLY_CASES} - {None} == set(range(len(REPLY_GATE)))
    assert {c[3] for c in FUNNEL_CASES} - {None} == set(range(len(FUNNEL_GATE)))
    assert {c[2] for c in SEAM_CASES} == set(range(len(PLAIN_SEAM)))
    assert {c[3] for c in LIVENESS_CASES} == set(Liveness)
    assert {c[1] for c in FIRED_CASES} == set(FIRED_AS) == set(Liveness)
    assert all(isinstance(p, Plan) for p in (*WAKE_PLAN.values(), *LATE_PLAN.values()))


# The pending-ask lifecycle ----------------------------------------------------------------------------

S, E = PendingState, PendingEvent
LIFECYCLE_CASES = [
    ("§1.5 record creates a live note", S.ABSENT, E.RECORD, S.LIVE, False),
    ("§1.5 taking a missing note gives no wake", S.ABSENT, E.TAKE, S.ABSENT, False),
    ("§1.5 R54 nothing to refuse", S.ABSENT, E.TAKE_OTHER, S.ABSENT, False),
    ("§1.5 gc of nothing", S.ABSENT, E.GC, S.ABSENT, False),
    ("R52 a duplicate record keeps the first", S.LIVE, E.RECORD, S.LIVE, False),
    ("R47 one taker of a live note pulls the asker back", S.LIVE, E.TAKE, S.GONE, True),
    ("R54 ours a reply from someone not asked leaves it", S.LIVE, E.TAKE_OTHER, S.LIVE, False),
    ("§1.5 live iff age below the TTL", S.LIVE, E.EXPIRE, S.EXPIRED, False),
    ("§1.8 gc keeps a live note", S.LIVE, E.GC, S.LIVE, False),
    ("R52 the TTL counts from the first record", S.EXPIRED, E.RECORD, S.EXPIRED, False),
    ("R51 an expired note is removed without a wake", S.EXPIRED, E.TAKE, S.GONE, False),
    ("R54 ours expired, wrong replier", S.EXPIRED, E.TAKE_OTHER, S.EXPIRED, False),
    ("§1.5 gc removes an expired note", S.EXPIRED, E.GC, S.GONE, False),
    ("R47 the losing taker gets no wake", S.GONE, E.TAKE, S.GONE, False),
    ("R54 ours gone, wrong replier", S.GONE, E.TAKE_OTHER, S.GONE, False),
    ("§1.5 gc after removal", S.GONE, E.GC, S.GONE, False),
]


@pytest.mark.parametrize(
    ("spec", "state", "event", "to", "late"), LIFECYCLE_CASES, ids=[c[0] for c in LIFECYCLE_CASES]
)
def test_each_pending_ask_step_lands_where_the_spec_says(
    spec: str, state: PendingState, event: PendingEvent, to: PendingState, late: bool
) -> None:
    assert pending_step(state, event) == PendingStep(to, late_wake=late)


ILLEGAL = [(s, e) for s in PendingState for e in PendingEvent if e not in LIFECYCLE[s]]


@pytest.mark.parametrize(("state", "event"), ILLEGAL, ids=[f"{s.value} x {e.value}" for s, e in ILLEGAL])
def test_a_step_the_lifecycle_does_not_have_raises_a_named_error(
    state: PendingState, event: PendingEvent
) -> None:
    with pytest.raises(IllegalPendingStep) as raised:
        pending_step(state, event)
    assert (raised.value.state, raised.value.event, raised.value.code) == (
        state.value,
        event.value,
        "illegal-pending-step",
    )


def test_the_illegal_steps_are_expiring_twice_or_without_a_note_and_rewriting_a_removed_one() -> None:
    assert set(ILLEGAL) == {
        (S.ABSENT, E.EXPIRE),
        (S.EXPIRED, E.EXPIRE),
        (S.GONE, E.EXPIRE),
        (S.GONE, E.RECORD),
    }
    assert {(c[1], c[2]) for c in LIFECYCLE_CASES} == {(s, e) for s in LIFECYCLE for e in LIFECYCLE[s]}


def test_a_stored_note_is_live_strictly_below_the_ttl() -> None:  # §1.5, R51 exact boundary
    note = PendingAsk(requester="a", request_id="r", at_ms=NOW)
    assert state_of(None, NOW, 1_000) is S.ABSENT
    assert state_of(note, NOW + 999, 1_000) is S.LIVE
    assert state_of(note, NOW + 1_000, 1_000) is S.EXPIRED
