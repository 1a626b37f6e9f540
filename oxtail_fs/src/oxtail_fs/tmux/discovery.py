"""The project's tmux sessions joined with the registry (discovery §5.3–5.4, §6.1).

The listing is driven by tmux: a session is listed when its start path or any
of its panes' current paths is in scope, and each listed session carries one
row per registered agent that names it (or one agent-less row). Agents outside
tmux never appear, and an entry naming an unlisted session adds nothing. Rows
are plain dicts in the emitted key order, ready for a JSON dump.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs

from oxtail_core.model import RegistryEntry, on_host
from oxtail_fs.host import proctree
from oxtail_fs.host.project import in_scope
from oxtail_fs.tmux.client import Tmux, TmuxSession

Row = dict[str, Any]

_TMUX_KEYS = ("name", "path", "attached", "created_at", "windows")
_AGENT_KEYS = ("client_type", "client_session_id", "state")


@attrs.frozen
class SessionListing:
    """Flat rows (§6.1 ``sessions``) and the tmux error, if any (then ``rows`` is empty)."""

    rows: tuple[Row, ...]
    error: str | None

    def grouped(self) -> list[Row]:
        """The compact form (§6.1 ``tmux_sessions``): one group per session name, in first-seen order.

        An agent-less row contributes no agent, so an unregistered session has ``agents: []``.
        """
        groups: dict[str, Row] = {}
        for row in self.rows:
            group = groups.get(row["name"])
            if group is None:
                group = {key: row[key] for key in _TMUX_KEYS}
                group["agents"] = []
                groups[row["name"]] = group
            agent = {key: row[key] for key in _AGENT_KEYS}
            if any(value is not None for value in agent.values()):
                group["agents"].append(agent)
        return list(groups.values())


def verified(
    tmux: Tmux,
    entries: Sequence[RegistryEntry],
    *,
    working_dir: Callable[[int], str | None] = proctree.working_dir,
    parent_of: Callable[[int], int | None] = proctree.ppid_of,
    is_alive: Callable[[int, float | None], bool] = proctree.is_alive,
    here: str | None = None,
) -> list[RegistryEntry]:
    """``entries`` as the OS sees them: ``cwd``, ``tmux_pane`` and ``tmux_session`` recomputed.

    ``here`` is this machine's host id (None: a one-machine store). An entry of another machine
    is never looked up in this process table or tmux server, where its pid means another process:
    it keeps its own word for the cwd (scope across machines is decided by ``project_id``) and has
    no pane or session here.

    A registry entry is its peer's own word (issue 15 item 11), so before it
    decides scope: the cwd is where the process really works (the entry's
    only when the OS cannot tell), the pane is the nearest pane above the
    process on our tmux server (none if it is in no pane of ours) and the
    session is that pane's. The process is checked alive (with its start
    time) before and after the walk, as the waker does, so a recycled pid
    lends no pane.
    """
    panes = tmux.pane_pids() if entries else {}
    sessions: dict[str, str | None] = {}
    out: list[RegistryEntry] = []
    for entry in entries:
        if not on_host(entry, here):
            out.append(attrs.evolve(entry, tmux_pane=None, tmux_session=None))
            continue
        pid, start = entry.server_pid, entry.process_start
        pane = None
        if panes and is_alive(pid, start):
            pane = proctree.nearest_ancestor_in(pid, panes, parent_of)
            if pane is not None and not is_alive(pid, start):
                pane = None
        if pane is not None and pane not in sessions:
            sessions[pane] = tmux.session_of(pane)
        session = None if pane is None else sessions[pane]
        cwd = working_dir(pid) or entry.client.cwd
        client = attrs.evolve(entry.client, cwd=cwd)
        out.append(attrs.evolve(entry, client=client, tmux_pane=pane, tmux_session=session))
    return out


def _agent_fields(entry: RegistryEntry | None) -> Row:
    if entry is None:
        return {"client_type": None, "client_session_id": None, "state": None}
    state = entry.state
    return {
        "client_type": entry.client.type,
        "client_session_id": entry.client.session_id,
        "state": None if state is None else {"purpose": state.purpose, "updated_at": state.updated_at},
    }


def _tmux_fields(session: TmuxSession) -> Row:
    return {
        "name": session.name,
        "path": session.path,
        "attached": session.attached,
        "created_at": session.created_at,
        "windows": session.windows,
    }


def project_sessions(
    tmux: Tmux, registry_entries: Sequence[RegistryEntry], resolved_root: str
) -> SessionListing:
    """List the tmux sessions in scope of ``resolved_root`` (already canonical) joined with the registry.

    ``registry_entries`` is the live, session-collapsed registry view; tmux
    problems are reported in ``error``, never raised.
    """
    sessions, error = tmux.list_sessions()
    if error is not None:
        return SessionListing((), error)
    pane_paths = tmux.pane_paths()
    by_session: dict[str, list[RegistryEntry]] = {}
    for entry in registry_entries:
        if entry.tmux_session:
            by_session.setdefault(entry.tmux_session, []).append(entry)
    rows: list[Row] = []
    for session in sessions:
        paths = [session.path, *pane_paths.get(session.name, [])]
        if not any(in_scope(path, resolved_root) for path in paths):
            continue
        agents: Sequence[RegistryEntry | None] = by_session.get(session.name) or [None]
        for agent in agents:
            rows.append({**_tmux_fields(session), **_agent_fields(agent)})
    return SessionListing(tuple(rows), None)
