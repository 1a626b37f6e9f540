"""Sticky claims: a restarted MCP child re-adopts the session id its predecessor claimed.

Hosts restart MCP children (and Codex strips its thread id from their
environment), and birth-time detection cannot help because the transcript
predates the new child. So every explicit claim is written down together with
the claimant's process ancestry; a new child in the same cwd whose ancestry
shares a host process (same pid *and* same start time, so a recycled pid never
matches) takes the id back. When two records are equally good the child
abstains: guessing wrong would merge two agents' identities.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import attrs

from oxtail_core.errors import StoreError
from oxtail_core.ids import hash32
from oxtail_core.model import SCHEMA_VERSION, ClientInfo
from oxtail_core.trace import NullTracer, Tracer, safe_emit
from oxtail_core.wire import utf8
from oxtail_fs.atomic import read_bounded, write_atomic
from oxtail_fs.layout import Layout

CLAIM_TTL_MS = 14 * 86_400_000
CLAIM_MAX_BYTES = 64 << 10
MAX_ANCESTORS = 8
PS_ARGV = ("ps", "-A", "-o", "pid=,ppid=,lstart=")
PS_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Ancestor:
    """One process above the server: its pid and its start signature (``lstart`` text, "" if unknown)."""

    pid: int
    sig: str


@dataclass(frozen=True)
class ClaimRecord:
    """A persisted explicit claim, as stored in ``claims/<key>.json``."""

    client_type: str
    cwd: str
    ancestors: tuple[Ancestor, ...]
    session_id: str
    transcript_path: str | None
    claimed_at: float
    server_pid: int

    @property
    def key(self) -> str:
        """The record's file stem (see :func:`claim_key`)."""
        return claim_key(self.client_type, self.cwd, self.session_id)

    def as_dict(self) -> dict[str, Any]:
        """The on-disk shape, in the reference's key order."""
        return {
            "schema_version": SCHEMA_VERSION,
            "client_type": self.client_type,
            "cwd": self.cwd,
            "ancestors": [{"pid": a.pid, "sig": a.sig} for a in self.ancestors],
            "session_id": self.session_id,
            "transcript_path": self.transcript_path,
            "claimed_at": self.claimed_at,
            "server_pid": self.server_pid,
        }


def claim_key(client_type: str, cwd: str, session_id: str) -> str:
    """First 32 hex of SHA-256 over ``"<type> <cwd> <id>"``: one record per agent per cwd."""
    return hash32(f"{client_type} {cwd} {session_id}")


def claims_dir(state_dir: Path) -> Path:
    """Where claim records live: ``<state dir>/claims``."""
    return state_dir / "claims"


# --------------------------------------------------------------------------- ancestry


def parse_ps(text: str) -> dict[int, tuple[int, str]]:
    """``pid -> (ppid, start signature)`` from ``ps -A -o pid=,ppid=,lstart=`` output.

    Runs of spaces inside ``lstart`` collapse to one, so the signature of a
    process is stable however ``ps`` pads the day of the month.
    """
    table: dict[int, tuple[int, str]] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3 or not fields[0].isdigit() or not fields[1].isdigit():
            continue
        table[int(fields[0])] = (int(fields[1]), " ".join(fields[2:]))
    return table


def ancestor_chain(parent_pid: int, snapshot: Mapping[int, tuple[int, str]] | None) -> list[Ancestor]:
    """Up to eight ancestors starting at ``parent_pid``, nearest first, stopping at pid 1.

    A pid missing from the snapshot is recorded with an empty signature (which
    never matches anything) and ends the walk.
    """
    chain: list[Ancestor] = []
    pid = parent_pid
    for _ in range(MAX_ANCESTORS):
        if pid <= 1:
            break
        info = snapshot.get(pid) if snapshot else None
        if info is None:
            chain.append(Ancestor(pid, ""))
            break
        chain.append(Ancestor(pid, info[1]))
        pid = info[0]
    return chain


def ps_snapshot(
    run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
) -> dict[int, tuple[int, str]]:
    """One ``ps`` snapshot of every process (argv, never a shell); empty when ``ps`` is unavailable."""
    try:
        done = run(list(PS_ARGV), capture_output=True, text=True, timeout=PS_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return {}
    return parse_ps(done.stdout or "") if done.returncode == 0 else {}


_ANCESTRY: dict[int, list[Ancestor]] = {}


def current_ancestors(parent_pid: int) -> list[Ancestor]:
    """This process's ancestry as claims record it (``parent_pid`` is normally ``os.getppid()``).

    Cached per parent pid (issue 15 item 14: an unclaimed server ran ``ps -A`` on every
    ``get_my_session``): the ancestors of a living parent never change, and if the parent dies
    we are reparented, so ``os.getppid()`` changes and the chain is taken again. A chain with a
    gap (``ps`` missing or racing) is not cached.
    """
    cached = _ANCESTRY.get(parent_pid)
    if cached is not None:
        return list(cached)
    chain = ancestor_chain(parent_pid, ps_snapshot())
    if chain and all(a.sig for a in chain):
        _ANCESTRY[parent_pid] = list(chain)
    return chain


# --------------------------------------------------------------------------- records on disk


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return value


def _ancestors(value: object) -> tuple[Ancestor, ...] | None:
    if not isinstance(value, list):
        return None
    out: list[Ancestor] = []
    for item in value:
        if not isinstance(item, dict):
            continue
        pid = _number(item.get("pid"))
        sig = item.get("sig")
        if pid is not None and pid == int(pid) and isinstance(sig, str):
            out.append(Ancestor(int(pid), sig))
    return tuple(out)


def _read_json(path: Path) -> object:
    """A small claim record (O_NOFOLLOW, regular files only, capped): never a FIFO, a device or a link."""
    try:
        raw = read_bounded(path, CLAIM_MAX_BYTES)
        return None if raw is None else json.loads(raw.decode("utf-8", errors="replace"))
    except (OSError, ValueError, RecursionError):
        return None


def _iter_record_files(state_dir: Path) -> list[Path]:
    """The regular ``*.json`` files of a real ``claims/`` directory: a linked dir or file is never listed."""
    directory = claims_dir(state_dir)
    try:
        if not stat.S_ISDIR(os.lstat(directory).st_mode):
            return []
        with os.scandir(directory) as listing:
            names = [d.name for d in listing if d.name.endswith(".json") and d.is_file(follow_symlinks=False)]
    except OSError:
        return []
    return sorted(directory / name for name in names)


def _usable(data: object) -> ClaimRecord | None:
    """A record fit for recovery: every field present and typed, the transcript still on disk."""
    if not isinstance(data, dict):
        return None
    client_type, cwd, session_id = data.get("client_type"), data.get("cwd"), data.get("session_id")
    transcript, claimed_at = data.get("transcript_path"), _number(data.get("claimed_at"))
    ancestors = _ancestors(data.get("ancestors"))
    server_pid = _number(data.get("server_pid"))
    if not (isinstance(client_type, str) and isinstance(cwd, str) and isinstance(session_id, str)):
        return None
    if not session_id or not isinstance(transcript, str) or not transcript:
        return None
    if claimed_at is None or ancestors is None or not os.path.exists(transcript):
        return None
    return ClaimRecord(
        client_type,
        cwd,
        ancestors,
        session_id,
        transcript,
        claimed_at,
        int(server_pid) if server_pid is not None else 0,
    )


def gc_claims(state_dir: Path, now_ms: int) -> None:
    """Delete records whose transcript is gone (or was never set) or that are older than 14 days.

    A dead ``server_pid`` is not a reason: recovery exists precisely for
    records whose writer has exited. Unparseable files are left alone.
    """
    for path in _iter_record_files(state_dir):
        data = _read_json(path)
        if not isinstance(data, dict):
            continue
        transcript = data.get("transcript_path")
        claimed_at = _number(data.get("claimed_at"))
        stale = claimed_at is not None and now_ms - claimed_at * 1000 > CLAIM_TTL_MS
        if not isinstance(transcript, str) or not transcript or not os.path.exists(transcript) or stale:
            with contextlib.suppress(OSError):
                path.unlink()


def write_claim(state_dir: Path, record: ClaimRecord, now_ms: int, writer_pid: int) -> bool:
    """Persist ``record`` atomically (temp + rename, mode 0600) after a GC pass; errors are swallowed.

    Returns whether the record landed, for callers that want to trace it.
    """
    try:
        gc_claims(state_dir, now_ms)
        directory = Layout(state_dir).ensure_dir(claims_dir(state_dir))
        final = directory / f"{record.key}.json"
        write_atomic(final, utf8(json.dumps(record.as_dict(), indent=2, ensure_ascii=False)), fsync=False)
    except (OSError, StoreError):
        return False
    return True


# --------------------------------------------------------------------------- recovery


def _score(record: ClaimRecord, current: Sequence[Ancestor]) -> tuple[int, int, int, float] | None:
    """``(overlap, nearest in current, nearest in record, claimed_at)``, or None without a shared ancestor."""
    current_index: dict[tuple[int, str], int] = {}
    for index, a in enumerate(current):
        if a.sig:
            current_index.setdefault((a.pid, a.sig), index)
    shared: set[tuple[int, str]] = set()
    nearest_record: int | None = None
    for index, a in enumerate(record.ancestors):
        pair = (a.pid, a.sig)
        if a.sig and pair in current_index:
            shared.add(pair)
            if nearest_record is None:
                nearest_record = index
    if not shared or nearest_record is None:
        return None
    nearest_current = min(current_index[pair] for pair in shared)
    return len(shared), nearest_current, nearest_record, record.claimed_at


def recover(state_dir: Path, client_type: str, cwd: str, current: Sequence[Ancestor]) -> ClaimRecord | None:
    """The claim this process should re-adopt, or None (no match, or an exact tie between the best two).

    Ranking: more shared ancestors, then a shared ancestor nearer to us, then
    nearer to the claimant, then the newer claim.
    """
    ranked: list[tuple[tuple[int, int, int, float], ClaimRecord]] = []
    for path in _iter_record_files(state_dir):
        record = _usable(_read_json(path))
        if record is None or record.client_type != client_type or record.cwd != cwd:
            continue
        score = _score(record, current)
        if score is not None:
            ranked.append((score, record))
    if not ranked:
        return None

    def order(item: tuple[tuple[int, int, int, float], ClaimRecord]) -> tuple[int, int, int, float]:
        overlap, near_current, near_record, claimed_at = item[0]
        return (-overlap, near_current, near_record, -claimed_at)

    ranked.sort(key=order)
    if len(ranked) > 1 and ranked[0][0] == ranked[1][0]:
        return None
    return ranked[0][1]


def maybe_recover(
    client: ClientInfo,
    *,
    state_dir: Path,
    ancestors: Sequence[Ancestor],
    now_ms: int,
    server_pid: int,
    tracer: Tracer | None = None,
) -> ClientInfo | None:
    """Adopt a sticky claim for a client without an id; returns the updated client or None.

    On success the record is re-persisted under this process (fresh ancestry,
    ``claimed_at`` and ``server_pid``) and ``sticky_claim_recovered`` is
    traced; the caller registers the entry at once so peers see the id.
    Any error aborts recovery silently: it is an optimization, never required.
    """
    if client.session_id or client.type == "unknown":
        return None
    try:
        record = recover(state_dir, client.type, client.cwd, ancestors)
    except OSError:
        return None
    if record is None:
        return None
    recovered = attrs.evolve(
        client,
        session_id=record.session_id,
        session_id_source="sticky-claim",
        transcript_path=record.transcript_path,
    )
    safe_emit(tracer or NullTracer(), "sticky_claim_recovered", session_id=record.session_id, cwd=client.cwd)
    refreshed = ClaimRecord(
        record.client_type,
        record.cwd,
        tuple(ancestors),
        record.session_id,
        record.transcript_path,
        now_ms // 1000,
        server_pid,
    )
    write_claim(state_dir, refreshed, now_ms, server_pid)
    return recovered


def claim_for(
    client: ClientInfo, ancestors: Sequence[Ancestor], now_ms: int, server_pid: int
) -> ClaimRecord | None:
    """The record to persist after an explicit claim; None for unknown clients or an empty id."""
    if client.type == "unknown" or not client.session_id:
        return None
    return ClaimRecord(
        client.type,
        client.cwd,
        tuple(ancestors),
        client.session_id,
        client.transcript_path,
        now_ms // 1000,
        server_pid,
    )
