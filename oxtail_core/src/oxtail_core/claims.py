"""Who may take on a session id: siblings share one, an impostor is refused (issue 15 item 3).

Mail and wakes follow the session id, so a claim of an id that a live agent
holds would take its mail. Two servers launched by one client process (a
user- and a project-scoped server under one Claude Code) really are one
agent and share the id; a server of another client process is refused unless
the claimant shows evidence that it is that session:

=========================================================  ==========================
the session id is held by                                  a claim of it
=========================================================  ==========================
nobody live (no entry, dead server, dead breadcrumb)       allowed
only us                                                    allowed
a live server whose client process is ours (a sibling)     allowed
a live server whose recorded client process is gone        allowed (an orphan)
a live server whose client we cannot tell, or ours unknown allowed (nothing to compare)
a live server of another client process                    ``session-held``, unless
                                                           ``proven`` (evidence)
=========================================================  ==========================

The client process of a server is its parent, as the Host reports it (the
kernel's word); only when the Host cannot tell is the entry's own
``client_pid`` used. Evidence (``proven``) is the caller's to gather: the
claimant's environment names the id, or its own detection finds the id from
its client's transcript or SessionStart drop.
"""

from __future__ import annotations

import attrs

from oxtail_core.context import Context
from oxtail_core.errors import ErrorCode, OxtailError
from oxtail_core.ids import same_session_id
from oxtail_core.model import RegistryEntry

Client = tuple[int, float | None]

TMUX_NAME_SHOWN = 256
"""A refusal shows at most this much of the holder's (self-reported) tmux session name."""

START_TOLERANCE_S = 1.0
"""Two start times of one process may differ by rounding (ticks vs. psutil)."""


@attrs.frozen
class Holder:
    """Where a session id is held: the server, its client process, its tmux session and client type."""

    server_pid: int
    client_pid: int | None
    tmux_session: str | None
    client_type: str


class SessionHeld(OxtailError):
    """A claim of a session id that a live server of another client process holds: nothing changed."""

    code = ErrorCode.SESSION_HELD.value

    def __init__(self, session_id: str, holder: Holder) -> None:
        where = f"server pid {holder.server_pid}"
        if holder.client_pid is not None:
            where += f" under client pid {holder.client_pid}"
        where += f" ({holder.client_type}"
        where += f", tmux session {_clip(holder.tmux_session)})" if holder.tmux_session else ", not in tmux)"
        super().__init__(
            f"session-held: {_clip(session_id)} is held by a live agent of another client process, {where}. "
            "Claim only your own session id (get_my_session shows what was detected); "
            "to message that agent, use its id as a target"
        )
        self.session_id = session_id
        self.holder = holder


def _clip(text: str, limit: int = 64) -> str:
    """A refusal never echoes a long id back whole."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "…"


def client_of(ctx: Context, entry: RegistryEntry) -> Client | None:
    """The client process of ``entry``'s server: the Host's parent of it, else the entry's own word."""
    parent = ctx.host.parent_of(entry.server_pid)
    if parent is not None:
        return parent
    return None if entry.client_pid is None else (entry.client_pid, entry.client_start)


def _same_client(a: Client, b: Client) -> bool:
    if a[0] != b[0]:
        return False
    return a[1] is None or b[1] is None or abs(a[1] - b[1]) <= START_TOLERANCE_S


def _orphaned(ctx: Context, entry: RegistryEntry) -> bool:
    """The client the holder recorded at join is gone: the holder only lingers (e.g. before its EOF)."""
    return entry.client_pid is not None and not ctx.host.is_alive(
        entry.client_pid, entry.client_start, entry.host_id
    )


def holder_elsewhere(ctx: Context, me: RegistryEntry, session_id: str) -> RegistryEntry | None:
    """The live entry of another client process that holds ``session_id``, or None (see the table)."""
    mine = client_of(ctx, me)
    if mine is None:
        return None
    for entry in ctx.store.registry_entries():  # every server, not one per agent: siblings and impostors
        if entry.server_pid == me.server_pid or not same_session_id(entry.session_id, session_id):
            continue
        if not ctx.host.is_alive(entry.server_pid, entry.process_start, entry.host_id):
            continue
        theirs = client_of(ctx, entry)
        if theirs is None or _same_client(mine, theirs) or _orphaned(ctx, entry):
            continue
        return entry
    return None


def check_claim(ctx: Context, me: RegistryEntry, session_id: str, *, proven: bool) -> None:
    """Raise :class:`SessionHeld` when ``me`` may not take ``session_id`` (the table above)."""
    if proven or same_session_id(me.session_id, session_id):
        return
    held = holder_elsewhere(ctx, me, session_id)
    if held is not None:
        theirs = client_of(ctx, held)
        holder = Holder(
            server_pid=held.server_pid,
            client_pid=None if theirs is None else theirs[0],
            tmux_session=None if held.tmux_session is None else held.tmux_session[:TMUX_NAME_SHOWN],
            client_type=held.client.type,
        )
        raise SessionHeld(session_id, holder)
