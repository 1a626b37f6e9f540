"""A small tmux client: argument vectors only, stdin closed, every call bounded by a timeout.

Nothing a peer wrote ever reaches tmux unchecked: pane targets must be
``%<digits>`` (checked here, before the argument vector is built) and typed
text is sent with ``-l --`` after removing control characters, so no key name,
flag or newline in it can do more than print. What a pane shows is read back
(:meth:`Tmux.capture`) bounded: its visible screen only, at most
:data:`CAPTURE_MAX_CHARS` of it.
"""

from __future__ import annotations

import subprocess
import unicodedata

import attrs

from oxtail_core.ids import is_pane_id

DEFAULT_TIMEOUT_S = 2.0
NOT_FOUND = "tmux not found"
CAPTURE_MAX_CHARS = 65_536
"""The most of a captured screen kept: its end, where both clients draw their status line."""


@attrs.frozen
class TmuxResult:
    """What one tmux invocation produced.

    ``returncode`` is None when tmux did not run to completion; ``failure`` then
    says why (:data:`NOT_FOUND` for a missing executable, else the exception text).
    """

    returncode: int | None
    stdout: str = ""
    stderr: str = ""
    failure: str | None = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@attrs.frozen
class TmuxSession:
    """One row of ``list-sessions`` (discovery §5.1)."""

    name: str
    path: str
    attached: bool
    created_at: int
    windows: int


@attrs.frozen
class PaneInfo:
    """One pane as ``list-panes`` reports it, for display only (selfheal.md §5.2, §7.2).

    ``activity_at`` (epoch seconds of the pane's last output, else its
    window's) moves on any repaint: it is never a liveness fact, only the
    "pane active N s ago" a person may see. ``window_name`` is whatever the
    pane's program set: show it through an inert filter.
    """

    window_name: str | None
    activity_at: int | None
    window_index: int | None


def _int_or_none(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def _int_or_zero(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0


def _typeable(text: str) -> str:
    """``text`` as the one ``send-keys -l`` argument that types exactly it, minus control characters.

    Control characters (newline, CR, tab, ESC, C-c, ...) become spaces: in a
    terminal they act (a newline submits, ESC starts a sequence, ``\\x03``
    interrupts) and a wake must only type. tmux reads an argument ending in
    ``;`` as a command separator and drops the ``;``; ``\\;`` is its escape for
    a literal one.
    """
    typed = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text)
    return typed[:-1] + "\\;" if typed.endswith(";") else typed


class Tmux:
    """Runs tmux against one server: the ambient one (``$TMUX``, else the default) or ``-L socket_name``."""

    def __init__(
        self, socket_name: str | None = None, executable: str = "tmux", timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> None:
        self.socket_name = socket_name
        self.executable = executable
        self.timeout_s = timeout_s

    def run(self, *args: str) -> TmuxResult:
        """Run one tmux command; never raises for tmux's own failures."""
        argv = [self.executable]
        if self.socket_name is not None:
            argv += ["-L", self.socket_name]
        argv += args
        try:
            proc = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                encoding="utf-8",
                errors="replace",
                timeout=self.timeout_s,
                check=False,
            )
        except FileNotFoundError:
            return TmuxResult(None, failure=NOT_FOUND)
        except (OSError, subprocess.SubprocessError) as exc:
            return TmuxResult(None, failure=str(exc))
        return TmuxResult(proc.returncode, proc.stdout, proc.stderr)

    # Panes --------------------------------------------------------------------
    def pane_pids(self) -> dict[int, str]:
        """``{pane_pid: pane_id}`` for every pane of the server; any failure gives ``{}``.

        Lines whose pid is not a positive integer or whose id is not ``%<digits>`` are skipped.
        """
        result = self.run("list-panes", "-a", "-F", "#{pane_pid}|#{pane_id}")
        panes: dict[int, str] = {}
        if not result.ok:
            return panes
        for line in result.stdout.splitlines():
            pid_text, _, pane = line.partition("|")
            pid = _int_or_zero(pid_text.strip())
            if pid > 0 and is_pane_id(pane.strip()):
                panes[pid] = pane.strip()
        return panes

    def pane_paths(self) -> dict[str, list[str]]:
        """``{session_name: [pane_current_path, ...]}`` (discovery §5.2); any failure gives ``{}``."""
        result = self.run("list-panes", "-a", "-F", "#{session_name}|#{pane_current_path}")
        paths: dict[str, list[str]] = {}
        if not result.ok:
            return paths
        for line in result.stdout.splitlines():
            name, _, path = line.partition("|")
            if name and path:
                paths.setdefault(name, []).append(path)
        return paths

    def pane_presence(self) -> dict[str, PaneInfo]:
        """``{pane_id: PaneInfo}`` for every pane of the server; any failure gives ``{}``.

        The window name comes last, so a tab inside it stays in it; a line
        whose id is not ``%<digits>`` is skipped.
        """
        result = self.run(
            "list-panes",
            "-a",
            "-F",
            "#{pane_id}\t#{pane_activity}\t#{window_activity}\t#{window_index}\t#{window_name}",
        )
        panes: dict[str, PaneInfo] = {}
        if not result.ok:
            return panes
        for line in result.stdout.splitlines():
            fields = line.split("\t", 4)
            if len(fields) != 5 or not is_pane_id(fields[0]):
                continue
            pane, pane_at, window_at, index, name = fields
            at = _int_or_none(pane_at) or _int_or_none(window_at)
            panes[pane] = PaneInfo(name or None, at, _int_or_none(index))
        return panes

    def capture(self, pane: str) -> str | None:
        """The visible screen of ``pane`` as text (wrapped lines joined), or None if refused or failed.

        No ``-e`` (escape sequences are not asked for) and no ``-S`` (no
        scrollback): what the screen shows now, bounded by its size; a screen
        beyond :data:`CAPTURE_MAX_CHARS` keeps its last characters.
        """
        if not is_pane_id(pane):
            return None
        result = self.run("capture-pane", "-p", "-J", "-t", pane)
        return result.stdout[-CAPTURE_MAX_CHARS:] if result.ok else None

    def session_of(self, pane: str) -> str | None:
        """The name of the session holding ``pane``; None for a bad id, a failure or empty output."""
        if not is_pane_id(pane):
            return None
        result = self.run("display-message", "-p", "-t", pane, "#{session_name}")
        return (result.stdout.strip() or None) if result.ok else None

    # Sessions -----------------------------------------------------------------
    def list_sessions(self) -> tuple[list[TmuxSession], str | None]:
        """Every session and an error string, with the semantics of discovery §5.1.

        No server is not an error (``[]``, None); a missing tmux is ``"tmux not found"``;
        anything else reports tmux's trimmed stderr.
        """
        result = self.run(
            "list-sessions",
            "-F",
            "#{session_name}|#{session_path}|#{session_created}|#{session_attached}|#{session_windows}",
        )
        if not result.ok:
            if "no server running" in result.stderr:
                return [], None
            return [], result.stderr.strip() or result.failure or "tmux failed"
        sessions = []
        for line in result.stdout.splitlines():
            # The three numeric fields cannot hold "|"; peel them off the right so a
            # "|" inside a path stays in the path.
            head = line.rsplit("|", 3)
            if len(head) != 4:
                continue
            name, _, path = head[0].partition("|")
            created, attached, windows = head[1:]
            if name and path:
                sessions.append(
                    TmuxSession(name, path, attached == "1", _int_or_zero(created), _int_or_zero(windows))
                )
        return sessions, None

    # Keystrokes ---------------------------------------------------------------
    def send_text(self, pane: str, text: str) -> bool:
        """Type ``text`` into ``pane`` literally, without submitting it; False if refused or failed."""
        if not is_pane_id(pane):
            return False
        return self.run("send-keys", "-t", pane, "-l", "--", _typeable(text)).ok

    def send_enter(self, pane: str) -> bool:
        """Press Enter in ``pane``; False if refused or failed."""
        if not is_pane_id(pane):
            return False
        return self.run("send-keys", "-t", pane, "Enter").ok
