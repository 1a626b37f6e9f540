"""``oxtail-mcp status [PROJECT_ROOT] [--watch] [--json] [--check]``: who is in this project, are they
reachable, and is anything stuck?

A person's view of what ``list_project_sessions`` shows an agent, plus what
only the state directory knows: each agent's busy/idle marker and its age,
how much mail waits in its inbox, its open obligations, its open asks (whom,
since when), and how the last wake aimed at it went (from ``MCP_TRACE_FILE``,
when tracing). Reading the registry reaps dead servers exactly as the server
itself does, which keeps a dead agent's entry while it holds mail or open work
(accounting.md §1.7): such an agent is listed as dead, never hidden, and a live
server of the same session always wins over it. The wait-graph and the problems
``--check`` fails on are :mod:`oxtail_core.waitgraph`'s.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

import attrs

from oxtail_core import Context, RecordingWaker, SystemClock
from oxtail_core.errors import StoreError
from oxtail_core.foreign import is_foreign
from oxtail_core.gates import is_fresh_busy
from oxtail_core.ids import canonical_session_id
from oxtail_core.liveness import PaneActivity
from oxtail_core.model import ActivityMarker, PendingAsk, RegistryEntry
from oxtail_core.protocols import Store
from oxtail_core.reservations import Reservation, grace_from_env, sweep
from oxtail_core.routing import collapse, live_entries, process_inbox, session_inbox, working_dir
from oxtail_core.settings import Settings
from oxtail_core.waitgraph import Agent, Problem, Wait, WaitGraph, problems, wait_graph
from oxtail_fs.host.project import project_id, project_of
from oxtail_mcp import storage
from oxtail_mcp.commands.liveness import Liveness, PanePass, liveness_of, pane_pass
from oxtail_mcp.commands.terminal import inert
from oxtail_mcp.home import state_home

if TYPE_CHECKING:
    from oxtail_mcp.storage import StoreInfo

WATCH_INTERVAL_S = 2.0
TRACE_TAIL_BYTES = 4 << 20
"""Only the end of a trace file is read: the last wake per agent is near the end, and traces grow forever."""
SCHEMA_VERSION = 1
"""Of ``status --json`` (ours, not the reference's shape); bumped when a field changes meaning or goes."""
EXIT_PROBLEMS = 2
"""``--check``: a live deadlock, an orphaned wait, or mail or work stranded on a dead owner."""

COLUMNS = ("CLIENT", "SESSION", "TMUX", "PURPOSE", "STATUS", "ACTIVITY", "INBOX", "ASKS", "LAST WAKE")


@attrs.frozen
class AskView:
    """One open ask of an agent: whom it asked, since when, and whether it still forms a wait (TTL)."""

    peer: str | None
    request_id: str
    since_ms: int
    age_ms: int
    attempts: int
    live: bool


@attrs.frozen
class OwedView:
    """One open obligation an agent owes: to whom (None for an operator or unclaimed sender), since when."""

    requester: str | None
    message_id: str
    since_s: int | None


@attrs.frozen
class Row:
    """One agent (its freshest server) as the status view shows it."""

    client: str
    session_id: str | None
    server_pid: int
    tmux_session: str | None
    purpose: str | None
    activity: str | None  # "busy", "idle", or None when its hooks never wrote a marker
    activity_age_ms: int | None
    activity_stale: bool
    inbox: int | None  # None when the inbox could not be read (lock busy)
    open_asks: int | None  # None when not countable
    last_wake: str | None  # "<wake_status> via <tool>"
    last_wake_at: str | None
    alive: bool = True
    open_work: int | None = 0  # open obligations it owes; None when its ledger could not be read
    asks: tuple[AskView, ...] = ()
    owed: tuple[OwedView, ...] = ()
    # Liveness (selfheal.md §5.2, commands/liveness.py): the core's verdict and the facts behind it
    liveness: str | None = None  # "active", "idle" or "dead"
    liveness_reason: str | None = None
    proc_sig: str | None = None  # the start check: "ok", "reused" or "unknown"
    transcript_age_s: float | None = None
    tool_running: bool = False
    pane_tail: str | None = None  # the working line of a busy pane (terminal views only)
    # Across machines (a shared store): which machine runs it; None on a one-machine store
    host_id: str | None = None
    host_name: str | None = None  # display only: the entry's own word

    @property
    def name(self) -> str:
        """How problem lines and the wait-graph name it: its session id, else ``pid:<n>``."""
        return self.session_id or f"pid:{self.server_pid}"


@attrs.frozen
class Snapshot:
    """Everything one ``status`` shows, read once."""

    rows: tuple[Row, ...]
    graph: WaitGraph
    problems: tuple[Problem, ...]
    generated_at_ms: int


def open_asks_by_requester(store: Store) -> Counter[str] | None:
    """Pending asks per asking session, from the Store (None when they cannot be listed)."""
    asks = pending_asks(store)
    return None if asks is None else Counter(canonical_session_id(ask.requester) for ask in asks)


def pending_asks(store: Store) -> list[PendingAsk] | None:
    try:
        return store.pending_list()
    except StoreError:
        return None


def last_wakes(trace: Path | None) -> dict[str, tuple[str, str]]:
    """The newest ``wake_outcome`` per target session: ``(status via tool, ts)``."""
    if trace is None:
        return {}
    try:
        with trace.open("rb") as f:
            f.seek(max(f.seek(0, os.SEEK_END) - TRACE_TAIL_BYTES, 0))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return {}
    found: dict[str, tuple[str, str]] = {}
    for line in text.split("\n"):
        if '"wake_outcome"' not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        target = record.get("target_session_id") if isinstance(record, dict) else None
        if record.get("event") == "wake_outcome" and isinstance(target, str):
            found[canonical_session_id(target)] = (
                f"{record.get('wake_status')} via {record.get('via')}",
                str(record.get("ts", "")),
            )
    return found


def dead_entries(ctx: Context, live: Sequence[RegistryEntry]) -> list[RegistryEntry]:
    """The entries reaping kept although their server is dead (they hold mail or open work, or a
    store error left them), one per session, minus every session a live server has.

    Re-read after :func:`live_entries` reaped, so what is listed is what stays. The reference's
    entries are its own to account for and are left out.
    """
    live_sids = {canonical_session_id(e.session_id) for e in live if e.session_id}
    dead = [
        e
        for e in ctx.store.registry_entries()
        if not is_foreign(e)
        and not (e.session_id and canonical_session_id(e.session_id) in live_sids)
        and not ctx.host.is_alive(e.server_pid, e.process_start, e.host_id)
    ]
    return collapse(dead)


def collect(
    ctx: Context,
    root: str,
    *,
    asks: Mapping[str, int] | None = None,
    wakes: Mapping[str, tuple[str, str]] | None = None,
    pending: Sequence[PendingAsk] = (),
) -> list[Row]:
    """The agents whose working directory is in ``root``'s project: live ones (claimed first), then
    the dead ones the registry keeps. ``pending`` gives each its open asks."""
    return _collect(ctx, root, live_entries(ctx), asks=asks, wakes=wakes, pending=pending, panes={})[0]


_project_id = functools.lru_cache(maxsize=16)(project_id)
"""``root``'s project id, once per root (one git call) however many remote entries are checked."""


def is_remote(ctx: Context, entry: RegistryEntry) -> bool:
    """The entry runs on another machine of a shared store (its paths and panes mean nothing here)."""
    return entry.host_id is not None and entry.host_id != ctx.host.host_id


def in_root_project(ctx: Context, root: str, entry: RegistryEntry) -> bool:
    """``root``'s project holds the entry: by path on this machine, by project id on another one
    (two clones of one repository, as :func:`oxtail_core.routing.in_project` scopes messaging)."""
    if is_remote(ctx, entry):
        return entry.project_id is not None and entry.project_id == _project_id(root)
    return ctx.host.same_project(root, working_dir(ctx, entry))


def _collect(
    ctx: Context,
    root: str,
    live: Sequence[RegistryEntry],
    *,
    asks: Mapping[str, int] | None,
    wakes: Mapping[str, tuple[str, str]] | None,
    pending: Sequence[PendingAsk],
    panes: Mapping[int, PaneActivity],
    env: Mapping[str, str] = os.environ,
) -> tuple[list[Row], dict[str, bool]]:
    """The rows, and every registered session (any project) mapped to whether it has a live server.
    ``panes``: what a pane pass read (empty: none was made)."""
    now = ctx.clock.now_ms()
    dead = dead_entries(ctx, live)
    known = {canonical_session_id(e.session_id): False for e in dead if e.session_id}
    known.update({canonical_session_id(e.session_id): True for e in live if e.session_id})
    by_owner: dict[str, list[PendingAsk]] = {}
    for ask in pending:
        by_owner.setdefault(canonical_session_id(ask.requester), []).append(ask)
    rows = []
    for alive, entries in ((True, live), (False, dead)):
        for entry in entries:
            if not in_root_project(ctx, root, entry):
                continue
            sid = canonical_session_id(entry.session_id) if entry.session_id else None
            rows.append(
                _row(
                    ctx,
                    entry,
                    sid,
                    now,
                    asks=asks,
                    wake=(wakes or {}).get(sid or ""),
                    alive=alive,
                    pending=by_owner.get(sid, []) if sid else [],
                    life=liveness_of(ctx, entry, panes, env),
                )
            )
    return rows, known


def _row(
    ctx: Context,
    entry: RegistryEntry,
    sid: str | None,
    now: int,
    *,
    asks: Mapping[str, int] | None,
    wake: tuple[str, str] | None,
    alive: bool,
    pending: Sequence[PendingAsk],
    life: Liveness,
) -> Row:
    marker = _marker(ctx.store, sid) if sid else None
    age = None if marker is None else now - marker.at_ms
    try:
        depth: int | None = ctx.store.depth(session_inbox(sid) if sid else process_inbox(entry))
    except StoreError:
        depth = None
    try:
        owed = tuple(
            OwedView(e.from_session_id, e.id, e.enqueued_at)
            for e in (ctx.store.ledger_open(sid) if sid else ())
        )
        work: int | None = len(owed)
    except StoreError:
        owed, work = (), None
    ttl = ctx.settings.pending_ttl_ms
    return Row(
        client=entry.client.type,
        session_id=sid,
        server_pid=entry.server_pid,
        tmux_session=entry.tmux_session,
        purpose=entry.state.purpose if entry.state else None,
        activity=None if marker is None else marker.status,
        activity_age_ms=age,
        activity_stale=marker is not None
        and marker.status == "busy"
        and not is_fresh_busy(marker, now, ctx.settings),
        inbox=depth,
        open_asks=None if asks is None else (asks.get(sid, 0) if sid else 0),
        last_wake=wake[0] if wake else None,
        last_wake_at=wake[1] if wake else None,
        alive=alive,
        open_work=work,
        owed=owed,
        liveness=life.liveness,
        liveness_reason=life.liveness_reason,
        proc_sig=life.proc_sig,
        transcript_age_s=life.transcript_age_s,
        tool_running=life.tool_running,
        pane_tail=life.pane_tail,
        host_id=entry.host_id,
        host_name=entry.host_name,
        asks=tuple(
            AskView(
                peer=canonical_session_id(a.peer) if a.peer else None,
                request_id=a.request_id,
                since_ms=a.at_ms,
                age_ms=now - a.at_ms,
                attempts=a.attempts,
                live=now - a.at_ms < ttl,
            )
            for a in sorted(pending, key=lambda a: (a.at_ms, a.request_id))
        ),
    )


def _marker(store: Store, sid: str) -> ActivityMarker | None:
    """The agent's busy/idle marker, read once per row (None: no hooks, or unreadable)."""
    try:
        return store.activity_get(sid)
    except StoreError:
        return None


def age(ms: int | None) -> str:
    """``42s``, ``7m``, ``3h``, ``2d``: coarse on purpose, it is read at a glance."""
    if ms is None:
        return "-"
    seconds = max(ms, 0) // 1000
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def status_cell(row: Row) -> str:
    """The liveness verdict at a glance (the reference's status column): ``active 12s`` (transcript
    age), ``active ✻`` (a busy pane), ``active ⧖12s`` (a tool running), ``idle 5m``, ``idle·no-tx``,
    ``dead·gone``, ``dead·reused``; ``-`` when not judged."""
    seconds = None if row.transcript_age_s is None else int(row.transcript_age_s * 1000)
    return {
        "transcript_fresh": f"active {age(seconds)}",
        "pane_fresh": "active ✻",
        "tool_running": f"active ⧖{age(seconds)}",
        "no_transcript": "idle·no-tx",
        "idle": f"idle {age(seconds)}",
        "exited": "dead·gone",
        "pid_reused": "dead·reused",
    }.get(row.liveness_reason or "", "-")


def _cells(row: Row) -> list[str]:
    activity = "unknown"
    if row.activity is not None:
        activity = f"{row.activity} {age(row.activity_age_ms)}" + (" (stale)" if row.activity_stale else "")
    if not row.alive:
        activity = "dead"
    purpose = row.purpose or "-"
    return [
        row.client,
        row.session_id or f"(unclaimed pid {row.server_pid})",
        row.tmux_session or "-",
        purpose if len(purpose) <= 40 else purpose[:39] + "…",
        status_cell(row),
        activity,
        ("?" if row.inbox is None else str(row.inbox)) + (f" ⚑{row.open_work}" if row.open_work else ""),
        "-" if row.open_asks is None else str(row.open_asks),
        row.last_wake or "-",
    ]


_COLORS = {"busy": "\x1b[33m", "idle": "\x1b[32m", "unknown": "\x1b[2m", "dead": "\x1b[31m"}


def _host_cell(row: Row) -> str:
    name = row.host_name or "-"
    name = name if len(name) <= 24 else name[:23] + "…"
    return f"{name} ({row.host_id})" if row.host_id else "-"


def table(rows: Sequence[Row], root: str, *, color: bool) -> str:
    """Aligned columns; ANSI colours on the activity column only when writing to a terminal.

    A HOST column (the machine's name and host id) is added, last, only when some agent runs on a
    shared store's machine: on one machine the table is what it always was."""
    if not rows:
        return f"No live oxtail agents in {inert(root)}."
    hosts = any(r.host_id for r in rows)
    header = [*COLUMNS, "HOST"] if hosts else list(COLUMNS)
    rows_cells = [[*_cells(r), _host_cell(r)] if hosts else _cells(r) for r in rows]
    cells = [header, *([inert(cell) for cell in line] for line in rows_cells)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    lines = []
    for index, line in enumerate(cells):
        padded = [text.ljust(width) for text, width in zip(line, widths, strict=True)]
        if color and index:
            tint = _COLORS.get(line[5].split(" ")[0], "")
            padded[5] = f"{tint}{padded[5]}\x1b[0m" if tint else padded[5]
        lines.append("  ".join(padded).rstrip())
    return f"oxtail agents in {inert(root)}:\n" + "\n".join(lines)


def wait_lines(graph: WaitGraph, now_ms: int) -> list[str]:
    """The wait-graph block: one line per wait, marked when it is part of a cycle or orphaned."""
    lines = []
    for w in graph.waits:
        target = w.target or "(unnamed peer)"
        mark = ""
        if w.in_cycle:
            mark = "  [DEADLOCK]" if w.cycle_all_live else "  [stale cycle]"
        if w.orphaned:
            mark += f"  [target {w.target_state}]"
        retries = f", re-poked {w.attempts}x" if w.attempts else ""
        lines.append(inert(f"  {w.waiter} awaits {target} ({age(now_ms - w.since_ms)}{retries}){mark}"))
    return ["Waiting:", *lines] if lines else []


def problem_lines(found: Sequence[Problem]) -> list[str]:
    """``Problems:`` then one line per problem, each naming its agents."""
    return ["Problems:", *(inert(f"  {p.line}") for p in found)] if found else []


_C1 = re.compile("[\x80-\x9f]")


def _escape_c1(text: str) -> str:
    """``json.dumps`` escapes C0 but passes C1 raw; escape those too (``\\u0080``..), so a script that
    prints a field cannot emit a terminal's 8-bit CSI/OSC. Outside strings JSON text is ASCII, so this
    touches string contents only and the document decodes to the same value."""
    return _C1.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _wait_view(w: Wait, now_ms: int) -> dict[str, object]:
    return {**attrs.asdict(w), "orphaned": w.orphaned, "age_ms": now_ms - w.since_ms}


def store_lines(info: StoreInfo) -> str:
    """Where a shared store is (password masked), its team, what its INFO said, and each warning."""
    aof = "on" if info.get("aof_enabled") else "off"
    line = (
        f"store: {info['kind']} {info['where']} · team {info.get('team')} · prefix {info.get('prefix')}"
        f" · aof {aof} · maxmemory-policy {info.get('maxmemory_policy')} (from {info['source']})"
    )
    return "\n".join(inert(text) for text in [line, *(f"⚠ {w}" for w in info.get("warnings", []))])


def as_json(
    snap: Snapshot, root: str, held: Sequence[Reservation] = (), store: StoreInfo | None = None
) -> str:
    """The document of docs/status.md (``schema_version`` 1)."""
    now = snap.generated_at_ms
    agents = []
    for row in snap.rows:
        wait = snap.graph.wait_of(row.session_id) if row.session_id else None
        agents.append({**attrs.asdict(row), "waiting": None if wait is None else _wait_view(wait, now)})
    body: dict[str, object] = {
        "schema_version": SCHEMA_VERSION,
        "generated_at": now // 1000,
        "generated_at_ms": now,
        "project": root,
        "agents": agents,
        "cycles": [attrs.asdict(c) for c in snap.graph.cycles],
        "problems": [attrs.asdict(p) for p in snap.problems],
    }
    if held:
        body["reservations"] = [r.view() for r in held]
    if store is not None:
        body["store"] = dict(store)
    return _escape_c1(json.dumps(body, indent=2, ensure_ascii=False))


def snapshot(
    ctx: Context,
    root: str,
    home: Path,
    trace: Path | None,
    *,
    panes: PanePass | None = None,
    env: Mapping[str, str] = os.environ,
) -> Snapshot:
    """One read of the state: rows, the wait-graph among them, and the problems ``--check`` counts.

    ``panes`` reads the project's live agents' panes for liveness (a terminal view: ``status`` on a
    terminal passes :func:`~oxtail_mcp.commands.liveness.pane_pass`, the cockpit a sampled one);
    without it no pane is read (piped output, S42)."""
    pending = pending_asks(ctx.store)
    asks = None if pending is None else Counter(canonical_session_id(a.requester) for a in pending)
    live = live_entries(ctx)
    read: Mapping[int, PaneActivity] = {}
    if panes is not None:
        read = panes(ctx, [e for e in live if in_root_project(ctx, root, e) and not is_remote(ctx, e)])
    rows, known = _collect(
        ctx, root, live, asks=asks, wakes=last_wakes(trace), pending=pending or (), panes=read, env=env
    )
    now = ctx.clock.now_ms()
    waiters = [r.session_id for r in rows if r.session_id]
    graph = wait_graph(waiters, known, pending or (), now, ctx.settings.pending_ttl_ms)
    holders = [Agent(r.name, r.alive, r.inbox or 0, r.open_work or 0) for r in rows]
    return Snapshot(tuple(rows), graph, tuple(problems(graph, holders)), now)


def hooks_hint(rows: list[Row], env: Mapping[str, str]) -> str | None:
    """The installer's "hooks missing or stale" hint when a Claude Code agent is listed, and the
    "Codex hooks not trusted / never ran" hint when a Codex agent is.

    The server's own hint goes to its stderr, which Claude Code shows only in its
    debug log; the person reading ``status`` is the one who can act on it.
    """
    from oxtail_mcp.hooks import codex
    from oxtail_mcp.hooks.installer import freshness_hint

    clients = {row.client for row in rows}
    hints = [
        freshness_hint(env) if "claude-code" in clients else None,
        codex.hint(env) if "codex" in clients else None,
    ]
    return "\n".join(hint for hint in hints if hint) or None


def show(
    root: str,
    *,
    watch: bool,
    json_output: bool,
    check: bool = False,
    activity: bool = True,
    env: Mapping[str, str] = os.environ,
    out: IO[str] | None = None,
) -> int:
    """Print the table (or JSON) once, or every two seconds with ``watch`` until Ctrl-C.

    Read-only: with no state directory yet (or a read-only HOME where none can be made) it says
    there are no agents rather than creating one. With ``check`` a single view returns
    :data:`EXIT_PROBLEMS` when it lists a problem (0 otherwise); the output is the same.
    """
    stream = out or sys.stdout
    home = state_home(env)
    trace = Path(env["MCP_TRACE_FILE"]) if env.get("MCP_TRACE_FILE") else None
    try:
        choice = storage.choose(env)
    except StoreError as exc:
        print(f"oxtail status: {inert(str(exc))}", file=sys.stderr)
        return 1
    if choice.kind == "fs" and not home.is_dir():
        if json_output:  # a script still gets a document: no agents, no problems
            nothing = Snapshot((), WaitGraph((), ()), (), SystemClock().now_ms())
            print(as_json(nothing, root, store=choice.describe()), file=stream)
        else:
            print(
                f"No oxtail state in {inert(str(home))} yet: no agent has run with this OXTAIL_HOME.",
                file=stream,
            )
        return 0
    try:
        store, info = storage.open_chosen(choice, env)
    except StoreError as exc:
        print(f"oxtail status: {inert(str(exc))}", file=sys.stderr)
        return 1
    host, clock = storage.machine_of(store)  # a shared store judges other machines by their leases
    ctx = Context(store, RecordingWaker(), clock, host, settings=Settings.from_env(env))
    terminal = stream.isatty()
    panes = pane_pass if terminal and activity else None  # a pipe never forks a capture (S42)
    try:
        while True:
            snap = snapshot(ctx, root, home, trace, panes=panes, env=env)
            held = reservations_held(ctx, root, env)
            text = as_json(snap, root, held, info) if json_output else human(snap, root, color=terminal)
            if not json_output and info["kind"] != "fs":
                text = f"{text}\n{store_lines(info)}"
            if held and not json_output:
                text = f"{text}\n{reservations_table(held)}"
            hint = None if json_output else hooks_hint(list(snap.rows), env)
            if hint:
                text = f"{text}\n{hint}"
            if not watch:
                print(text, file=stream)
                return EXIT_PROBLEMS if check and snap.problems else 0
            if terminal:
                stream.write("\x1b[H\x1b[2J")  # home + clear: redraw in place
            print(f"{text}\n", file=stream, flush=True)
            time.sleep(WATCH_INTERVAL_S)
    except KeyboardInterrupt:
        return 0


def human(snap: Snapshot, root: str, *, color: bool) -> str:
    """The table, then the wait-graph and the problems when there are any."""
    extra = [*wait_lines(snap.graph, snap.generated_at_ms), *problem_lines(snap.problems)]
    return "\n".join([table(snap.rows, root, color=color), *extra])


# Reservations (issue 12) ------------------------------------------------------------------------------


def reservations_held(ctx: Context, root: str, env: Mapping[str, str]) -> list[Reservation]:
    """The project's standing reservations, judged without writing (status stays read-only)."""
    try:
        records = ctx.store.reservations_list(project_of(root))
        if not records:
            return []  # the common case: no second registry read, no import of the reserving flows
        from oxtail_core.reserving import live_sessions

        live = live_sessions(ctx.store, ctx.host)
    except StoreError:
        return []
    return sweep(records, ctx.clock.now_ms(), live, grace_from_env(env))


def reservations_table(held: Sequence[Reservation]) -> str:
    """One line per reservation: what, who, until when, why."""
    lines = ["File reservations:"]
    for r in held:
        kind = "exclusive" if r.exclusive else "shared"
        until = time.strftime("%H:%M:%S", time.localtime(r.expires_at / 1000))
        who = f"{r.holder_session_id} ({r.holder_tmux})" if r.holder_tmux else r.holder_session_id
        why = f"  {r.reason}" if r.reason else ""
        lines.append(inert(f"  {r.pattern}  {kind}  {who}  until {until}{why}"))
    return "\n".join(lines)
