"""Liveness on the fake clock, a MemoryStore and the recording waker (selfheal.md §5, S39–S41).

No test sleeps: transcript ages are fake-clock time, screens are the waker's
``screens``, and every capture the core asked for is in ``waker.captured``.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from oxtail_core import FakeClock, MemoryHost, MemoryStore, RecordingWaker, WakeStatus
from oxtail_core.errors import StoreError
from oxtail_core.liveness import (
    CAPTURE_FLEET_CAP,
    LIVENESS,
    PANE_REFRESH_MS,
    TAIL_MAX_CHARS,
    Capture,
    LivenessFacts,
    LivenessSettings,
    PaneActivity,
    PaneSampler,
    Reason,
    State,
    Verdict,
    age_or_skew,
    capture_fleet,
    capture_pane,
    judge,
    read_pane,
    start_check,
)
from oxtail_core.model import ClientInfo, Outlook, RegistryEntry, WakeOutcome
from oxtail_core.results import Sent
from tests.support.world import A, B, make_world

CLAUDE_BUSY = "\n".join(
    [
        "  ⎿  Waiting…",
        "✽ Gallivanting… (2m 2s · ↓ 7.4k tokens)",
        "──────────────────────────",
        "❯ ",
        "──────────────────────────",
        "  ⏵⏵ auto mode on (shift+tab to cycle) · esc to interrupt   ",
        "",
        "",
    ]
)
CLAUDE_IDLE = "\n".join(["❯ ", "─────", "  ⏵⏵ auto mode on (shift+tab to cycle) · ← for agents"])
CLAUDE_TICKING = "\n".join(["✻ Worked for 14s", "❯ ", "  ⏵⏵ auto mode on (shift+tab to cycle)"])
CODEX_BUSY = "\n".join(["• Working (38s · esc to interrupt)", "› ghost", "  gpt-5.5 xhigh · ~/dev/oxtail"])
S = LivenessSettings()


def entry(
    pid: int, pane: str | None = "%1", start: float | None = 1000.5, sid: str | None = A
) -> RegistryEntry:
    return RegistryEntry(
        server_pid=pid,
        started_at=1_800_000_000,
        client=ClientInfo("claude-code", sid),
        tmux_pane=pane,
        process_start=start,
    )


# §5.1: ages that tolerate skew ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("then_s", "age"),
    [(100.0, 0.0), (90.0, 10.0), (101.0, 0.0), (102.0, 0.0), (102.001, None), (112.0, None)],
)
def test_a_timestamp_up_to_two_seconds_ahead_is_just_now_and_further_ahead_is_unknown(
    then_s: float, age: float | None
) -> None:
    assert age_or_skew(100.0, then_s) == age


def test_the_windows_follow_the_floor_rule() -> None:
    assert LivenessSettings.from_env({}) == LivenessSettings(20, 600)
    env = {"OXTAIL_OXPIT_ACTIVE_S": "20.9", "OXTAIL_OXPIT_STALL_S": "-5"}
    assert LivenessSettings.from_env(env) == LivenessSettings(20, 600)
    env = {"OXTAIL_OXPIT_ACTIVE_S": " 45 ", "OXTAIL_OXPIT_STALL_S": "0x10"}
    assert LivenessSettings.from_env(env) == LivenessSettings(45, 16)


def test_s39_a_busy_marker_ten_seconds_ahead_neither_silences_a_wake_nor_moves_the_strict_gate() -> None:
    """S39: the lenient wake fires, a plain send gets the outlook, the strict reply gate answers as
    it does for a busy peer of the present (busy is never fresh idle)."""
    for age_ms in (-10_000, 0):
        w = make_world()
        a = w.join(1, A)
        w.join(2, B, pane="%2")
        w.mark(B, "busy", age_ms=age_ms)
        strict = a.send(B, "r", reply_to="rq-1")
        assert isinstance(strict, Sent) and strict.wake.status is WakeStatus.SKIPPED_NO_FRESH_IDLE
        plain, lenient = a.send(B, "fyi"), a.send(B, "go", wake="auto")
        assert isinstance(plain, Sent) and isinstance(lenient, Sent)
        if age_ms < 0:
            assert plain.wake == WakeOutcome(outlook=Outlook.STRANDED_UNTIL_READ)
            assert lenient.wake.status is WakeStatus.FIRED
        else:
            assert plain.wake == WakeOutcome() and lenient.wake.status is WakeStatus.SKIPPED_BUSY


# §5.2: reading a screen -------------------------------------------------------------------------


def test_a_claude_turn_in_flight_is_busy_with_its_spinner_line_made_display_safe() -> None:
    seen = read_pane(CLAUDE_BUSY)
    assert seen.busy and seen.tail is not None
    assert seen.tail.startswith("Gallivanting") and "7.4k tokens" in seen.tail
    assert seen.tail.isascii() and "…" not in seen.tail


def test_a_codex_working_line_is_busy_and_kept() -> None:
    assert read_pane(CODEX_BUSY) == PaneActivity(busy=True, tail="Working (38s esc to interrupt)")


@pytest.mark.parametrize(
    "screen",
    [
        CLAUDE_IDLE,
        CLAUDE_TICKING,  # S40: the counter keeps the screen changing; nothing is in flight
        "Working (old notes from a past turn)\n❯ \n  gpt-5.5 xhigh · ~/x",
        "",
        "\n\n   \n",
    ],
)
def test_a_screen_without_esc_to_interrupt_is_not_busy_and_shows_no_working_line(screen: str) -> None:
    assert read_pane(screen) == PaneActivity(busy=False)


def test_busy_is_matched_in_any_ascii_case_and_a_busy_screen_without_a_working_line_has_no_tail() -> None:
    assert read_pane("doing stuff · ESC to Interrupt") == PaneActivity(busy=True)
    assert read_pane("e\u017fc to \u0131nterrupt") == PaneActivity(busy=False)  # look-alikes are not it


def test_a_hostile_working_line_loses_every_control_bidi_and_wide_character() -> None:
    hostile = "Working (\u202e5s \x1b]52;c;ZXZpbA==\x07 · 你好世界 · esc to interrupt)"
    assert read_pane(hostile).tail == "Working (5s ]52;c;ZXZpbA== esc to interrupt)"
    long = read_pane("Working (" + "y" * 500 + " · esc to interrupt)")
    assert long.busy and long.tail == ("Working (" + "y" * 500)[:TAIL_MAX_CHARS]


@given(st.text(), st.text())
def test_any_screen_is_busy_exactly_when_it_shows_esc_to_interrupt_and_its_tail_is_display_safe(
    above: str, below: str
) -> None:
    for screen in (above + below, above + "esc to interrupt" + below):
        seen = read_pane(screen)
        assert seen.busy == ("esc to interrupt" in screen.lower())
        assert seen.busy or seen.tail is None
        assert seen.tail is None or (seen.tail and all(" " <= ch <= "~" for ch in seen.tail))


# §5.2 safety: capturing only what provably runs there --------------------------------------------


@attrs.define
class Fleet:
    store: MemoryStore
    waker: RecordingWaker
    host: MemoryHost

    def put(self, e: RegistryEntry, screen: str | None = None) -> RegistryEntry:
        self.store.registry_put(e)
        if e.tmux_pane is not None:
            self.waker.panes.add(e.tmux_pane)
            if screen is not None:
                self.waker.screens[e.tmux_pane] = screen
        return e


def fleet() -> Fleet:
    return Fleet(MemoryStore(), RecordingWaker(), MemoryHost())


def test_a_verified_pane_is_read_and_judged_from_what_it_shows() -> None:
    f = fleet()
    e = f.put(entry(7), CODEX_BUSY)
    got = capture_pane(e, f.store.registry_entries, f.waker)
    assert got.outcome is Capture.READ and got.busy and got.activity == read_pane(CODEX_BUSY)
    assert f.waker.captured == ["%1"]


def test_an_entry_without_a_start_time_or_a_pane_is_refused_and_nothing_is_read() -> None:
    f = fleet()
    for e in (f.put(entry(7, start=None), CODEX_BUSY), f.put(entry(8, pane=None), CODEX_BUSY)):
        got = capture_pane(e, f.store.registry_entries, f.waker)
        assert got.outcome is Capture.REFUSED and not got.busy
    assert f.waker.captured == []


def test_a_forged_entry_naming_a_pane_the_waker_cannot_verify_is_never_read() -> None:
    f = fleet()
    f.waker.screens["%9"] = CODEX_BUSY  # a stranger's busy screen
    forged = entry(7, pane="%9")
    f.store.registry_put(forged)  # "%9" is not a pane the waker can locate for it
    got = capture_pane(forged, f.store.registry_entries, f.waker)
    assert got == capture_pane(forged, f.store.registry_entries, f.waker)
    assert got.outcome is Capture.UNVERIFIED and not got.busy and f.waker.captured == []


def test_an_entry_the_registry_no_longer_holds_or_cannot_say_is_gone_and_never_read() -> None:
    f = fleet()
    e = f.put(entry(7), CODEX_BUSY)
    restarted = attrs.evolve(e, started_at=e.started_at + 5)  # the same pid, a later join
    assert capture_pane(restarted, f.store.registry_entries, f.waker).outcome is Capture.GONE

    def unreadable() -> list[RegistryEntry]:
        raise StoreError("registry unreadable")

    assert capture_pane(e, unreadable, f.waker).outcome is Capture.GONE
    assert f.waker.captured == []


def test_a_capture_that_fails_is_unknown_and_unknown_is_never_working() -> None:
    f = fleet()
    e = f.put(entry(7))  # the pane exists, nothing can be read from it
    got = capture_pane(e, f.store.registry_entries, f.waker)
    assert got.outcome is Capture.FAILED and got.activity is None and not got.busy
    facts = LivenessFacts(alive=True, start="ok", transcript_age_s=60.0, pane=got.activity)
    assert judge(facts, S) == Verdict(State.IDLE, Reason.IDLE)


class RecyclingWaker(RecordingWaker):
    """A terminal where ``during`` runs between the read and the re-verification (S41)."""

    def __init__(self, during: Callable[[RecordingWaker], object]) -> None:
        super().__init__()
        self.during = during

    def capture(self, target: str) -> str | None:
        text = super().capture(target)
        self.during(self)
        return text


@pytest.mark.parametrize(
    "recycle",
    [
        lambda w, store: w.panes.discard("%1"),  # the pane went to another process
        lambda w, store: store.registry_put(
            attrs.evolve(store.registry_entries()[0], started_at=1)
        ),  # restart
        lambda w, store: store.registry_remove(7),  # the agent exited
    ],
    ids=["pane-recycled", "server-restarted", "server-exited"],
)
def test_s41_a_pane_that_changed_hands_between_verify_and_capture_is_discarded(
    recycle: Callable[[RecordingWaker, MemoryStore], object],
) -> None:
    store = MemoryStore()
    waker = RecyclingWaker(lambda w: recycle(w, store))
    e = entry(7)
    store.registry_put(e)
    waker.panes.add("%1")
    waker.screens["%1"] = CODEX_BUSY
    got = capture_pane(e, store.registry_entries, waker)
    assert got.outcome is Capture.DISCARDED and got.activity is None and not got.busy
    assert waker.captured == ["%1"]  # read, then thrown away


def test_a_fleet_pass_skips_the_dead_itself_and_the_paneless_and_captures_at_most_sixteen() -> None:
    f = fleet()
    dead = f.put(entry(2, pane="%2", sid="dead-0000"), CODEX_BUSY)
    me = f.put(entry(3, pane="%3", sid="dddddddd-0000-0000-0000-00000000000d"), CODEX_BUSY)
    paneless = f.put(entry(4, pane=None, sid="paneless-0000"))
    f.host.kill(2)
    crowd = [f.put(entry(100 + i, pane=f"%{100 + i}", sid=f"s-{i}"), CLAUDE_IDLE) for i in range(20)]
    crowd[0] = f.put(attrs.evolve(crowd[0]), CODEX_BUSY)
    busy = capture_fleet(
        [dead, me, paneless, *crowd],
        f.store.registry_entries,
        f.waker,
        f.host,
        "DDDDDDDD-0000-0000-0000-00000000000D",
    )
    assert f.waker.captured == [f"%{100 + i}" for i in range(CAPTURE_FLEET_CAP)]
    assert set(busy) == {100 + i for i in range(CAPTURE_FLEET_CAP)}
    assert [pid for pid, seen in busy.items() if seen.busy] == [100]


class SteppingClock(FakeClock):
    """A fake clock the OS can also set back."""

    def step_back(self, ms: int) -> None:
        self._now -= ms


def test_on_the_fake_clock_a_cockpit_reads_panes_again_each_slow_tick_and_reuses_them_between() -> None:
    clock, passes = SteppingClock(), []

    def sample() -> dict[int, PaneActivity]:
        passes.append(clock.now_ms())
        return {7: PaneActivity(busy=len(passes) % 2 == 1)}

    sampler = PaneSampler(clock, sample)
    t0 = clock.now_ms()
    assert sampler.current() == {7: PaneActivity(busy=True)}
    clock.advance(PANE_REFRESH_MS - 1)
    assert sampler.current() == {7: PaneActivity(busy=True)} and passes == [t0]
    clock.advance(1)
    assert sampler.current() == {7: PaneActivity(busy=False)} and passes == [t0, t0 + PANE_REFRESH_MS]
    clock.step_back(1)  # a sample from the future is never reused
    assert sampler.current() == {7: PaneActivity(busy=True)} and passes[-1] == t0 + PANE_REFRESH_MS - 1


# The decision ---------------------------------------------------------------------------------------

BUSY, IDLE_PANE = PaneActivity(busy=True), PaneActivity(busy=False)
ROWS: list[tuple[str, LivenessFacts, int, Verdict]] = [
    ("1 exited", LivenessFacts(False, "unknown", 1.0, BUSY, True), 0, Verdict(State.DEAD, Reason.EXITED)),
    (
        "2 pid reused",
        LivenessFacts(True, "reused", 1.0, BUSY, True),
        1,
        Verdict(State.DEAD, Reason.PID_REUSED),
    ),
    (
        "3 at the active window",
        LivenessFacts(True, "ok", 20.0),
        2,
        Verdict(State.ACTIVE, Reason.TRANSCRIPT_FRESH),
    ),
    (
        "3 unknown start is no reason",
        LivenessFacts(True, "unknown", 0.0),
        2,
        Verdict(State.ACTIVE, Reason.TRANSCRIPT_FRESH),
    ),
    (
        "4 S40 pane busy, 5 min",
        LivenessFacts(True, "ok", 300.0, BUSY),
        3,
        Verdict(State.ACTIVE, Reason.PANE_FRESH),
    ),
    (
        "4 at the stall window",
        LivenessFacts(True, "ok", 600.0, BUSY),
        3,
        Verdict(State.ACTIVE, Reason.PANE_FRESH),
    ),
    (
        "5 tool running",
        LivenessFacts(True, "ok", 300.0, IDLE_PANE, True),
        4,
        Verdict(State.ACTIVE, Reason.TOOL_RUNNING),
    ),
    (
        "6 no transcript, pane busy",
        LivenessFacts(True, "ok", None, BUSY, True),
        5,
        Verdict(State.IDLE, Reason.NO_TRANSCRIPT),
    ),
    (
        "7 S40 pane busy, 11 min",
        LivenessFacts(True, "ok", 660.0, BUSY, True),
        6,
        Verdict(State.IDLE, Reason.IDLE),
    ),
    (
        "7 S40 ticking idle pane",
        LivenessFacts(True, "ok", 300.0, IDLE_PANE),
        6,
        Verdict(State.IDLE, Reason.IDLE),
    ),
    ("7 pane not read", LivenessFacts(True, "ok", 21.0, None), 6, Verdict(State.IDLE, Reason.IDLE)),
]


@pytest.mark.parametrize(("spec", "facts", "row", "verdict"), ROWS, ids=[r[0] for r in ROWS])
def test_each_liveness_row_decides_what_the_spec_says(
    spec: str, facts: LivenessFacts, row: int, verdict: Verdict
) -> None:
    applying = [i for i, r in enumerate(LIVENESS) if r.applies(facts, S)]
    assert applying[0] == row and judge(facts, S) == verdict


def test_every_row_is_reached_by_some_case() -> None:
    assert {row for _, _, row, _ in ROWS} == set(range(len(LIVENESS)))


def test_on_the_fake_clock_a_frozen_busy_screen_is_active_until_the_stall_window_then_idle() -> None:
    """S40 over time: the transcript was last written at t0, the screen keeps showing a turn."""
    clock = FakeClock()
    written_s = clock.now_ms() / 1000

    def verdict() -> Verdict:
        age = age_or_skew(clock.now_ms() / 1000, written_s)
        return judge(LivenessFacts(True, "ok", age, read_pane(CLAUDE_BUSY)), S)

    assert verdict() == Verdict(State.ACTIVE, Reason.TRANSCRIPT_FRESH)
    clock.advance(20_001)
    assert verdict() == Verdict(State.ACTIVE, Reason.PANE_FRESH)
    clock.advance(300_000 - 20_001)
    assert verdict() == Verdict(State.ACTIVE, Reason.PANE_FRESH)
    clock.advance(300_000)
    assert verdict() == Verdict(State.ACTIVE, Reason.PANE_FRESH)  # exactly 600 s
    clock.advance(1)
    assert verdict() == Verdict(State.IDLE, Reason.IDLE)


def test_on_the_fake_clock_a_transcript_dated_ahead_is_fresh_within_two_seconds_and_unknown_beyond() -> None:
    clock = FakeClock()
    now_s = clock.now_ms() / 1000
    for ahead_s, verdict in ((2, Reason.TRANSCRIPT_FRESH), (3, Reason.NO_TRANSCRIPT)):
        age = age_or_skew(now_s, now_s + ahead_s)
        assert judge(LivenessFacts(True, "ok", age, BUSY), S).reason is verdict
    clock.advance(3_000)  # the clock catches up with the skewed transcript: fresh, age 0
    assert age_or_skew(clock.now_ms() / 1000, now_s + 3) == 0.0


@given(
    alive=st.booleans(),
    start=st.sampled_from(["ok", "reused", "unknown"]),
    age=st.none() | st.floats(min_value=0, max_value=10_000),
    pane=st.none() | st.builds(PaneActivity, st.booleans()),
    tool=st.booleans(),
)
def test_active_always_has_a_transcript_within_the_stall_window_and_pane_fresh_a_busy_read_pane(
    alive: bool, start: str, age: float | None, pane: PaneActivity | None, tool: bool
) -> None:
    facts = LivenessFacts(alive, start, age, pane, tool)  # type: ignore[arg-type]
    verdict = judge(facts, S)
    if verdict.state is State.ACTIVE:
        assert alive and start != "reused" and age is not None and age <= S.stall_s
    if verdict.reason is Reason.PANE_FRESH:
        assert pane is not None and pane.busy
    assert (verdict.state is State.DEAD) == (not alive or start == "reused")


class StartHost(MemoryHost):
    """A host whose processes have start times."""

    def __init__(self, starts: dict[int, float]) -> None:
        super().__init__()
        self.starts = starts

    def is_alive(self, pid: int, process_start: float | None, host: str | None = None) -> bool:
        running = pid in self.starts and pid not in self.dead
        return running and (process_start is None or self.starts[pid] == process_start)


def test_the_start_check_is_reused_only_for_a_live_pid_with_another_start_time() -> None:
    host = StartHost({7: 1000.5, 8: 2000.0})
    assert start_check(host, entry(7)) == (True, "ok")
    assert start_check(host, entry(8)) == (True, "reused")
    assert start_check(host, entry(8, start=None)) == (True, "unknown")
    assert start_check(host, entry(9)) == (False, "unknown")
