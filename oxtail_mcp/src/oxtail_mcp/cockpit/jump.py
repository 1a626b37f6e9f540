"""Jump to an agent's tmux pane: only ever the pane the process tree proves hosts it.

The registry's ``tmux_pane`` and ``tmux_session`` are the peer's own words and never reach tmux.
The target is re-resolved from the registry (:func:`oxtail_core.operator.resolve`: a session's
freshest live server), located by the waker the way a wake is (live process tree, start time, an
oxtail server strictly below the pane's process), and must be a ``%<digits>`` pane id; that id is
the only argument built from state. Then:

=========================  ====================================================================
where the cockpit runs     what moves
=========================  ====================================================================
inside tmux                ``select-window -t %n``, ``select-pane -t %n``, then
                           ``switch-client -t %n`` (this terminal follows the agent; without
                           an attached client the window and pane are still selected)
outside tmux, one client   ``switch-client -c <client> -t %n`` (that terminal follows)
outside tmux, 0 or 2+      nothing: the line says ``tmux attach -t %n`` to run by hand
=========================  ====================================================================

A client name is tmux's own output, and is used only if it looks like a tty path.
"""

from __future__ import annotations

import re

from oxtail_core import Context
from oxtail_core.ids import is_pane_id
from oxtail_core.operator import OperatorRefused, Target, resolve
from oxtail_fs.tmux.client import Tmux
from oxtail_mcp.commands.terminal import inert

CLIENT_NAME = re.compile(r"^/dev/[A-Za-z0-9/_.-]+\Z")


def jump(ctx: Context, tmux: Tmux, target: Target, *, inside_tmux: bool) -> str:
    """Focus ``target``'s verified pane; one line saying what happened (inert)."""
    entry = resolve(ctx, target)
    if isinstance(entry, OperatorRefused):
        return inert(f"✗ {target.label}: {entry.reason}")
    try:
        pane = ctx.waker.locate(entry)
    except Exception:  # noqa: BLE001 - a broken waker means "no verified pane"
        pane = None
    if pane is None or not is_pane_id(pane):
        return inert(f"✗ {target.label}: no verified tmux pane (not in tmux, moved, or exited)")
    if inside_tmux:
        steps: list[tuple[str, ...]] = [
            ("select-window", "-t", pane),
            ("select-pane", "-t", pane),
            ("switch-client", "-t", pane),
        ]
    else:
        clients = tmux.run("list-clients", "-F", "#{client_name}")
        names = [c for c in clients.stdout.split("\n") if CLIENT_NAME.match(c)] if clients.ok else []
        if len(names) != 1:
            return inert(f"✗ {target.label}: no single tmux client to move; run: tmux attach -t {pane}")
        steps = [("switch-client", "-c", names[0], "-t", pane)]
    for step in steps:
        result = tmux.run(*step)
        if not result.ok and not (inside_tmux and step[0] == "switch-client"):  # no attached client: fine
            return inert(
                f"✗ {target.label}: tmux {step[0]} failed: {result.stderr.strip() or result.failure}"
            )
    return inert(f"→ {target.label} at pane {pane}")
