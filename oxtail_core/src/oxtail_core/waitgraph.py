"""Who waits on whom, and which of those waits can never end (selfheal.md §8.1–§8.2, §7.3).

Pure: a function of records already read (the agents with their liveness and counts, the
pending-ask records), so ``status``, ``status --check`` and a cockpit judge the same fleet the
same way. Nothing here reads a Store or a clock.

An edge "A waits on B" is A's newest live pending ask (a timed-out ask or a delegator's
expectation); each agent has at most one, so the graph is functional and cycles are found by
walking chains. The problems ``--check`` counts:

=================  ==========================================================================
problem            when
=================  ==========================================================================
``deadlock``       a cycle of waits whose members are all alive: nobody will ever answer
``orphaned-wait``  a wait on an agent that is dead or gone (no registry entry of its session)
``stranded``       a dead agent (no live server of its session) still holding mail or open work
=================  ==========================================================================

A cycle with a dead member is only a *stale* cycle (not a deadlock); its edge to the dead
member is still an orphaned wait. Where the reference resolves the target by ledger
correlation (its legacy records carry none), ours records it on every pending ask, so a target
whose entry was reaped is known to be gone: an orphaned wait, not "peer unresolved". A record
without a target stays unresolved and is never a problem.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import attrs

from oxtail_core.ids import canonical_session_id
from oxtail_core.model import PendingAsk

DEADLOCK = "deadlock"
ORPHANED_WAIT = "orphaned-wait"
STRANDED = "stranded"


@attrs.frozen
class Agent:
    """One agent (session) as the graph sees it: alive or not, and what it holds."""

    session_id: str
    alive: bool
    unread: int = 0
    open_work: int = 0


@attrs.frozen
class Wait:
    """An edge: ``waiter`` is owed a reply to ``request_id`` by ``target`` since ``since_ms``.

    ``target`` is None when the record names nobody; ``target_state`` is ``"alive"``,
    ``"dead"``, ``"gone"`` (no entry of that session at all) or ``"unknown"`` (no target).
    """

    waiter: str
    target: str | None
    request_id: str
    since_ms: int
    attempts: int
    target_state: str
    in_cycle: bool = False
    cycle_all_live: bool = False

    @property
    def orphaned(self) -> bool:
        return self.target_state in ("dead", "gone")


@attrs.frozen
class Cycle:
    """Members in walk order; a live deadlock iff ``all_live``."""

    members: tuple[str, ...]
    all_live: bool


@attrs.frozen
class Problem:
    """One thing ``status --check`` fails on, naming the agents involved."""

    kind: str
    agents: tuple[str, ...]
    line: str


@attrs.frozen
class WaitGraph:
    waits: tuple[Wait, ...]
    cycles: tuple[Cycle, ...]

    def wait_of(self, session_id: str) -> Wait | None:
        return next((w for w in self.waits if w.waiter == session_id), None)


def newest_waits(asks: Iterable[PendingAsk], now_ms: int, ttl_ms: float) -> dict[str, PendingAsk]:
    """Per asking session, its newest record still within the TTL (§8.1: only that one forms the edge)."""
    newest: dict[str, PendingAsk] = {}
    for ask in asks:
        if now_ms - ask.at_ms >= ttl_ms:
            continue
        owner = canonical_session_id(ask.requester)
        best = newest.get(owner)
        if best is None or (ask.at_ms, ask.request_id) > (best.at_ms, best.request_id):
            newest[owner] = ask
    return newest


def wait_graph(
    waiters: Iterable[str],
    known: Mapping[str, bool],
    asks: Iterable[PendingAsk],
    now_ms: int,
    ttl_ms: float,
) -> WaitGraph:
    """The edges out of ``waiters`` (the sessions in scope) and the cycles among them.

    ``known`` maps every registered session (any project) to whether a live server of it exists;
    a target missing from it is gone.
    """
    newest = newest_waits(asks, now_ms, ttl_ms)
    edges: dict[str, Wait] = {}
    for owner in dict.fromkeys(canonical_session_id(w) for w in waiters):
        ask = newest.get(owner)
        if ask is None:
            continue
        target = canonical_session_id(ask.peer) if ask.peer else None
        state = "unknown" if target is None else _state(known.get(target))
        edges[owner] = Wait(owner, target, ask.request_id, ask.at_ms, ask.attempts, state)
    cycles = _cycles({w: e.target for w, e in edges.items() if e.target is not None}, known)
    for cycle in cycles:
        for member in cycle.members:
            edges[member] = attrs.evolve(edges[member], in_cycle=True, cycle_all_live=cycle.all_live)
    return WaitGraph(tuple(edges.values()), tuple(cycles))


def _state(alive: bool | None) -> str:
    return "gone" if alive is None else "alive" if alive else "dead"


def _cycles(next_of: Mapping[str, str], known: Mapping[str, bool]) -> list[Cycle]:
    """Walk each chain of the functional graph; revisiting a node of the current path closes a cycle."""
    done: set[str] = set()
    found: list[Cycle] = []
    for start in next_of:
        path: list[str] = []
        node: str | None = start
        while node is not None and node not in done and node not in path:
            path.append(node)
            node = next_of.get(node)
        if node is not None and node in path:
            members = tuple(path[path.index(node) :])
            found.append(Cycle(members, all_live=all(known.get(m, False) for m in members)))
        done.update(path)
    return found


def problems(graph: WaitGraph, agents: Iterable[Agent]) -> list[Problem]:
    """What ``status --check`` fails on, one per line: live deadlocks, orphaned waits, stranded holders.

    Every orphaned wait counts, even one inside a stale cycle (S55). ``name`` in the lines is the
    session id, so a script can act on it.
    """
    found = [
        Problem(DEADLOCK, c.members, "deadlock: " + " -> ".join((*c.members, c.members[0])) + " (all alive)")
        for c in graph.cycles
        if c.all_live
    ]
    for w in graph.waits:
        if w.orphaned and w.target is not None:
            line = f"orphaned wait: {w.waiter} awaits a reply from {w.target} ({w.target_state})"
            found.append(Problem(ORPHANED_WAIT, (w.waiter, w.target), f"{line}, request {w.request_id}"))
    for agent in agents:
        if not agent.alive and (agent.unread or agent.open_work):
            held = f"{_count(agent.unread, 'unread message')}, {_count(agent.open_work, 'open obligation')}"
            found.append(
                Problem(
                    STRANDED, (agent.session_id,), f"stranded: {agent.session_id} is dead, holding {held}"
                )
            )
    return found


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
