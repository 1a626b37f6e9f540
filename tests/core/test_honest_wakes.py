"""Honest wakes and the send-time outlook on a MemoryStore and the fake clock (accounting.md §4–§6.2).

Each test names the A-item of accounting.md §12 it covers. No test sleeps: the
Codex submit gap and the debounce window are fake-clock time.
"""

from __future__ import annotations

import itertools

from oxtail_core import Settings, WakeReason, WakeStatus
from oxtail_core.effects import run
from oxtail_core.model import WAKE_TEXT, Outlook, WakeMode, WakeOutcome
from oxtail_core.results import Asked, Replied, Sent
from oxtail_core.texts import OUTLOOK_HINTS
from oxtail_core.wake import resolve_send_wake
from oxtail_mcp.server.responses import render
from tests.support.world import A, B, C, World, make_world

STRANDED = WakeOutcome(outlook=Outlook.STRANDED_UNTIL_READ)
TTL = 600_000  # OXTAIL_ACTIVITY_BUSY_TTL_MS default


def sent_wake(out: object) -> WakeOutcome:
    assert isinstance(out, Sent | Replied), out
    return out.wake


def typed_lines(w: World, pane: str) -> int:
    """How many wake lines (text, then Enter) were typed into ``pane``."""
    assert all(text in (WAKE_TEXT, "Enter") for _, text in w.waker.keys)
    return sum(1 for target, text in w.waker.keys if target == pane and text == "Enter")


# A39 --------------------------------------------------------------------------------------------


def test_a_plain_send_to_an_idle_hooked_peer_gets_the_outlook_and_no_wake() -> None:
    w = make_world()
    a = w.join(1, A)
    w.join(2, B, pane="%2")
    w.mark(B, "idle", age_ms=5_000)
    sent = a.send(B, "fyi")
    assert sent_wake(sent) == STRANDED and w.waker.keys == []
    wire = render(sent)
    assert list(wire)[-2:] == ["delivery_outlook", "hint"] and "wake_status" not in wire
    assert wire["delivery_outlook"] == "stranded_until_read"
    assert wire["hint"] == OUTLOOK_HINTS[Outlook.STRANDED_UNTIL_READ]


def test_the_outlook_never_comes_with_a_wake_status() -> None:
    """A39: only the plain seam (wake unset, no reply_to) to a claimed hooked peer has it."""
    w = make_world()
    a = w.join(1, A)
    w.join(2, B, pane="%2")
    w.join(3, None, pane="%3", tmux_session="unclaimed")
    w.mark(B, "idle")
    seen: list[WakeOutcome] = []
    for target, wake, reply_to in itertools.product((B, "unclaimed"), (None, "auto", "off"), (None, "rq")):
        w.clock.advance(5_000)  # past every debounce and rate window
        w.mark(B, "idle")
        outcome = sent_wake(a.send(target, "m", wake=wake, reply_to=reply_to))  # type: ignore[arg-type]
        seen.append(outcome)
        assert outcome.outlook is None or outcome.status is None, (target, wake, reply_to)
        plain = target == B and wake is None and reply_to is None
        assert (outcome.outlook is not None) is plain, (target, wake, reply_to, outcome)
    assert STRANDED in seen


def test_a_reply_to_a_plain_message_gets_the_outlook_too() -> None:
    """reply_to_message to a message without a request_id is a plain send (accounting §4)."""
    w = make_world()
    a, b = w.join(1, A, pane="%1"), w.join(2, B)
    sent = a.send(B, "plain question")
    assert isinstance(sent, Sent)
    b.read_messages()
    w.mark(A, "idle")
    replied = b.reply(sent.message_id, "answer")
    assert isinstance(replied, Replied) and replied.wake == STRANDED and w.waker.keys == []
    assert list(render(replied))[-3:] == ["correlation", "delivery_outlook", "hint"]


def test_a_completion_or_delegation_wake_is_never_the_plain_seam() -> None:
    """complete_work / block_work and an action_required send pass their effective wake ("auto"
    when unset), so they wake and never get an outlook or the hookless reason (§4, §5.2)."""
    for marker, status in (("idle", WakeStatus.FIRED), (None, WakeStatus.FIRED_UNCONFIRMED)):
        w = make_world()
        a, b = w.join(1, A), w.join(2, B, pane="%2")
        if marker:
            w.mark(B, marker)
        for reply_to in (None, "request-of-the-delegation"):
            w.clock.advance(5_000)  # past the debounce window
            outcome = run(resolve_send_wake(w.ctx, a.me, b.me, "auto", reply_to), w.store, w.clock)
            assert outcome == WakeOutcome(status), (marker, reply_to)


# A40 --------------------------------------------------------------------------------------------


def test_the_busy_boundary_is_the_ttl_and_a_future_busy_marker_is_not_busy() -> None:
    w = make_world()
    a = w.join(1, A)
    w.join(2, B, pane="%2")
    w.mark(B, "busy", age_ms=TTL - 1)
    assert sent_wake(a.send(B, "plain")) == WakeOutcome()  # fresh busy: its hooks deliver this turn
    assert sent_wake(a.send(B, "auto", wake="auto")).status is WakeStatus.SKIPPED_BUSY
    assert w.waker.keys == []
    for age in (TTL, -10_000):  # stale busy, and a marker from the future (0.15 skipped this one)
        w.clock.advance(5_000)
        w.mark(B, "busy", age_ms=age)
        assert sent_wake(a.send(B, "plain")) == STRANDED
        assert sent_wake(a.send(B, "auto", wake="auto")) == WakeOutcome(WakeStatus.FIRED)
    assert typed_lines(w, "%2") == 2


def test_a_future_busy_marker_does_not_hold_back_an_ask_wake() -> None:
    w = make_world()
    a = w.join(1, A)
    w.join(2, B, pane="%2")
    w.mark(B, "busy", age_ms=-10_000)
    out = a.ask(B, "q", timeout_ms=1_000)
    assert isinstance(out, Asked) and out.wake_status is WakeStatus.FIRED and typed_lines(w, "%2") == 1


# A41 --------------------------------------------------------------------------------------------


def test_unknown_liveness_is_never_returned() -> None:
    markers: list[tuple[str, int] | None] = [None, ("idle", 0), ("busy", 0), ("busy", TTL), ("busy", -1)]
    modes: list[WakeMode | None] = [None, "auto", "off"]
    for marker, wake, reply_to, target in itertools.product(markers, modes, (None, "rq"), (B, "unclaimed")):
        w = make_world()
        a = w.join(1, A)
        w.join(2, B, pane="%2")
        w.join(3, None, pane="%3", tmux_session="unclaimed")
        if marker is not None:
            w.mark(B, *marker)
        outcome = sent_wake(a.send(target, "m", wake=wake, reply_to=reply_to))
        assert outcome.outlook is not Outlook.UNKNOWN_LIVENESS


# A42 --------------------------------------------------------------------------------------------


def test_only_a_claimed_peer_with_a_marker_reports_fired() -> None:
    w = make_world()
    a = w.join(1, A)
    w.join(2, B, pane="%2")
    w.join(3, C, pane="%3")
    w.join(4, None, pane="%1", tmux_session="unclaimed")
    w.mark(B, "busy", age_ms=TTL + 1)  # any marker, even a stale busy one
    assert sent_wake(a.send(B, "m", wake="auto")).status is WakeStatus.FIRED
    assert sent_wake(a.send(C, "m", wake="auto")).status is WakeStatus.FIRED_UNCONFIRMED  # no marker
    unclaimed = a.send("unclaimed", "m", wake="auto")
    assert sent_wake(unclaimed).status is WakeStatus.FIRED_UNCONFIRMED
    assert render(unclaimed)["wake_status"] == "fired_unconfirmed"
    assert [typed_lines(w, pane) for pane in ("%2", "%3", "%1")] == [1, 1, 1]


def test_a_marker_written_during_the_codex_gap_confirms_the_wake() -> None:
    """The marker is read after the keystrokes: a Codex peer whose hooks mark it busy while the
    submit gap runs was picked up (A42)."""
    w = make_world()
    a = w.join(1, A)
    w.join(2, B, pane="%2", client_type="codex")
    w.clock.after(250, lambda: w.mark(B, "busy"))  # halfway through the 500 ms gap
    assert sent_wake(a.send(B, "m", wake="auto")).status is WakeStatus.FIRED
    w.clock.advance(5_000)
    w.join(3, C, pane="%3", client_type="codex")
    assert sent_wake(a.send(C, "m", wake="auto")).status is WakeStatus.FIRED_UNCONFIRMED


def test_a_strict_reply_wake_that_typed_unconfirmed_still_stamps_the_rate() -> None:
    """fired_unconfirmed is a wake that typed (TYPED): the strict gate keeps its slot (R59, ours).
    The strict gate needs a fresh idle marker, so its own status is fired; the slot rule is shared."""
    w = make_world()
    a = w.join(1, A)
    w.join(2, B, pane="%2")
    w.mark(B, "idle")
    assert sent_wake(a.send(B, "r", reply_to="rq")) == WakeOutcome(
        WakeStatus.FIRED, WakeReason.REPLY_TO_DEFAULT
    )
    assert w.store.rate_get(B) is not None and w.store.dedupe_get(B, "rq") is not None


# A43 --------------------------------------------------------------------------------------------


def test_a_plain_send_wakes_a_hookless_peer_with_the_hookless_default() -> None:
    w = make_world()
    a = w.join(1, A)
    w.join(2, B, pane="%2")
    first = a.send(B, "plain")
    assert sent_wake(first) == WakeOutcome(WakeStatus.FIRED_UNCONFIRMED, WakeReason.HOOKLESS_DEFAULT)
    assert list(render(first))[-2:] == ["wake_status", "wake_reason"]
    assert w.waker.keys == [("%2", WAKE_TEXT), ("%2", "Enter")]
    w.clock.advance(999)
    assert sent_wake(a.send(B, "again")) == WakeOutcome(
        WakeStatus.SKIPPED_DEBOUNCED, WakeReason.HOOKLESS_DEFAULT
    )
    w.clock.advance(1)
    assert sent_wake(a.send(B, "later")).status is WakeStatus.FIRED_UNCONFIRMED
    assert sent_wake(a.send(B, "quiet", wake="off")) == WakeOutcome()  # off: no wake keys, no outlook
    assert typed_lines(w, "%2") == 2


def test_the_hookless_default_obeys_the_strategy_not_the_autowake_kill_switch() -> None:
    """Appendix B.7: OXTAIL_AUTOWAKE=off does not stop it; OXTAIL_ASK_PEER_WAKE_STRATEGY=off does."""
    killed = make_world(Settings(autowake_off=True))
    killed.join(2, B, pane="%2")
    got = sent_wake(killed.join(1, A).send(B, "plain"))
    assert got == WakeOutcome(WakeStatus.FIRED_UNCONFIRMED, WakeReason.HOOKLESS_DEFAULT)
    off = make_world(Settings(wake_strategy="off"))
    off.join(2, B, pane="%2")
    got = sent_wake(off.join(1, A).send(B, "plain"))
    assert got == WakeOutcome(WakeStatus.DISABLED, WakeReason.HOOKLESS_DEFAULT) and off.waker.keys == []
    paneless = make_world()
    paneless.join(2, B)
    got = sent_wake(paneless.join(1, A).send(B, "plain"))
    assert got == WakeOutcome(WakeStatus.SKIPPED_NO_TARGET, WakeReason.HOOKLESS_DEFAULT)


def test_a_plain_send_to_an_unknown_target_reports_no_wake() -> None:
    """The hookless default needs a target it can see: an unresolved plain send has no wake keys."""
    w = make_world()
    a = w.join(1, A)
    assert render(a.send(C, "x")) == {"schema_version": 1, "ok": False, "error": "target-not-found"}


# A44 --------------------------------------------------------------------------------------------


def test_an_ask_answered_in_the_grace_is_skipped_busy_and_types_nothing() -> None:
    w = make_world()
    a, b = w.join(1, A), w.join(2, B, pane="%2")
    w.clock.after(100, lambda: [b.reply(m.id, "quick") for m in b.read_messages().messages])
    out = a.ask(B, "q", timeout_ms=5_000)
    assert isinstance(out, Asked) and out.reply is not None and out.reply.body == "quick"
    assert out.wake_status is WakeStatus.SKIPPED_BUSY and w.waker.keys == []
    assert render(out)["wake_status"] == "skipped_busy"


def test_an_ask_to_a_hookless_peer_answered_after_the_wake_is_fired_unconfirmed() -> None:
    w = make_world()
    a, b = w.join(1, A), w.join(2, B, pane="%2")
    w.clock.after(2_000, lambda: [b.reply(m.id, "slow") for m in b.read_messages().messages])
    out = a.ask(B, "q", timeout_ms=5_000)
    assert isinstance(out, Asked) and out.reply is not None and out.reply.body == "slow"
    assert out.wake_status is WakeStatus.FIRED_UNCONFIRMED and typed_lines(w, "%2") == 1


# A47 --------------------------------------------------------------------------------------------


def test_a_plain_send_to_an_unclaimed_peer_does_not_wake_but_auto_does_every_time() -> None:
    """§6.2: no wake and no outlook for a plain send; wake:"auto" (a delegation arrives as "auto")
    runs the verified-pane wake, fired_unconfirmed, and is not debounced (no session id)."""
    w = make_world()
    a = w.join(1, A)
    w.join(3, None, pane="%3", tmux_session="unclaimed")
    assert sent_wake(a.send("unclaimed", "plain")) == WakeOutcome() and w.waker.keys == []
    for _ in range(3):  # same instant: the debounce does not apply
        assert sent_wake(a.send("unclaimed", "nudge", wake="auto")) == WakeOutcome(
            WakeStatus.FIRED_UNCONFIRMED
        )
    assert typed_lines(w, "%3") == 3
