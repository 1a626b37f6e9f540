"""Who is out there, and where mail for them goes.

The registry is the only source of addresses. A live view hides dead
processes (by pid *and* start time, so a recycled pid is dead), collapses the
several servers of one agent into its freshest one, and reaps what is dead --
but never a breadcrumb that still leads to undelivered mail. Entries of the
reference (Node) oxtail (:mod:`oxtail_core.foreign`) are listed like any other
but never reaped, folded into or delivered to.

Target resolution, in order (the reference's 0.32.1 rule, plus ``foreign-peer``):

======================================  ======================================================
step                                    outcome
======================================  ======================================================
1. live entries ``name`` designates     dead ones (pid or start time) are already gone
2. drop the caller (its pid, and its    none left: ``self-send`` if the caller was among
   session id when claimed: siblings)   them, else ``target-not-found``
3. more than one left                   ``ambiguous-target``: claimed ids, unclaimed counted
4. exactly one                          other project: ``cross-project``; a reference peer:
                                        ``foreign-peer``; else that peer, claimed or not
======================================  ======================================================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs

from oxtail_core.context import Context
from oxtail_core.errors import ErrorCode, StoreError
from oxtail_core.foreign import foreign_refusal_message, is_foreign
from oxtail_core.ids import canonical_session_id, is_uuid_shaped, same_session_id
from oxtail_core.model import RegistryEntry, StateCard
from oxtail_core.protocols import Holder, InboxId

TARGET_NOT_FOUND = ErrorCode.TARGET_NOT_FOUND.value
AMBIGUOUS_TARGET = ErrorCode.AMBIGUOUS_TARGET.value
CROSS_PROJECT = ErrorCode.CROSS_PROJECT.value
SELF_SEND = ErrorCode.SELF_SEND.value
FOREIGN_PEER = ErrorCode.FOREIGN_PEER.value


@attrs.frozen
class Unresolved:
    """Why a target could not be used; ``candidates``/``note`` only for ambiguity, ``message`` for a
    refusal the code alone does not explain (``foreign-peer``)."""

    error: str
    candidates: tuple[str, ...] | None = None
    note: str | None = None
    message: str | None = None


VANISHED = Unresolved(TARGET_NOT_FOUND)
"""An unclaimed peer that exited between resolution and delivery: to the sender, not found."""


def session_inbox(session_id: str) -> InboxId:
    """The inbox of an agent; UUID-shaped ids are keyed case-insensitively."""
    return InboxId.for_session(canonical_session_id(session_id))


def process_inbox(entry: RegistryEntry) -> InboxId:
    """The inbox of one not-yet-claimed server process."""
    return InboxId.for_process(entry.server_pid, entry.started_at, entry.host_id)


def inbox_of(entry: RegistryEntry) -> InboxId:
    """Where a message to ``entry`` is appended: its agent's inbox once claimed, else its process's."""
    sid = entry.session_id
    return session_inbox(sid) if sid else process_inbox(entry)


def inboxes_of(entry: RegistryEntry) -> tuple[InboxId, ...]:
    """Every inbox ``entry``'s own reads must look at: the session inbox first, then its process inbox
    (a sender that resolved us before we claimed may still append there)."""
    sid = entry.session_id
    return (session_inbox(sid), process_inbox(entry)) if sid else (process_inbox(entry),)


def _alive(ctx: Context, entry: RegistryEntry) -> bool:
    return ctx.host.is_alive(entry.server_pid, entry.process_start, entry.host_id)


def live_entries(ctx: Context) -> list[RegistryEntry]:
    """Addressable entries, one per agent (its freshest server), then unclaimed ones.

    Dead entries are reaped as a side effect, without stranding mail: a dead
    server's process inbox is folded into its agent's inbox (or, unclaimed,
    into the inbox of the agent now running in the same pane), and the entry
    is removed only once that inbox is drained -- atomically with any late
    append (see :func:`oxtail_core.delivery.deliver`).
    """
    live: list[RegistryEntry] = []
    dead: list[RegistryEntry] = []
    for entry in ctx.store.registry_entries():
        (live if _alive(ctx, entry) else dead).append(entry)
    for entry in dead:
        if not is_foreign(entry):  # the reference reaps its own, by its own rules
            _reap(ctx, entry, live)
    return collapse(_without_stale_foreign(live))


def _without_stale_foreign(live: Sequence[RegistryEntry]) -> list[RegistryEntry]:
    """Drop a reference entry whose pid is one of our live servers: it outlived its process.

    A reference entry carries no start time we can check, so a recycled pid
    would pass for it; a pid that one of our live servers (start time checked)
    holds cannot also be the reference's.
    """
    ours = {e.server_pid for e in live if not is_foreign(e)}
    return [e for e in live if not (is_foreign(e) and e.server_pid in ours)]


def _heir(entry: RegistryEntry, live: Sequence[RegistryEntry]) -> InboxId | None:
    """Where a dead server's mail belongs: its agent's inbox, else that of the agent now in its pane."""
    if entry.session_id:
        return session_inbox(entry.session_id)
    if entry.tmux_pane:
        for other in live:
            if other.session_id and other.tmux_pane == entry.tmux_pane and not is_foreign(other):
                return session_inbox(other.session_id)
    return None


def is_holder_alive(ctx: Context) -> Callable[[Holder], bool]:
    """Liveness of an in-flight holder, by pid and start time, on the holder's host."""
    return lambda holder: ctx.host.is_alive(holder.pid, holder.process_start, holder.host)


def _reap(ctx: Context, entry: RegistryEntry, live: Sequence[RegistryEntry]) -> None:
    source = process_inbox(entry)
    try:
        ctx.store.recover(source, is_holder_alive(ctx))
        heir = _heir(entry, live)
        if heir is not None:
            ctx.store.merge(source, heir)
        if not _stranded(ctx, entry, live):
            ctx.store.registry_remove_if_drained(entry, source)
    except StoreError:
        pass  # any doubt keeps the breadcrumb; the next reader retries


def fold_if_dead(ctx: Context, entry: RegistryEntry) -> None:
    """After appending to an unclaimed server's inbox: if that server has died meanwhile, reap it now.

    Its breadcrumb let the append in, but the heir in its pane may have
    published (and reaped it) before the append landed, and the heir's reads
    do not look at a dead process's inbox: the mail would wait for whoever
    next lists the registry. Folding here closes that: the server died before
    any reap of it, so either that reap ran after our append (and took it) or
    this check sees the death and folds it. Best effort; a doubt keeps the
    breadcrumb, as in every reap.
    """
    if _alive(ctx, entry):
        return
    try:
        live = [e for e in ctx.store.registry_entries() if _alive(ctx, e)]
    except StoreError:
        return
    _reap(ctx, entry, live)


def _stranded(ctx: Context, entry: RegistryEntry, live: Sequence[RegistryEntry]) -> bool:
    """The dead-breadcrumb keep-gate (accounting.md §1.7): a dead agent whose session still has mail
    waiting or an open obligation keeps its entry (never a live target) so that status shows the
    stranded work, until no live server of that session exists to take it over.

    Raises StoreError when it cannot tell: the caller keeps the entry then.
    """
    sid = entry.session_id
    if not sid or any(same_session_id(sid, other.session_id) for other in live):
        return False
    canonical = canonical_session_id(sid)
    return ctx.store.depth(session_inbox(canonical)) > 0 or bool(ctx.store.ledger_open(canonical))


def collapse(entries: Sequence[RegistryEntry]) -> list[RegistryEntry]:
    """One entry per session id (ours before the reference's, then greatest ``started_at``, then
    ``process_start``), then the unclaimed.

    The winner carries the newest state card among the agent's servers: an
    agent with two servers (user and project scope) may have published its
    purpose through either. An agent running both implementations is reached
    through ours, the one whose inbox mail to its session id lands in.
    """
    winners: dict[str, RegistryEntry] = {}
    cards: dict[str, StateCard] = {}
    unclaimed: list[RegistryEntry] = []
    for entry in entries:
        sid = entry.session_id
        if not sid:
            unclaimed.append(entry)
            continue
        key = canonical_session_id(sid)
        best = winners.get(key)
        if best is None or _freshness(entry) > _freshness(best):
            winners[key] = entry
        card = cards.get(key)
        if entry.state is not None and (card is None or entry.state.updated_at > card.updated_at):
            cards[key] = entry.state
    merged = [attrs.evolve(w, state=cards.get(k, w.state)) for k, w in winners.items()]
    return [*merged, *unclaimed]


def _freshness(entry: RegistryEntry) -> tuple[bool, int, float]:
    return (not is_foreign(entry), entry.started_at, entry.process_start or 0.0)


def candidates(
    entries: Sequence[RegistryEntry], name: str, *, as_session: bool = False
) -> list[RegistryEntry]:
    """The live entries ``name`` designates; more than one is ambiguous (each caller words its error).

    A UUID-shaped name (or any name, with ``as_session``) is a session id;
    anything else is a tmux session name. Used by :func:`resolve_target` and by
    the read_session tool, so both read a name the same way.
    """
    if as_session or is_uuid_shaped(name):
        return [e for e in entries if same_session_id(e.session_id, name)]
    return [e for e in entries if e.tmux_session == name]


def resolve_target(
    ctx: Context, me: RegistryEntry, target: str, *, as_session: bool = False
) -> RegistryEntry | Unresolved:
    """Find the one live peer ``target`` names: a session id (UUID-shaped) or a tmux session name.

    The steps are the module docstring's table. The caller is removed before
    counting, so a tmux name shared by the caller and one other peer (claimed
    or not) reaches that peer. ``as_session`` forces the session-id reading (a
    reply goes back to a sender's session id whatever its shape; the reference
    looked non-UUID ids up as tmux names).
    """
    found = candidates(live_entries(ctx), target, as_session=as_session)
    others = [e for e in found if not _is_self(me, e)]
    if not others:
        return Unresolved(SELF_SEND if found else TARGET_NOT_FOUND)
    if len(others) > 1:
        unclaimed = sum(1 for e in others if not e.session_id)
        note = (
            f"{unclaimed} peer(s) sharing tmux session '{target}' have not claimed a session_id "
            "and cannot be addressed by UUID; have them run claim_session."
            if unclaimed
            else None
        )
        return Unresolved(
            AMBIGUOUS_TARGET, candidates=tuple(e.session_id for e in others if e.session_id), note=note
        )
    peer = others[0]
    if not in_project(ctx, me, peer):
        return Unresolved(CROSS_PROJECT)
    if is_foreign(peer):
        return Unresolved(FOREIGN_PEER, message=foreign_refusal_message(peer))
    return peer


def in_project(ctx: Context, me: RegistryEntry, peer: RegistryEntry) -> bool:
    """Messaging's project scope between our entry and a live peer's.

    ==========================================  =====================================================
    hosts (``host_id``)                         same project when
    ==========================================  =====================================================
    both set and different (two machines)       both carry a ``project_id`` and they are equal (a
                                                path on another machine means nothing here)
    otherwise (one machine, or an old entry)    the Host's rule on our cwd and the peer's working dir
    ==========================================  =====================================================
    """
    if me.host_id is not None and peer.host_id is not None and me.host_id != peer.host_id:
        return me.project_id is not None and me.project_id == peer.project_id
    return ctx.host.same_project(me.client.cwd, working_dir(ctx, peer))


def working_dir(ctx: Context, entry: RegistryEntry) -> str:
    """Where a live peer really works (the Host's word), its self-reported ``cwd`` only when the Host
    cannot tell: a forged entry does not bring a peer into our project (issue 15 item 11)."""
    return ctx.host.working_dir(entry.server_pid) or entry.client.cwd


def _is_self(me: RegistryEntry, entry: RegistryEntry) -> bool:
    """The caller's own entry, or (once claimed) any server of its agent (a sibling in another scope)."""
    return entry.server_pid == me.server_pid or same_session_id(entry.session_id, me.session_id)


def publish(ctx: Context, me: RegistryEntry) -> None:
    """Write our own entry first, then fold mail we are owed into our agent's inbox.

    Publication comes first so merged mail never sits behind no breadcrumb.
    Then, exactly once per message: our own pre-claim process inbox, and the
    process inboxes of our agent's dead servers and of dead unclaimed servers
    that ran in our pane, all move into the session inbox.
    """
    ctx.store.registry_put(me)
    if not me.session_id:
        return
    ctx.store.merge(process_inbox(me), session_inbox(me.session_id))
    live_entries(ctx)  # reaps the dead: ours fold into our inbox, unclaimed ones in our pane too


def retire(ctx: Context, me: RegistryEntry) -> None:
    """Leave the registry on a clean exit without stranding mail.

    A claimed server's process inbox is merged into its agent's inbox first;
    the entry goes only if nothing is left (or can still land) in it, else it
    stays as a breadcrumb for whoever comes next in our pane.
    """
    if me.session_id:
        ctx.store.merge(process_inbox(me), session_inbox(me.session_id))
    ctx.store.registry_remove_if_drained(me, process_inbox(me))
