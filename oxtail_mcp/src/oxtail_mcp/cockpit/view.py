"""What the cockpit says about a snapshot, as plain text: pure functions of :mod:`..commands.status`'s
rows and :mod:`oxtail_core.waitgraph`'s graph, so they are tested without a terminal.

Nothing here decides a core rule: who waits on whom, which cycle is a deadlock and what is stranded
come from the wait-graph and its problems, and an agent's label (working, idle, stalled, dead,
unknown) from :func:`oxtail_core.liveness.label`.

Every string that came from a peer (session ids, tmux names, purposes, bodies) passes through
:func:`~oxtail_mcp.commands.terminal.inert` here, before any widget sees it; the widgets then show
it as plain text, never as markup.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence

from oxtail_core.liveness import label
from oxtail_core.waitgraph import DEADLOCK, ORPHANED_WAIT, Wait
from oxtail_mcp.cockpit.comms import Comm
from oxtail_mcp.commands.status import Row, Snapshot, age
from oxtail_mcp.commands.terminal import inert

SHORT = 8
BODY_PREVIEW_CHARS = 120

GLYPHS: Mapping[str, str] = {"working": "🟢", "idle": "🟡", "stalled": "🟠", "dead": "⚫", "unknown": "⚪"}


def liveness(row: Row) -> str:
    """The core's label for ``row`` (:func:`oxtail_core.liveness.label`)."""
    return label(
        alive=row.alive,
        verdict=row.liveness,
        marker=row.activity,
        marker_stale=row.activity_stale,
        marker_age_ms=row.activity_age_ms,
        inbox=row.inbox,
    )


def key_of(row: Row) -> str:
    """The identity a selection sticks to across refreshes (never a row index)."""
    return row.session_id or f"pid:{row.server_pid}"


def labels(rows: Iterable[Row]) -> dict[str, str]:
    """Each agent's short name: the first 8 characters of its session id (the whole id where two would
    collide), or ``pid:<n>``; keyed by :func:`key_of`; inert."""
    keys = [key_of(r) for r in rows]
    short = {k: k if k.startswith("pid:") else k[:SHORT] for k in keys}
    counts: dict[str, int] = {}
    for s in short.values():
        counts[s] = counts.get(s, 0) + 1
    return {k: inert(short[k] if counts[short[k]] == 1 else k) for k in keys}


def name(session_id: str | None, names: Mapping[str, str]) -> str:
    """How the cockpit names a session it may or may not list (a waiter's target can be gone)."""
    if session_id is None:
        return "?"
    return names.get(session_id) or inert(session_id[:SHORT])


def wait_badge(wait: Wait | None, names: Mapping[str, str], now_ms: int) -> str:
    """§8.2's precedence: ``⛔DEADLOCK <t>`` > ``⚠cycle? <t>`` > ``⛔<t>†`` (orphaned) >
    ``⏳<t> <age>[ ↻<n>]``."""
    if wait is None:
        return ""
    target = name(wait.target, names)
    if wait.in_cycle:
        return f"⛔DEADLOCK {target}" if wait.cycle_all_live else f"⚠cycle? {target}"
    if wait.orphaned:
        return f"⛔{target}†"
    retries = f" ↻{wait.attempts}" if wait.attempts else ""
    return f"⏳{target} {age(now_ms - wait.since_ms)}{retries}"


def cells(row: Row, snap: Snapshot, names: Mapping[str, str]) -> tuple[str, ...]:
    """One table row: agent, client, liveness, inbox, work owed, wait, tmux, purpose."""
    state = liveness(row)
    when = "" if row.activity_age_ms is None or state == "dead" else f" {age(row.activity_age_ms)}"
    wait = snap.graph.wait_of(row.session_id) if row.session_id else None
    inbox = "?" if row.inbox is None else str(row.inbox)
    work = "?" if row.open_work is None else (f"⚑{row.open_work}" if row.open_work else "")
    purpose = inert((row.purpose or "").split("\n")[0])
    return (
        f"{GLYPHS[state]} {names[key_of(row)]}",
        inert(row.client),
        state + when,
        f"✉{inbox}" if row.inbox != 0 else "",
        work,
        wait_badge(wait, names, snap.generated_at_ms),
        inert(row.tmux_session or "-"),
        purpose if len(purpose) <= 60 else purpose[:59] + "…",
    )


COLUMNS = ("AGENT", "CLIENT", "LIVENESS", "INBOX", "OWES", "WAITING ON", "TMUX", "PURPOSE")
LIVENESS_STYLES: Mapping[str, str] = {"dead": "dim", "stalled": "yellow", "working": "green"}
BADGE_STYLES: Mapping[str, str] = {"⛔": "bold red", "⚠": "yellow"}
"""A wait badge's style by its first glyph: a deadlock or an orphaned wait is an alarm."""


def cell_styles(row: Row, cells: Sequence[str]) -> list[str]:
    """The Rich style of each of :func:`cells`: a dead agent is dimmed, liveness and alarms coloured."""
    state = liveness(row)
    styles = ["dim" if state == "dead" else ""] * len(cells)
    styles[2] = LIVENESS_STYLES.get(state, "")
    styles[5] = BADGE_STYLES.get(cells[5][:1], styles[5])
    return styles


def header(snap: Snapshot, root: str) -> str:
    """``oxtail cockpit  <project>  <n> agents (<k> working)``."""
    working = sum(1 for r in snap.rows if liveness(r) == "working")
    n = len(snap.rows)
    project = inert(root.rstrip("/").rsplit("/", 1)[-1] or root)
    return f"oxtail cockpit  {project}  {n} agent{'' if n == 1 else 's'} ({working} working)"


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def attention(snap: Snapshot) -> str:
    """The one-line summary of what needs a person (§7.1's order), or that nothing does."""
    kinds = [p.kind for p in snap.problems]
    dead = [r for r in snap.rows if not r.alive]
    stale_cycles = sum(1 for c in snap.graph.cycles if not c.all_live)
    stalled = sum(1 for r in snap.rows if liveness(r) == "stalled")
    segments = [
        (kinds.count(DEADLOCK), f"⛔ {_plural(kinds.count(DEADLOCK), 'live deadlock')}"),
        (kinds.count(ORPHANED_WAIT), f"⛔ {_plural(kinds.count(ORPHANED_WAIT), 'orphaned wait')}"),
        (
            sum(r.open_work or 0 for r in dead),
            f"⚑ {sum(r.open_work or 0 for r in dead)} stranded work (dead owner)",
        ),
        (sum(r.inbox or 0 for r in dead), f"✉ {sum(r.inbox or 0 for r in dead)} stranded mail (dead owner)"),
        (stale_cycles, f"⚠ {_plural(stale_cycles, 'possible cycle')}"),
        (stalled, f"⚠ {stalled} possibly stalled"),
    ]
    shown = [text for count, text in segments if count]
    if shown:
        return "attention: " + " · ".join(shown)
    if not snap.rows:
        return "no agents registered in this project"
    working = sum(1 for r in snap.rows if liveness(r) == "working")
    return f"✓ fleet nominal · {working} working"


def wait_lines(snap: Snapshot, names: Mapping[str, str]) -> list[tuple[str, str]]:
    """§8.2's wait-graph block as ``(severity, text)``: ``error`` lines (deadlocks, orphaned waits),
    ``warning`` (stale cycles), ``info`` (ordinary waits)."""
    now = snap.generated_at_ms
    lines: list[tuple[str, str]] = []
    for cycle in snap.graph.cycles:
        chain = " → ".join(name(m, names) for m in (*cycle.members, cycle.members[0]))
        if cycle.all_live:
            lines.append(("error", f"⛔ DEADLOCK: {chain}"))
        else:
            lines.append(("warning", f"⚠ possible wait cycle (stale): {chain}"))
    for w in snap.graph.waits:
        if w.in_cycle:
            continue
        who = name(w.waiter, names)
        since = age(now - w.since_ms) + (f", re-poked {w.attempts}×" if w.attempts else "")
        if w.target is None:
            lines.append(("info", f"⏳ {who} awaiting reply ({since}, peer unresolved)"))
        elif w.orphaned:
            target = name(w.target, names)
            lines.append(
                ("error", f"⛔ {who} awaiting reply from {target} ({since}) — target is {w.target_state}")
            )
        else:
            lines.append(("info", f"⏳ {who} awaiting reply from {name(w.target, names)} ({since})"))
    return lines


def details(row: Row, names: Mapping[str, str], now_ms: int) -> list[str]:
    """The selected agent: identity, its open asks (whom, since when) and what it owes (to whom, since)."""
    lines = [
        inert(f"{row.session_id or '(unclaimed)'}  pid {row.server_pid}  {row.client}"),
        "purpose: " + (inert(row.purpose) if row.purpose else "-"),
    ]
    if row.last_wake:
        lines.append(inert(f"last wake: {row.last_wake} at {row.last_wake_at}"))
    for ask in row.asks:
        retries = f", re-poked {ask.attempts}×" if ask.attempts else ""
        expired = "" if ask.live else " (past its TTL: no longer a wait)"
        lines.append(f"asked {name(ask.peer, names)} {age(ask.age_ms)} ago{retries}{expired}")
    for owed in row.owed:
        since = "" if owed.since_s is None else f" since {age(now_ms - owed.since_s * 1000)}"
        lines.append(
            f"owes {name(owed.requester, names) if owed.requester else 'the operator'} a result{since}"
        )
    if not row.asks and not row.owed:
        lines.append("no open asks, owes nothing")
    return lines


def preview(body: str) -> str:
    """A message body's first line, inert and cut to :data:`BODY_PREVIEW_CHARS`."""
    first = body.strip().split("\n", 1)[0]
    text = inert(first)
    return text if len(text) <= BODY_PREVIEW_CHARS else text[: BODY_PREVIEW_CHARS - 1] + "…"


def rows_by_key(rows: Sequence[Row]) -> dict[str, Row]:
    """The rows by the identity a selection sticks to."""
    return {key_of(r): r for r in rows}


def comm_line(comm: Comm, names: Mapping[str, str]) -> str:
    """``HH:MM:SS  <from> → <to>  [tags]  <first line>``; the operator's as ``operator ⇒ <to>``."""
    when = time.strftime("%H:%M:%S", time.localtime(comm.at_s))
    sender = "operator" if comm.operator else name(comm.sender, names) if comm.sender else "(unclaimed)"
    arrow = "⇒" if comm.operator else "→"
    tags = [
        tag
        for tag, on in (
            ("⚑", comm.action_required),
            ("ask", comm.asked and not comm.action_required),
            ("reply", comm.reply),
            (f"[{comm.closed}]", comm.closed is not None),
        )
        if on
    ]
    tagged = f" {' '.join(tags)}" if tags else ""
    return f"{when}  {sender} {arrow} {name(comm.receiver, names)}{tagged}  {preview(comm.body)}"
