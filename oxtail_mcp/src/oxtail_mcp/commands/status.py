"""``oxtail-mcp status [PROJECT_ROOT] [--watch] [--json]``: who is in this project, and are they reachable?

A person's view of what ``list_project_sessions`` shows an agent, plus what
only the state directory knows: each agent's busy/idle marker and its age,
how much mail waits in its inbox, how many of its asks are still open, and
how the last wake aimed at it went (from ``MCP_TRACE_FILE``, when tracing).
Reading the registry reaps dead servers, exactly as the server itself does.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from oxtail_core import Context, RecordingWaker, SystemClock
from oxtail_core.errors import StoreError
from oxtail_core.ids import canonical_session_id
from oxtail_core.model import RegistryEntry
from oxtail_core.protocols import Store
from oxtail_core.reservations import Reservation, grace_from_env, sweep
from oxtail_core.reserving import live_sessions
from oxtail_core.routing import live_entries, process_inbox, session_inbox
from oxtail_core.settings import Settings
from oxtail_core.wake import is_fresh_busy
from oxtail_fs.project import LocalHost
from oxtail_fs.store import FsStore
from oxtail_mcp.commands.terminal import inert
from oxtail_mcp.home import state_home
from oxtail_mcp.server.ours import project_of

WATCH_INTERVAL_S = 2.0
TRACE_TAIL_BYTES = 4 << 20
"""Only the end of a trace file is read: the last wake per agent is near the end, and traces grow forever."""

COLUMNS = ("CLIENT", "SESSION", "TMUX", "PURPOSE", "ACTIVITY", "INBOX", "ASKS", "LAST WAKE")


@dataclass(frozen=True)
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


def open_asks_by_requester(store: Store) -> Counter[str] | None:
    """Pending asks per asking session, from the Store (None when they cannot be listed)."""
    try:
        return Counter(canonical_session_id(ask.requester) for ask in store.pending_list())
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


def collect(
    ctx: Context,
    root: str,
    *,
    asks: Mapping[str, int] | None = None,
    wakes: Mapping[str, tuple[str, str]] | None = None,
) -> list[Row]:
    """The live agents whose working directory is in ``root``'s project, claimed ones first."""
    now = ctx.clock.now_ms()
    rows = []
    for entry in live_entries(ctx):
        if not ctx.host.same_project(root, entry.client.cwd):
            continue
        sid = canonical_session_id(entry.session_id) if entry.session_id else None
        rows.append(_row(ctx, entry, sid, now, asks=asks, wake=(wakes or {}).get(sid or "")))
    return rows


def _row(
    ctx: Context,
    entry: RegistryEntry,
    sid: str | None,
    now: int,
    *,
    asks: Mapping[str, int] | None,
    wake: tuple[str, str] | None,
) -> Row:
    marker = ctx.store.activity_get(sid) if sid else None
    age = None if marker is None else now - marker.at_ms
    try:
        depth: int | None = ctx.store.depth(session_inbox(sid) if sid else process_inbox(entry))
    except StoreError:
        depth = None
    return Row(
        client=entry.client.type,
        session_id=sid,
        server_pid=entry.server_pid,
        tmux_session=entry.tmux_session,
        purpose=entry.state.purpose if entry.state else None,
        activity=None if marker is None else marker.status,
        activity_age_ms=age,
        activity_stale=marker is not None and marker.status == "busy" and not is_fresh_busy(ctx, entry, now),
        inbox=depth,
        open_asks=None if asks is None else (asks.get(sid, 0) if sid else 0),
        last_wake=wake[0] if wake else None,
        last_wake_at=wake[1] if wake else None,
    )


def age(ms: int | None) -> str:
    """``42s``, ``7m``, ``3h``, ``2d``: coarse on purpose, it is read at a glance."""
    if ms is None:
        return "-"
    seconds = max(ms, 0) // 1000
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _cells(row: Row) -> list[str]:
    activity = "unknown"
    if row.activity is not None:
        activity = f"{row.activity} {age(row.activity_age_ms)}" + (" (stale)" if row.activity_stale else "")
    purpose = row.purpose or "-"
    return [
        row.client,
        row.session_id or f"(unclaimed pid {row.server_pid})",
        row.tmux_session or "-",
        purpose if len(purpose) <= 40 else purpose[:39] + "…",
        activity,
        "?" if row.inbox is None else str(row.inbox),
        "-" if row.open_asks is None else str(row.open_asks),
        row.last_wake or "-",
    ]


_COLORS = {"busy": "\x1b[33m", "idle": "\x1b[32m", "unknown": "\x1b[2m"}


def table(rows: Sequence[Row], root: str, *, color: bool) -> str:
    """Aligned columns; ANSI colours on the activity column only when writing to a terminal."""
    if not rows:
        return f"No live oxtail agents in {inert(root)}."
    cells = [list(COLUMNS), *([inert(cell) for cell in _cells(r)] for r in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = []
    for index, line in enumerate(cells):
        padded = [text.ljust(width) for text, width in zip(line, widths, strict=True)]
        if color and index:
            tint = _COLORS.get(line[4].split(" ")[0], "")
            padded[4] = f"{tint}{padded[4]}\x1b[0m" if tint else padded[4]
        lines.append("  ".join(padded).rstrip())
    return f"oxtail agents in {inert(root)}:\n" + "\n".join(lines)


def as_json(rows: Sequence[Row], root: str, held: Sequence[Reservation] = ()) -> str:
    body: dict[str, object] = {"project": root, "agents": [asdict(r) for r in rows]}
    if held:
        body["reservations"] = [r.view() for r in held]
    return json.dumps(body, indent=2, ensure_ascii=False)


def snapshot(ctx: Context, root: str, home: Path, trace: Path | None) -> list[Row]:
    return collect(ctx, root, asks=open_asks_by_requester(ctx.store), wakes=last_wakes(trace))


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
    env: Mapping[str, str] = os.environ,
    out: IO[str] | None = None,
) -> int:
    """Print the table (or JSON) once, or every two seconds with ``watch`` until Ctrl-C.

    Read-only: with no state directory yet (or a read-only HOME where none can be made) it says
    there are no agents rather than creating one.
    """
    stream = out or sys.stdout
    home = state_home(env)
    trace = Path(env["MCP_TRACE_FILE"]) if env.get("MCP_TRACE_FILE") else None
    if not home.is_dir():
        print(
            f"No oxtail state in {inert(str(home))} yet: no agent has run with this OXTAIL_HOME.", file=stream
        )
        return 0
    try:
        store = FsStore(home)
    except StoreError as exc:
        print(f"oxtail status: {inert(str(exc))}", file=sys.stderr)
        return 1
    ctx = Context(store, RecordingWaker(), SystemClock(), LocalHost(), settings=Settings.from_env(env))
    terminal = stream.isatty()
    try:
        while True:
            rows = snapshot(ctx, root, home, trace)
            held = reservations_held(ctx, root, env)
            text = as_json(rows, root, held) if json_output else table(rows, root, color=terminal)
            if held and not json_output:
                text = f"{text}\n{reservations_table(held)}"
            hint = None if json_output else hooks_hint(rows, env)
            if hint:
                text = f"{text}\n{hint}"
            if not watch:
                print(text, file=stream)
                return 0
            if terminal:
                stream.write("\x1b[H\x1b[2J")  # home + clear: redraw in place
            print(f"{text}\n", file=stream, flush=True)
            time.sleep(WATCH_INTERVAL_S)
    except KeyboardInterrupt:
        return 0


# Reservations (issue 12) ------------------------------------------------------------------------------


def reservations_held(ctx: Context, root: str, env: Mapping[str, str]) -> list[Reservation]:
    """The project's standing reservations, judged without writing (status stays read-only)."""
    try:
        records = ctx.store.reservations_list(project_of(root))
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
