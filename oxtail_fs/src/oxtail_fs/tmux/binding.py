"""Which tmux pane and session this server runs in (discovery §3.7), for its own registry entry.

``TMUX_PANE`` is used only when it is a well-formed pane id: a value such as
``%1; tmux kill-server`` is ignored, never passed on. Without it (Codex strips
it from an MCP child's environment) the pane is recovered by walking up from
our own pid to a pane's root process.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import attrs

from oxtail_core.ids import is_pane_id
from oxtail_fs.host import proctree
from oxtail_fs.tmux.client import Tmux


@attrs.frozen
class TmuxBinding:
    """The ``tmux_pane`` / ``tmux_session`` pair a server publishes (both None outside tmux)."""

    pane: str | None = None
    session: str | None = None


def own_pane(
    tmux: Tmux,
    environ: Mapping[str, str] = os.environ,
    pid: int | None = None,
    parent_of: Callable[[int], int | None] = proctree.ppid_of,
) -> str | None:
    """Our pane id: a well-formed ``TMUX_PANE``, else the nearest ancestor that is a pane's process."""
    declared = environ.get("TMUX_PANE")
    if is_pane_id(declared):
        return declared
    pane = proctree.nearest_ancestor_in(os.getpid() if pid is None else pid, tmux.pane_pids(), parent_of)
    return pane if is_pane_id(pane) else None


def own_binding(tmux: Tmux, environ: Mapping[str, str] = os.environ, pid: int | None = None) -> TmuxBinding:
    """Resolve the pane, then the session that holds it (computed at startup and on every claim)."""
    pane = own_pane(tmux, environ, pid)
    return TmuxBinding(pane, tmux.session_of(pane) if pane else None)
