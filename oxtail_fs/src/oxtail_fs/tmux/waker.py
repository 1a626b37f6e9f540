"""The tmux waker: types the wake line into the pane that really hosts a peer's server.

A registry entry is written by the peer itself, so nothing in it is trusted
as a target (R64, R82): ``tmux_pane`` only says "this peer runs in tmux", the
target is recomputed on every wake by walking the live process tree up from
``server_pid``, and a pid whose start time differs from the registered one is
a different process that wakes nothing (R28). The registered process must
also be one of our servers (its command line) and sit strictly below the
pane's own process, as a server started by the agent in that pane does: an
entry naming the pane's shell, or any other program, is typed into never
(issue 15 item 10). The Codex gap and the debounce belong to the core; this
adapter only locates and types, and reads a located pane's screen back
(:meth:`TmuxWaker.capture`, selfheal.md §5.2): the same verified target, never
a pane an entry names.
"""

from __future__ import annotations

from collections.abc import Callable

from oxtail_core.ids import is_pane_id
from oxtail_core.model import RegistryEntry
from oxtail_fs.host import proctree
from oxtail_fs.tmux.client import Tmux


class TmuxWaker:
    """Implements :class:`oxtail_core.protocols.Waker` over one tmux server."""

    def __init__(
        self,
        tmux: Tmux,
        is_alive: Callable[[int, float | None], bool] = proctree.is_alive,
        parent_of: Callable[[int], int | None] = proctree.ppid_of,
        is_server: Callable[[int], bool] = proctree.is_oxtail_server,
    ) -> None:
        self._tmux = tmux
        self._is_alive = is_alive
        self._parent_of = parent_of
        self._is_server = is_server

    def locate(self, entry: RegistryEntry) -> str | None:
        """The pane hosting ``entry``'s registered process, from the live process tree only.

        Refused: an entry without a start time (its identity cannot be
        checked), a process that is not an oxtail server, and a pane's own
        process.

        The liveness check runs before the walk (a dead entry costs no tmux call)
        and again after it: if the registered process is still the same one
        afterwards, the parents read during the walk were its own, not those of
        a process that took over its pid meanwhile.
        """
        if not entry.tmux_pane:
            return None
        pid, start = entry.server_pid, entry.process_start
        if start is None or not self._is_alive(pid, start) or not self._is_server(pid):
            return None
        panes = self._tmux.pane_pids()
        if pid in panes:  # a pane's own process is a shell or a client, never a server below one
            return None
        pane = proctree.nearest_ancestor_in(pid, panes, self._parent_of)
        if pane is None or not is_pane_id(pane) or not self._is_alive(pid, start):
            return None
        return pane

    def send_text(self, target: str, text: str) -> bool:
        """Type ``text`` literally into pane ``target`` (control characters become spaces)."""
        return self._tmux.send_text(target, text)

    def send_enter(self, target: str) -> bool:
        """Press Enter in pane ``target``."""
        return self._tmux.send_enter(target)

    def capture(self, target: str) -> str | None:
        """What pane ``target`` shows now (bounded), or None when tmux refused or failed."""
        return self._tmux.capture(target)
