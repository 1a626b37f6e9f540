"""The ``hook-drop`` detection strategy: adopt the SessionStart drop of the client above us (selfheal §3.2).

The SessionStart hook (:mod:`oxtail_mcp.hooks.sessionstart`) leaves one drop
per session under ``<state>/session-starts/``. A drop is *ours* when its client
process -- pid and kernel start time -- is one of our ancestors: the host ran
the hook and started us. Start times are numbers read from ``/proc``, compared
within the clock-tick tolerance, so the ``ps lstart`` text bugs of the reference
(day padding, locale, time zone; §3.3, S23) cannot occur. A drop without a start
time (the reference's hook, or a host whose process could not be read) can only
win by the unconfirmed "sole fresh drop" rule.

| drops for our cwd (after realpath, one per session id) | outcome |
|---|---|
| none | abstain (retries scheduled) |
| confirmed ones, all by one client process | hit ``high``: the newest (``/clear`` starts a new one) |
| confirmed ones by several client processes, or a tie | abstain: ambiguous |
| none confirmed, one drop, written > 2 min before we started | abstain: a dead session's leftover |
| none confirmed, one drop, we started < 10 s ago | abstain: wait for our own drop |
| none confirmed, one drop, otherwise | hit, confidence ``medium`` |
| none confirmed, several drops | structural abstain |

A drop of another host type (a Codex drop seen by a Claude Code server) is not a
candidate. Reading is bounded (the newest :data:`MAX_DROPS` files, by mtime, of
at most :data:`MAX_DROP_BYTES` each, opened without following links); drops
written over 30 days ago are deleted as they are read; a drop with
``written_at`` 0 is never fresh and never pruned (S29).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

from oxtail_core.ids import canonical_session_id
from oxtail_fs.host import proctree
from oxtail_mcp.hooks.sessionstart import DROP_DIR, DROP_SCHEMA
from oxtail_mcp.transcripts.files import is_transcript_session_id

MAX_DROPS = 512
MAX_DROP_BYTES = 64 << 10
PRUNE_AGE_MS = 30 * 86_400_000
STALE_BEFORE_START_MS = 120_000
FRESH_WAIT_MS = 10_000
MAX_ANCESTORS = 8

REASON_NO_DROP = (
    "no SessionStart drop for this cwd — sessionstart.sh hook not installed, or it hasn't fired yet "
    "(retries scheduled)."
)
REASON_LEFTOVER = (
    "one SessionStart drop for this cwd, but it predates this server's start by >2min and isn't "
    "ancestry-confirmed — likely a dead session's leftover; not adopting. If this session is live, its own "
    "drop appears shortly (retries scheduled) or call claim_session."
)
REASON_TOO_EARLY = (
    "one fresh unconfirmed SessionStart drop, but this server started <10s ago — waiting for this "
    "session's own drop to land before trusting a sole match (retries scheduled)."
)
REASON_UNKNOWN = "client type unknown — no SessionStart drop to match."


def reason_ambiguous(count: int) -> str:
    return f"{count} ancestor-confirmed drops for this cwd — ambiguous; call claim_session."


def reason_unmatched(count: int) -> str:
    return (
        f"{count} SessionStart drops for this cwd and none ancestry-confirmed — multiple sessions share this "
        "project and the host process can't be matched; call claim_session."
    )


@attrs.frozen
class Drop:
    """One valid drop: the session it names, where, and which client process wrote it."""

    session_id: str
    cwd: str
    client: str
    client_pid: int | None
    client_start: float | None
    written_at: float


Ancestor = tuple[int, float | None]
"""``(pid, start time)`` of one of our ancestors, nearest first."""


def live_ancestors(pid: int | None = None) -> list[Ancestor]:
    """Our parent chain with start times, nearest first: at most 8 entries, stopping at pid ≤ 1."""
    start = os.getppid() if pid is None else pid
    return [(p, proctree.process_start(p)) for p in list(proctree.ancestry(start))[:MAX_ANCESTORS]]


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def parse_drop(data: bytes) -> Drop | None:
    """The drop in ``data``, or None unless it is a schema-1 object whose payload names a session.

    Written by us or by the reference's ``sessionstart.sh`` (no ``client``, no
    ``client_start``: a Claude Code drop that cannot be confirmed).
    """
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(value, dict) or value.get("schema_version") != DROP_SCHEMA:
        return None
    payload = value.get("payload")
    if not isinstance(payload, dict):
        return None
    sid, cwd = payload.get("session_id"), payload.get("cwd")
    if not isinstance(sid, str) or not is_transcript_session_id(sid) or not isinstance(cwd, str) or not cwd:
        return None
    client = value.get("client", "claude-code")
    pid = value.get("ppid")
    return Drop(
        session_id=canonical_session_id(sid),
        cwd=cwd,
        client=client if isinstance(client, str) else "",
        client_pid=pid if isinstance(pid, int) and not isinstance(pid, bool) and pid > 1 else None,
        client_start=_number(value.get("client_start")),
        written_at=_number(value.get("written_at")) or 0.0,
    )


def _read_bounded(path: Path) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as f:
            data = f.read(MAX_DROP_BYTES + 1)
    except OSError:
        return None
    return data if len(data) <= MAX_DROP_BYTES else None


def _newest_files(directory: Path, now_ms: int) -> list[str]:
    """Names of the regular files in ``directory`` (dot-temps skipped), newest first, at most
    :data:`MAX_DROPS`; a file past the cap whose mtime is over 30 days old is deleted."""
    try:
        with os.scandir(directory) as scan:
            found = []
            for entry in scan:
                with contextlib.suppress(OSError):
                    if not entry.name.startswith(".") and entry.is_file(follow_symlinks=False):
                        found.append((entry.stat(follow_symlinks=False).st_mtime, entry.name))
    except OSError:
        return []
    found.sort(reverse=True)
    for mtime, name in found[MAX_DROPS:]:
        if now_ms - mtime * 1000 > PRUNE_AGE_MS:
            with contextlib.suppress(OSError):
                os.unlink(directory / name)
    return [name for _, name in found[:MAX_DROPS]]


def read_drops(state_dir: Path, now_ms: int) -> list[Drop]:
    """Every valid drop among the newest :data:`MAX_DROPS` files, pruning those written over 30 days ago."""
    directory = state_dir / DROP_DIR
    drops = []
    for name in _newest_files(directory, now_ms):
        data = _read_bounded(directory / name)
        drop = parse_drop(data) if data is not None else None
        if drop is None:
            continue
        if drop.written_at > 0 and now_ms - drop.written_at * 1000 > PRUNE_AGE_MS:
            with contextlib.suppress(OSError):
                os.unlink(directory / name)
            continue
        drops.append(drop)
    return drops


def _real(path: str) -> str:
    try:
        return os.path.realpath(path, strict=True)
    except (OSError, ValueError):
        return path


def confirmed(drop: Drop, ancestors: Sequence[Ancestor]) -> bool:
    """The drop's client process is one of ``ancestors``: same pid, same start time."""
    if drop.client_pid is None or drop.client_start is None:
        return False
    return any(
        pid == drop.client_pid
        and start is not None
        and abs(start - drop.client_start) <= proctree.START_TOLERANCE_S
        for pid, start in ancestors
    )


@attrs.frozen
class Adoption:
    """What the strategy decided: the session adopted (with its confidence), or why not."""

    session_id: str | None
    confidence: str | None
    reason: str | None
    structural: bool = False


def adopt(
    client_type: str,
    cwd: str,
    *,
    started_at: int,
    state_dir: Path,
    now_ms: int,
    ancestors: Callable[[], Sequence[Ancestor]] = live_ancestors,
) -> Adoption:
    """Apply the adoption rule to the drops for ``cwd`` (see the module table)."""
    if client_type not in ("claude-code", "codex"):
        return Adoption(None, None, REASON_UNKNOWN, structural=True)
    here = _real(cwd)
    by_session: dict[str, Drop] = {}
    for drop in read_drops(state_dir, now_ms):
        if drop.client == client_type and _real(drop.cwd) == here:
            held = by_session.get(drop.session_id)
            if held is None or (held.client_start is None and drop.client_start is not None):
                by_session[drop.session_id] = drop  # the reference's and our hook for one session: one
    candidates = list(by_session.values())
    if not candidates:
        return Adoption(None, None, REASON_NO_DROP)
    chain = ancestors()
    sure = sorted((drop for drop in candidates if confirmed(drop, chain)), key=lambda d: d.written_at)
    if sure:
        newest = sure[-1]
        one_process = len({(d.client_pid, d.client_start) for d in sure}) == 1
        if one_process and (len(sure) == 1 or sure[-2].written_at < newest.written_at):
            return Adoption(newest.session_id, "high", None)
        return Adoption(None, None, reason_ambiguous(len(sure)))
    if len(candidates) == 1:
        only = candidates[0]
        if only.written_at * 1000 < started_at * 1000 - STALE_BEFORE_START_MS:
            return Adoption(None, None, REASON_LEFTOVER)
        if now_ms - started_at * 1000 < FRESH_WAIT_MS:
            return Adoption(None, None, REASON_TOO_EARLY)
        return Adoption(only.session_id, "medium", None)
    return Adoption(None, None, reason_unmatched(len(candidates)), structural=True)
