"""Sticky claims: a restarted MCP child re-adopts the session id its predecessor claimed.

Hosts restart MCP children (and Codex strips its thread id from their
environment), and birth-time detection cannot help because the transcript
predates the new child. So every explicit claim is written down together with
the claimant's process ancestry; a new child in the same cwd whose ancestry
shares a host process (same pid *and* same start time, so a recycled pid never
matches) takes the id back. When two records are equally good the child
abstains: guessing wrong would merge two agents' identities.

Only the policy lives here (which claim applies to this process, how long a
claim lasts); the records are a Store family (``claim_put`` / ``claim_list`` /
``claim_gc``), so every backend keeps them.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping, Sequence

import attrs

from oxtail_core.errors import StoreError
from oxtail_core.model import Ancestor, ClaimRecord, ClientInfo
from oxtail_core.protocols import Store
from oxtail_core.trace import NullTracer, Tracer, safe_emit

CLAIM_TTL_MS = 14 * 86_400_000
MAX_ANCESTORS = 8
PS_ARGV = ("ps", "-A", "-o", "pid=,ppid=,lstart=")
PS_TIMEOUT_S = 5.0


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


# --------------------------------------------------------------------------- records in the store


def _usable(record: ClaimRecord) -> bool:
    """Fit for recovery: a claimed id and a transcript still on disk (the store vouches for the rest)."""
    return bool(record.session_id and record.transcript_path and os.path.exists(record.transcript_path))


def gc_claims(store: Store, now_ms: int) -> int:
    """Drop claims whose transcript is gone (or was never set) or that are older than 14 days.

    A dead ``server_pid`` is not a reason: recovery exists precisely for
    records whose writer has exited. Returns how many went.
    """
    return store.claim_gc(now_ms - CLAIM_TTL_MS, os.path.exists)


def write_claim(store: Store, record: ClaimRecord, now_ms: int) -> bool:
    """Persist ``record`` after a GC pass; errors are swallowed (a claim is an optimization).

    Returns whether the record landed, for callers that want to trace it.
    """
    try:
        gc_claims(store, now_ms)
        store.claim_put(record)
    except StoreError:
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


def recover(store: Store, client_type: str, cwd: str, current: Sequence[Ancestor]) -> ClaimRecord | None:
    """The claim this process should re-adopt, or None (no match, or an exact tie between the best two).

    Ranking: more shared ancestors, then a shared ancestor nearer to us, then
    nearer to the claimant, then the newer claim.
    """
    ranked: list[tuple[tuple[int, int, int, float], ClaimRecord]] = []
    for record in store.claim_list():
        if record.client_type != client_type or record.cwd != cwd or not _usable(record):
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
    store: Store,
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
        record = recover(store, client.type, client.cwd, ancestors)
    except StoreError:
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
    write_claim(store, refreshed, now_ms)
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
