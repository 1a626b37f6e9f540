"""Self-heal and waiter-heal on a MemoryStore and the fake clock (selfheal.md §1, §2; accounting §8).

Every timing rule (grace, throttle, cap, TTL) is driven by ``FakeClock.advance``; no test sleeps.
Each test names the A- or S-item it covers.
"""

from __future__ import annotations

import itertools

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oxtail_core import Settings, WakeStatus
from oxtail_core.effects import run
from oxtail_core.errors import StoreError
from oxtail_core.model import WAKE_TEXT, PendingWake, Receipt, WakeOutcome
from oxtail_core.peer import Peer
from oxtail_core.pending import record_pending
from oxtail_core.results import Asked, Sent
from oxtail_core.selfheal import (
    WAKE_INTENT_STATUSES,
    SelfHealResult,
    WaiterHealResult,
    note_wake_intent,
    self_heal_tick,
    waiter_heal_tick,
)
from oxtail_core.settings import heals_off
from oxtail_core.testing.contract import mint
from tests.support.world import A, B, C, World, make_world

MID = "0123456789abcdef"


def lines(w: World, pane: str) -> int:
    """Wake lines typed into ``pane`` (text then Enter)."""
    assert all(text in (WAKE_TEXT, "Enter") for _, text in w.waker.keys)
    return sum(1 for target, text in w.waker.keys if target == pane and text == "Enter")


def heal(w: World, peer: Peer, *, off: bool = False) -> SelfHealResult:
    return run(self_heal_tick(w.ctx, peer.me, off=off), w.store, w.clock)


def waiter(w: World, peer: Peer, *, off: bool = False) -> WaiterHealResult:
    return run(waiter_heal_tick(w.ctx, peer.me, off=off), w.store, w.clock)


def intent(w: World, message_id: str = MID, sid: str = B) -> PendingWake:
    record = PendingWake(recipient=sid, message_id=message_id, sender=A, sent_at_ms=w.clock.now_ms())
    assert w.store.wake_intent_put(record)
    return record


def attempts(w: World, sid: str = B) -> dict[str, int]:
    return {r.message_id: r.attempts for r in w.store.wake_intent_list(sid)}


def recipient(w: World, *, marker: str | None = "idle") -> Peer:
    b = w.join(2, B, pane="%2")
    if marker:
        w.mark(B, marker, age_ms=1_000)
    return b


# A45, S1: which wake statuses leave a record ------------------------------------------------------


@pytest.mark.parametrize("status", [*WakeStatus, None])
def test_exactly_the_six_unconfident_wake_statuses_leave_a_wake_intent(status: WakeStatus | None) -> None:
    w = make_world()
    a, b = w.join(1, A), w.join(2, B)
    created = note_wake_intent(w.ctx, a.me, b.me, MID, WakeOutcome(status))
    expected = status in {
        WakeStatus.FIRED_UNCONFIRMED,
        WakeStatus.SKIPPED_NO_FRESH_IDLE,
        WakeStatus.SKIPPED_NO_TARGET,
        WakeStatus.SKIPPED_DEBOUNCED,
        WakeStatus.SKIPPED_RATE_LIMITED,
        WakeStatus.SKIPPED_STORE_ERROR,
    }
    assert created is expected and (status in WAKE_INTENT_STATUSES) is expected
    assert [r.message_id for r in w.store.wake_intent_list(B)] == ([MID] if expected else [])


def test_an_unclaimed_recipient_gets_no_wake_intent() -> None:
    w = make_world()
    a, nobody = w.join(1, A), w.join(3, None, tmux_session="t")
    assert not note_wake_intent(w.ctx, a.me, nobody.me, MID, WakeOutcome(WakeStatus.SKIPPED_NO_TARGET))


def test_a_store_failure_while_recording_an_intent_is_silently_no_record() -> None:
    w = make_world()
    a, b = w.join(1, A), w.join(2, B)

    def broken(record: PendingWake) -> bool:
        raise StoreError("disk full")

    w.store.wake_intent_put = broken  # type: ignore[method-assign]
    assert not note_wake_intent(w.ctx, a.me, b.me, MID, WakeOutcome(WakeStatus.SKIPPED_NO_TARGET))


def test_a_send_whose_wake_found_no_pane_leaves_a_record_and_a_confident_wake_leaves_none() -> None:
    """A45 through send_message: skipped_no_target records, fired (hooked, idle) does not."""
    w = make_world(panes={"%1", "%2"})
    a = w.join(1, A, pane="%1")
    w.join(2, B, pane="%9")  # a pane the terminal does not have: no verified target
    w.mark(B, "idle")
    sent = a.send(B, "hello", wake="auto")
    assert isinstance(sent, Sent) and sent.wake.status is WakeStatus.SKIPPED_NO_TARGET
    assert [r.message_id for r in w.store.wake_intent_list(B)] == [sent.message_id]
    w.join(3, C, pane="%2")
    w.mark(C, "idle")
    confident = a.send(C, "hello", wake="auto")
    assert isinstance(confident, Sent) and confident.wake.status is WakeStatus.FIRED
    assert w.store.wake_intent_list(C) == []


def test_a_plain_fyi_to_a_hooked_peer_and_wake_off_leave_no_record() -> None:
    w = make_world()
    a = w.join(1, A)
    w.join(2, B, pane="%2")
    w.mark(B, "idle")
    a.send(B, "fyi")
    a.send(B, "quiet", wake="off")
    assert w.store.wake_intent_list(B) == []


def test_a_completion_whose_wake_is_unconfident_leaves_a_record_for_the_requester() -> None:
    """complete_work records too (accounting §8.1): the requester A is hookless, so fired_unconfirmed."""
    w = make_world()
    a, b = w.join(1, A, pane="%1"), w.join(2, B, pane="%2")
    sent = a.send(B, "task", action_required=True, wake="off")
    assert isinstance(sent, Sent)
    b.read_messages()
    closed = b.complete_work(sent.message_id, "done")
    assert closed.wake is not None and closed.wake.status is WakeStatus.FIRED_UNCONFIRMED  # type: ignore[union-attr]
    assert [r.recipient for r in w.store.wake_intent_list(A)] == [A]


# A50, §1.3: the recipient's tick --------------------------------------------------------------------


def test_a_tick_of_an_unclaimed_server_or_with_a_kill_switch_off_does_nothing() -> None:
    w = make_world()
    nobody = w.join(3, None, tmux_session="t")
    assert heal(w, nobody).reason == "unclaimed"
    b = recipient(w)
    intent(w)
    w.clock.advance(20_000)
    assert heal(w, b, off=True).reason == "disabled" and w.waker.keys == []
    assert heals_off({"OXTAIL_SELF_WAKE": " OFF "}) and heals_off({"OXTAIL_AUTOWAKE": "off"})
    assert not heals_off({}) and not heals_off({"OXTAIL_SELF_WAKE": "on"})


def test_the_grace_is_judged_on_floor_seconds_and_a_future_record_is_never_eligible() -> None:
    """S4: 14.9 s old is not eligible, 15.0 s is; a record from the future has age 0."""
    w = make_world()
    b = recipient(w)
    intent(w)
    w.clock.advance(14_999)
    assert heal(w, b).reason == "nothing_eligible" and w.waker.keys == []
    w.clock.advance(1)
    w.mark(B, "idle", age_ms=1_000)
    result = heal(w, b)
    assert result == SelfHealResult("fired", records=1, fired=True) and lines(w, "%2") == 1
    assert attempts(w) == {MID: 1}
    future = PendingWake(recipient=B, message_id="1" * 16, sent_at_ms=w.clock.now_ms() + 3_600_000)
    w.store.wake_intent_put(future)
    w.clock.advance(60_000)
    w.mark(B, "idle", age_ms=1_000)
    heal(w, b)
    assert attempts(w)["1" * 16] == 0


def test_fired_nudges_are_a_throttle_apart_and_stop_at_the_cap() -> None:
    """A50: at most cap fired nudges per record, at least one throttle window apart."""
    w = make_world()
    b = recipient(w)
    intent(w)
    reasons = []
    for _ in range(12):  # 30 s ticks for 6 minutes
        w.clock.advance(30_000)
        w.mark(B, "idle", age_ms=1_000)
        reasons.append(heal(w, b).reason)
    assert reasons.count("fired") == 3 and lines(w, "%2") == 3
    assert reasons[:6] == ["fired", "throttled", "fired", "throttled", "fired", "nothing_eligible"]
    assert attempts(w) == {MID: 3}


def test_a_receipt_consumes_the_record_even_while_busy_throttled_or_markerless_but_not_when_off() -> None:
    """S3: consume precedes the session gate; the kill switch precedes consume."""
    w = make_world()
    b = recipient(w, marker="busy")
    intent(w)
    w.store.self_wake_put(B, w.clock.now_ms())
    w.store.receipt_put(Receipt(message_id=MID, delivered_at=1, via="hook", recipient_session_id=B))
    assert heal(w, b, off=True).reason == "disabled" and attempts(w) == {MID: 0}
    result = heal(w, b)
    assert result.consumed == 1 and result.reason == "nothing_eligible" and attempts(w) == {}
    assert w.waker.keys == []


@pytest.mark.parametrize(
    ("marker", "age_ms", "reason"),
    [(None, 0, "no_marker"), ("busy", 1_000, "not_idle"), ("idle", -5_000, "skew")],
)
def test_the_session_gate_needs_an_idle_marker_of_non_negative_age(
    marker: str | None, age_ms: int, reason: str
) -> None:
    """S6 (hookless: no_marker), S10 (future-dated idle marker: skew)."""
    w = make_world()
    b = recipient(w, marker=None)
    intent(w)
    w.clock.advance(20_000)
    if marker:
        w.mark(B, marker, age_ms=age_ms)
    assert heal(w, b).reason == reason and w.waker.keys == [] and attempts(w) == {MID: 0}


def test_a_wake_that_provably_did_nothing_keeps_the_cap_but_spends_the_throttle() -> None:
    """S7: an unverifiable pane ends skipped_no_target; no attempt counted, retried next window."""
    w = make_world(panes=set())
    b = recipient(w)
    intent(w)
    w.clock.advance(20_000)
    assert heal(w, b).reason == "skipped_no_target" and attempts(w) == {MID: 0}
    w.clock.advance(30_000)
    assert heal(w, b).reason == "throttled"
    assert w.store.self_wake_get(B) == w.clock.now_ms() - 30_000


def test_strategy_off_makes_every_heal_wake_disabled_and_never_counted() -> None:
    """S21 for self-heal."""
    w = make_world(Settings(wake_strategy="off"))
    b = recipient(w)
    intent(w)
    w.clock.advance(20_000)
    assert heal(w, b).reason == "disabled" and attempts(w) == {MID: 0} and w.waker.keys == []


def test_one_fire_bumps_every_eligible_record_from_every_sender() -> None:
    """S11."""
    w = make_world()
    b = recipient(w)
    intent(w, MID)
    w.store.wake_intent_put(
        PendingWake(recipient=B, message_id="2" * 16, sender=C, sent_at_ms=w.clock.now_ms())
    )
    w.clock.advance(20_000)
    assert heal(w, b).records == 2 and lines(w, "%2") == 1
    assert attempts(w) == {MID: 1, "2" * 16: 1}


def test_records_expire_at_the_ttl_and_a_restarted_recipient_adopts_live_ones() -> None:
    w = make_world()
    intent(w)
    b = recipient(w)
    b.leave()
    again = w.join(7, B, pane="%2")  # same session, new process
    w.clock.advance(20_000)
    w.mark(B, "idle", age_ms=1_000)
    assert heal(w, again).reason == "fired"
    w.clock.advance(3_600_000)
    assert heal(w, again).reason == "no_records" and w.store.wake_intent_list(B) == []


def test_an_exception_from_the_wake_is_a_traced_result_never_a_raise() -> None:
    w = make_world()
    b = recipient(w)
    intent(w)
    w.clock.advance(20_000)

    def explode(entry: object) -> str:
        raise RuntimeError("boom")

    w.waker.locate = explode  # type: ignore[method-assign]
    assert heal(w, b).reason == "skipped_no_target"  # the funnel treats a broken waker as no target

    class Exploding:
        def active(self, session_id: str, now_ms: int) -> bool:
            raise RuntimeError("boom")

    w.ctx.debounce = Exploding()  # type: ignore[assignment]
    w.clock.advance(60_000)
    assert heal(w, b).reason == "wake_error"
    assert any(e == "self_heal_wake_error" for e, _ in w.tracer.events)


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(st.tuples(st.integers(0, 40_000), st.sampled_from(["idle", "busy", None])), max_size=30)
)
def test_any_schedule_of_ticks_keeps_grace_throttle_and_cap(steps: list[tuple[int, str | None]]) -> None:
    """A50 as a property: no fired nudge within the grace, two fired nudges are at least a throttle
    apart, and never more than the cap per record."""
    w = make_world()
    b = recipient(w, marker=None)
    sent_at = intent(w).sent_at_ms
    fired_at: list[int] = []
    for advance, marker in steps:
        w.clock.advance(advance)
        if marker:
            w.mark(B, marker, age_ms=1)
        if heal(w, b).fired:
            fired_at.append(w.clock.now_ms())
    s = Settings()
    assert all(t - sent_at >= s.self_wake_grace_ms for t in fired_at)
    assert all(later - earlier >= s.self_wake_throttle_ms for earlier, later in itertools.pairwise(fired_at))
    assert len(fired_at) <= s.self_wake_cap and lines(w, "%2") == len(fired_at)
    assert attempts(w).get(MID, len(fired_at)) == len(fired_at)


# A51, §2.2: the delegator's watchdog -----------------------------------------------------------------

GRACE = 240_000


def delegation(w: World) -> tuple[Peer, Peer, Sent]:
    a, b = w.join(1, A, pane="%1"), w.join(2, B, pane="%2")
    sent = a.send(B, "please do X", action_required=True, wake="auto")
    assert isinstance(sent, Sent) and sent.obligation_durable
    w.waker.keys.clear()
    return a, b, sent


def expectation_attempts(w: World) -> list[int]:
    return [p.attempts for p in w.store.pending_list() if p.requester == A]


def test_a_durable_delegation_leaves_an_expectation_naming_the_target_and_the_message() -> None:
    w = make_world()
    _, _, sent = delegation(w)
    (record,) = w.store.pending_list()
    assert (record.requester, record.peer, record.message_id) == (A, B, sent.message_id)


def test_pre_receipt_past_the_grace_the_target_is_re_poked_and_the_attempt_counted() -> None:
    """A51, S15: not within 240 s (floor seconds), then one re-poke."""
    w = make_world()
    a, _, _ = delegation(w)
    w.clock.advance(GRACE - 1)
    assert waiter(w, a) == WaiterHealResult("ran") and w.waker.keys == []
    w.clock.advance(1)
    assert waiter(w, a).fired == 1 and lines(w, "%2") == 1
    assert expectation_attempts(w) == [1]
    assert any(e == "waiter_heal_repoke" for e, _ in w.tracer.events)


def test_post_receipt_the_target_is_neither_re_poked_nor_the_expectation_consumed() -> None:
    """A51: the peer has it in context; only its answer (or the TTL) ends the wait."""
    w = make_world()
    a, b, _ = delegation(w)
    b.read_messages()  # writes the receipt
    w.clock.advance(GRACE)
    assert waiter(w, a) == WaiterHealResult("ran") and w.waker.keys == []
    assert expectation_attempts(w) == [0]


def test_an_answer_already_in_my_ledger_consumes_the_expectation_without_a_poke() -> None:
    """S19: the consuming send raced a crash; the watchdog finishes the job."""
    w = make_world()
    a, _, sent = delegation(w)
    (record,) = w.store.pending_list()
    w.store.ledger_record(A, mint(9, reply_to=record.request_id), 1000)
    w.clock.advance(GRACE)
    assert waiter(w, a) == WaiterHealResult("ran", consumed=1) and w.store.pending_list() == []
    assert w.waker.keys == [] and sent.message_id


def test_an_unresolvable_target_is_skipped_and_traced_but_not_consumed() -> None:
    """A51, S14: target-gone is checked before the receipt."""
    w = make_world()
    a, b, _ = delegation(w)
    b.read_messages()
    b.leave()
    w.clock.advance(GRACE)
    assert waiter(w, a) == WaiterHealResult("ran", target_gone=1)
    assert len(w.store.pending_list()) == 1
    assert any(e == "waiter_heal_target_gone" for e, _ in w.tracer.events)


def test_the_cap_gives_up_and_the_record_ages_out() -> None:
    w = make_world()
    a, _, _ = delegation(w)
    w.clock.advance(GRACE)
    fired = 0
    for _ in range(8):
        w.mark(B, "idle", age_ms=1_000)
        fired += waiter(w, a).fired
        w.clock.advance(90_000)
    assert fired == 3 and expectation_attempts(w) == [3]
    assert waiter(w, a).gave_up == 1
    w.clock.advance(3_600_000)
    assert waiter(w, a).reason == "no_records"


def test_n_waiters_on_one_target_give_one_re_poke_per_throttle_window() -> None:
    """A51, S16: the claim is per target, shared by all waiters."""
    w = make_world()
    a, c = w.join(1, A, pane="%1"), w.join(3, C, pane="%3")
    w.join(2, B, pane="%2")
    for who in (a, c):
        assert isinstance(who.send(B, "task", action_required=True, wake="auto"), Sent)
    w.waker.keys.clear()
    w.clock.advance(GRACE)
    assert waiter(w, a).fired + waiter(w, c).fired == 1 and lines(w, "%2") == 1
    w.clock.advance(89_999)
    assert waiter(w, a).fired + waiter(w, c).fired == 0
    w.clock.advance(1)
    assert waiter(w, c).fired + waiter(w, a).fired == 1 and lines(w, "%2") == 2


def test_a_store_error_on_the_claim_licenses_no_keystroke() -> None:
    """A51: fail safe, unlike the self-heal throttle."""
    w = make_world()
    a, _, _ = delegation(w)
    w.clock.advance(GRACE)

    def broken(target: str, at_ms: int, stale_before_ms: int) -> bool:
        raise StoreError("eio")

    w.store.waiter_claim = broken  # type: ignore[method-assign]
    assert waiter(w, a).fired == 0 and w.waker.keys == []


def test_a_fresh_busy_target_spends_the_claim_but_not_an_attempt() -> None:
    """S18."""
    w = make_world()
    a, _, _ = delegation(w)
    w.clock.advance(GRACE)
    w.mark(B, "busy", age_ms=1_000)
    assert waiter(w, a).fired == 0 and expectation_attempts(w) == [0]
    assert w.store.waiter_claim(B, w.clock.now_ms(), w.clock.now_ms() - 90_000) is False


def test_wake_off_delegations_and_unclaimed_senders_leave_no_expectation_and_kill_switch_stops_it() -> None:
    """S12, and the kill switch of §2.2 step 1."""
    w = make_world()
    a = w.join(1, A, pane="%1")
    w.join(2, B, pane="%2")
    nobody = w.join(3, None, tmux_session="t")
    a.send(B, "task", action_required=True, wake="off")
    nobody.send(B, "task", action_required=True)
    assert w.store.pending_list() == []
    assert waiter(w, nobody).reason == "unclaimed" and waiter(w, a, off=True).reason == "disabled"


def test_a_timed_out_ask_expectation_is_healed_like_a_delegation() -> None:
    w = make_world()
    a = w.join(1, A, pane="%1")
    w.join(2, B, pane="%2")
    assert record_pending(w.ctx, A, "r" * 16, B, w.clock.now_ms(), message_id=MID, owner_epoch=1)
    assert record_pending(w.ctx, A, "legacy", B, w.clock.now_ms())  # no message id: never re-poked
    w.clock.advance(GRACE)
    assert waiter(w, a).fired == 1
    assert sorted(p.attempts for p in w.store.pending_list()) == [0, 1]
    assert attrs.has(WaiterHealResult)


def test_a_timed_out_ask_names_its_message_so_a_silent_peer_is_re_poked_after_the_grace() -> None:
    """selfheal §2.1 (2): the ask_peer timeout's record carries target and messageId."""
    w = make_world()
    a = w.join(1, A, pane="%1")
    w.join(2, B, pane="%2")
    asked = a.ask(B, "are you there?", timeout_ms=1_000)
    assert isinstance(asked, Asked) and asked.reply is None
    (record,) = w.store.pending_list()
    assert (record.peer, record.message_id, record.owner_epoch) == (B, asked.message_id, a.me.started_at)
    w.waker.keys.clear()
    w.clock.advance(GRACE)
    assert waiter(w, a).fired == 1 and lines(w, "%2") == 1


HEAL_DEFAULTS = {
    "OXTAIL_SELF_WAKE_INTERVAL_MS": ("self_wake_interval_ms", 30_000),
    "OXTAIL_SELF_WAKE_GRACE_MS": ("self_wake_grace_ms", 15_000),
    "OXTAIL_SELF_WAKE_THROTTLE_MS": ("self_wake_throttle_ms", 60_000),
    "OXTAIL_SELF_WAKE_CAP": ("self_wake_cap", 3),
    "OXTAIL_PENDING_WAKE_TTL_MS": ("pending_wake_ttl_ms", 3_600_000),
    "OXTAIL_WAITER_HEAL_INTERVAL_MS": ("waiter_heal_interval_ms", 60_000),
    "OXTAIL_WAITER_HEAL_GRACE_MS": ("waiter_heal_grace_ms", 240_000),
    "OXTAIL_WAITER_HEAL_THROTTLE_MS": ("waiter_heal_throttle_ms", 90_000),
    "OXTAIL_WAITER_HEAL_CAP": ("waiter_heal_cap", 3),
}


@pytest.mark.parametrize("name", sorted(HEAL_DEFAULTS))
@pytest.mark.parametrize(
    ("raw", "parsed"),
    [(None, None), ("", None), ("0", None), ("-5", None), ("10ms", None), ("Infinity", None), ("2.5", 2.5)],
)
def test_every_heal_variable_takes_a_finite_positive_number_else_its_default(
    name: str, raw: str | None, parsed: float | None
) -> None:
    """selfheal §10: unset or empty → default; finite and > 0 (fractions kept), else default."""
    field, default = HEAL_DEFAULTS[name]
    env = {} if raw is None else {name: raw}
    assert getattr(Settings.from_env(env), field) == (default if parsed is None else parsed)
    assert getattr(Settings(), field) == default


def test_a_fractional_cap_behaves_like_the_next_integer() -> None:
    w = make_world(Settings(self_wake_cap=2.5))
    b = recipient(w)
    intent(w)
    fired = 0
    for _ in range(10):
        w.clock.advance(60_000)
        w.mark(B, "idle", age_ms=1_000)
        fired += heal(w, b).fired
    assert fired == 3


def test_two_sibling_servers_of_one_session_give_one_nudge_per_throttle_window() -> None:
    """S5 (sequential ticks; a concurrent check-then-stamp may add one, bounded by the cap)."""
    w = make_world()
    b = recipient(w)
    sibling = w.join(8, B, pane="%2")
    intent(w)
    w.clock.advance(20_000)
    w.mark(B, "idle", age_ms=1_000)
    assert [heal(w, b).reason, heal(w, sibling).reason] == ["fired", "throttled"]
    assert lines(w, "%2") == 1 and attempts(w) == {MID: 1}
