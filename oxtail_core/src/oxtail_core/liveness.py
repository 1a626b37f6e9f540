"""Is an agent working right now, idle, or gone: the cockpit's liveness (selfheal.md §5).

Three parts, all pure except :func:`capture_pane` and :func:`capture_fleet` (they drive a
:class:`Waker`) and :class:`PaneSampler` (it reads a :class:`Clock`):

* **Ages that tolerate skew** (§5.1): :func:`age_or_skew` judges a transcript or
  pane timestamp. Up to :data:`SKEW_TOLERANCE_S` in the future is "just now"
  (age 0); further ahead the age is unknown (None), never 0, so a skewed clock
  cannot paint a long-quiet agent active.
* **"Working right now" from the pane's content** (§5.2): :func:`read_pane`
  says busy iff a line of the captured screen contains ``esc to interrupt``,
  which Claude Code and Codex show only while a turn is in flight. tmux's
  activity timestamp is not used for it: any repaint (a dock pane, an idle
  client's ticking "Worked for Ns") advances that. A screen that merely keeps
  changing is therefore *not* working (S40). :func:`capture_pane` reads the
  screen only through a target the waker verified, twice, and discards what
  it read when the two disagree (S41); a capture that failed is unknown,
  which no rule reads as working.
* **The decision** (:data:`LIVENESS`, first match): dead, then transcript-fresh,
  then the pane, then a running tool, then idle. The pane and the tool count
  only while the transcript is at most the stall window old, so a wedged
  process whose screen froze on "esc to interrupt" falls back to idle.

Nothing here gates a wake or a heal: wakes read the hooks' busy/idle marker
(:mod:`oxtail_core.gates`), heals their own records. The working-now signal
feeds what ``oxtail status`` and the cockpit show (selfheal.md §5.2, §7).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Literal

import attrs

from oxtail_core.errors import StoreError
from oxtail_core.ids import same_session_id
from oxtail_core.model import RegistryEntry
from oxtail_core.protocols import Clock, Host, Waker
from oxtail_core.settings import floored_number

SKEW_TOLERANCE_S = 2
"""How far in the future a timestamp may be and still count as "just now" (§5.1)."""

CAPTURE_FLEET_CAP = 16
"""The most panes one ``status`` pass captures (§5.2 "where it runs")."""

PANE_REFRESH_MS = 1_500
"""The cockpit's slow tick: its pane reads are refreshed this often and reused in between (§5.2)."""

TAIL_MAX_CHARS = 120
"""Ours: the longest working line kept for display (the reference clips only when rendering)."""


# Ages ---------------------------------------------------------------------------------------------


def age_or_skew(now_s: float, then_s: float) -> float | None:
    """Seconds since ``then_s``: clamped to 0 up to :data:`SKEW_TOLERANCE_S` ahead, None beyond."""
    age = now_s - then_s
    if age < -SKEW_TOLERANCE_S:
        return None
    return max(0.0, age)


@attrs.frozen
class LivenessSettings:
    """The cockpit's two windows, in whole seconds (the Floor rule; read once, like every ``*_S``)."""

    active_s: int = 20
    """``OXTAIL_OXPIT_ACTIVE_S``: a transcript written this recently means active."""
    stall_s: int = 600
    """``OXTAIL_OXPIT_STALL_S``: past this transcript age neither the pane nor a tool means active."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LivenessSettings:
        return cls(
            active_s=floored_number(env, "OXTAIL_OXPIT_ACTIVE_S", 20),
            stall_s=floored_number(env, "OXTAIL_OXPIT_STALL_S", 600),
        )


# Reading a screen ---------------------------------------------------------------------------------

_IN_FLIGHT = re.compile(r"esc to interrupt", re.IGNORECASE | re.ASCII)  # "ınterrupt" is not it
_SPINNER = re.compile(r"([A-Za-z][A-Za-z'-]*\u2026)\s*(\([^)]*\))")  # Claude: "Gerund… (2m 2s · …)"
_WORKING = re.compile(r"(?:Working|Thinking|Running|Generating|Processing)\b[^()]*\([^)]*\)", re.IGNORECASE)
_SPACES = re.compile(r" {2,}")


@attrs.frozen
class PaneActivity:
    """What one verified capture showed: busy (a turn in flight) and, only when busy, its working line.

    ``tail`` is display-safe: printable ASCII only (every control, escape, bidi,
    wide or combining character dropped), at most :data:`TAIL_MAX_CHARS`.
    """

    busy: bool
    tail: str | None = None


def screen_lines(text: str) -> list[str]:
    """The screen's lines, right-trimmed, empty ones dropped (§5.2)."""
    return [stripped for line in text.split("\n") if (stripped := line.rstrip(" \t\r"))]


def display_safe(text: str) -> str:
    """``text`` reduced to printable ASCII, runs of spaces collapsed, trimmed and bounded.

    Stricter than the reference's allow-list (ours): the glyphs it allows are
    spinner frames, which are never part of a working line anyway.
    """
    kept = "".join(ch for ch in text if " " <= ch <= "~")
    return _SPACES.sub(" ", kept).strip()[:TAIL_MAX_CHARS]


def _working_line(lines: Sequence[str]) -> str | None:
    """The spinner or working line nearest the bottom (the status line below it is chrome)."""
    for line in reversed(lines):
        spinner = _SPINNER.search(line)
        if spinner:
            return f"{spinner.group(1)} {spinner.group(2)}"
        working = _WORKING.search(line)
        if working:
            return working.group(0)
    return None


def read_pane(text: str) -> PaneActivity:
    """Busy iff some line shows ``esc to interrupt``; the working line is looked for only then, so an
    idle screen's leftover "Working (…)" text never passes for live activity."""
    lines = screen_lines(text)
    if not any(_IN_FLIGHT.search(line) for line in lines):
        return PaneActivity(busy=False)
    raw = _working_line(lines)
    tail = display_safe(raw) if raw is not None else ""
    return PaneActivity(busy=True, tail=tail or None)


# Capturing safely ---------------------------------------------------------------------------------


class Capture(enum.Enum):
    """How a capture attempt ended; only ``READ`` carries an activity."""

    READ = "read"
    REFUSED = "refused"  # pane-less, or no start time: its identity cannot be checked (§5.2 safety)
    GONE = "gone"  # the incarnation is no longer in the registry (or the registry could not be read)
    UNVERIFIED = "unverified"  # the waker found no pane that provably hosts it
    FAILED = "failed"  # the pane could not be read: unknown, never working
    DISCARDED = "discarded"  # re-verified after the read, it no longer holds (S41)


@attrs.frozen
class PaneRead:
    """One attempt: its outcome and, when read, what the pane showed."""

    outcome: Capture
    activity: PaneActivity | None = None

    @property
    def busy(self) -> bool:
        """Working right now: read, and busy. Every other outcome is unknown, which is not busy."""
        return self.activity is not None and self.activity.busy


def _same_incarnation(a: RegistryEntry, b: RegistryEntry) -> bool:
    return (a.server_pid, a.started_at, a.process_start, a.session_id) == (
        b.server_pid,
        b.started_at,
        b.process_start,
        b.session_id,
    )


def _verified_target(
    entry: RegistryEntry, read: Callable[[], Sequence[RegistryEntry]], waker: Waker
) -> str | Capture:
    """The pane hosting ``entry``'s incarnation as a fresh registry read has it, located by the waker."""
    try:
        fresh = next((e for e in read() if _same_incarnation(e, entry)), None)
    except StoreError:
        return Capture.GONE
    if fresh is None:
        return Capture.GONE
    return waker.locate(fresh) or Capture.UNVERIFIED


def capture_pane(entry: RegistryEntry, read: Callable[[], Sequence[RegistryEntry]], waker: Waker) -> PaneRead:
    """Read ``entry``'s pane through the waker, only where it provably runs (selfheal.md §5.2 safety).

    ``read`` is a passive registry read (``Store.registry_entries``: it never
    reaps), and must read afresh at every call: a cached list would hide a
    change between the two looks (S41). The entry is looked up again in it (same pid, start time, join
    time and session), located by the waker (the live process tree, never the
    entry's ``tmux_pane``), read, then looked up and located once more: a
    different answer discards what was read. An entry without a start time is
    refused outright; a missed capture costs nothing, a wrong one would show a
    stranger's terminal as this agent.
    """
    if not entry.tmux_pane or entry.process_start is None:
        return PaneRead(Capture.REFUSED)
    target = _verified_target(entry, read, waker)
    if isinstance(target, Capture):
        return PaneRead(target)
    text = waker.capture(target)
    if text is None:
        return PaneRead(Capture.FAILED)
    if _verified_target(entry, read, waker) != target:
        return PaneRead(Capture.DISCARDED)
    return PaneRead(Capture.READ, read_pane(text))


def capture_fleet(
    entries: Iterable[RegistryEntry],
    read: Callable[[], Sequence[RegistryEntry]],
    waker: Waker,
    host: Host,
    self_session: str | None,
) -> dict[int, PaneActivity]:
    """Capture the panes of a status pass: ``{server_pid: activity}`` for every pane that was read.

    Skipped without a capture: dead agents, the caller's own session (its own
    screen), pane-less agents. At most :data:`CAPTURE_FLEET_CAP` attempts;
    the rest are not captured (not busy).
    """
    read_panes: dict[int, PaneActivity] = {}
    attempts = 0
    for entry in entries:
        if not entry.tmux_pane or same_session_id(entry.session_id, self_session):
            continue
        if not host.is_alive(entry.server_pid, entry.process_start, entry.host_id):
            continue
        if attempts >= CAPTURE_FLEET_CAP:
            break
        attempts += 1
        result = capture_pane(entry, read, waker)
        if result.activity is not None:
            read_panes[entry.server_pid] = result.activity
    return read_panes


class PaneSampler:
    """A cockpit's pane reads: taken again once :data:`PANE_REFRESH_MS` has passed, reused in between.

    ``sample`` is a fleet pass (:func:`capture_fleet` over the cockpit's
    current rows). A clock that stepped back refreshes at once: a sample
    from "the future" is never reused.
    """

    def __init__(
        self, clock: Clock, sample: Callable[[], dict[int, PaneActivity]], every_ms: int = PANE_REFRESH_MS
    ) -> None:
        self._clock = clock
        self._sample = sample
        self._every_ms = every_ms
        self._at: int | None = None
        self._panes: dict[int, PaneActivity] = {}

    def current(self) -> dict[int, PaneActivity]:
        now = self._clock.now_ms()
        if self._at is None or not 0 <= now - self._at < self._every_ms:
            self._panes, self._at = self._sample(), now
        return self._panes


# The decision -------------------------------------------------------------------------------------

StartCheck = Literal["ok", "reused", "unknown"]
"""The ``proc_sig`` field of ``status --json``: the registered start time against the live process's."""


def start_check(host: Host, entry: RegistryEntry) -> tuple[bool, StartCheck]:
    """(pid alive, start check). ``reused`` only when the pid runs with a different start time."""
    if not host.is_alive(entry.server_pid, None, entry.host_id):
        return False, "unknown"
    if entry.process_start is None:
        return True, "unknown"
    return True, ("ok" if host.is_alive(entry.server_pid, entry.process_start, entry.host_id) else "reused")


class State(enum.Enum):
    ACTIVE = "active"
    IDLE = "idle"
    DEAD = "dead"


class Reason(enum.Enum):
    EXITED = "exited"
    PID_REUSED = "pid_reused"
    TRANSCRIPT_FRESH = "transcript_fresh"
    PANE_FRESH = "pane_fresh"
    TOOL_RUNNING = "tool_running"
    NO_TRANSCRIPT = "no_transcript"
    IDLE = "idle"


@attrs.frozen
class LivenessFacts:
    """What one agent's liveness is judged on. ``transcript_age_s`` comes from :func:`age_or_skew`
    (None: no transcript, or one dated too far ahead); ``pane`` is None when it was not read."""

    alive: bool
    start: StartCheck
    transcript_age_s: float | None
    pane: PaneActivity | None = None
    tool_running: bool = False


@attrs.frozen
class Verdict:
    state: State
    reason: Reason


@attrs.frozen
class Row:
    """One row of :data:`LIVENESS`: when ``applies``, the verdict is ``then``."""

    spec: str
    applies: Callable[[LivenessFacts, LivenessSettings], bool]
    then: Verdict


def _within_stall(f: LivenessFacts, s: LivenessSettings) -> bool:
    return f.transcript_age_s is not None and f.transcript_age_s <= s.stall_s


LIVENESS: tuple[Row, ...] = (
    Row("§5.2 1: pid not alive", lambda f, s: not f.alive, Verdict(State.DEAD, Reason.EXITED)),
    Row(
        "§5.2 2: start time positively different",
        lambda f, s: f.start == "reused",
        Verdict(State.DEAD, Reason.PID_REUSED),
    ),
    Row(
        "§5.2 3: transcript within the active window",
        lambda f, s: f.transcript_age_s is not None and f.transcript_age_s <= s.active_s,
        Verdict(State.ACTIVE, Reason.TRANSCRIPT_FRESH),
    ),
    Row(
        "§5.2 4, S40: the pane shows a turn in flight, transcript within the stall window",
        lambda f, s: f.pane is not None and f.pane.busy and _within_stall(f, s),
        Verdict(State.ACTIVE, Reason.PANE_FRESH),
    ),
    Row(
        "§5.2 5: a tool call without a result yet, transcript within the stall window",
        lambda f, s: f.tool_running and _within_stall(f, s),
        Verdict(State.ACTIVE, Reason.TOOL_RUNNING),
    ),
    Row(
        "§5.2 6: no transcript age",
        lambda f, s: f.transcript_age_s is None,
        Verdict(State.IDLE, Reason.NO_TRANSCRIPT),
    ),
    Row("§5.2 7", lambda f, s: True, Verdict(State.IDLE, Reason.IDLE)),
)
"""An agent's liveness, first match (selfheal.md §5.2 "Liveness decision"). A pane that was not
read, or whose capture failed or was discarded, is no fact for row 4: unknown never means working."""


def judge(facts: LivenessFacts, settings: LivenessSettings) -> Verdict:
    """The verdict of the first row of :data:`LIVENESS` that applies (its last row always does)."""
    return next(row.then for row in LIVENESS if row.applies(facts, settings))


# The cockpit's label: the verdict, refined by the hooks' marker ------------------------------------

STALLED_IDLE_MS = 60_000
"""Idle this long with mail waiting: a wake that landed would have brought it back by now."""

Label = Literal["dead", "working", "stalled", "idle", "unknown"]


def label(
    *,
    alive: bool,
    verdict: str | None,
    marker: str | None,
    marker_stale: bool,
    marker_age_ms: int | None,
    inbox: int | None,
) -> Label:
    """How a person reads one agent at a glance (first match):

    =============  ==========================================================================
    ``dead``       no live server of its session, or the verdict is dead
    ``working``    the verdict is active (a fresh transcript, a busy pane, a running tool)
    ``stalled``    its hooks said busy longer ago than the busy TTL (a wedged turn), or idle
                   for :data:`STALLED_IDLE_MS` with unread mail (a wake it never got)
    ``working``    a fresh busy marker: a turn is in flight
    ``idle``       an idle marker
    ``unknown``    no marker: its client runs no hooks (or has not yet), nothing shows it active
    =============  ==========================================================================
    """
    if not alive or verdict == "dead":
        return "dead"
    if verdict == "active":
        return "working"
    if marker == "busy":
        return "stalled" if marker_stale else "working"
    if marker == "idle":
        waited = (marker_age_ms or 0) >= STALLED_IDLE_MS
        return "stalled" if waited and inbox else "idle"
    return "unknown"
