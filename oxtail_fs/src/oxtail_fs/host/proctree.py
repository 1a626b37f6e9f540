"""The live process tree: parents, start times and liveness of local processes.

A pid alone names a process only until it exits; the kernel may hand the same
number to an unrelated process later. ``(pid, create_time)`` names one process
for good, so every identity check here compares the start time when one is
known. Parent lookups read ``/proc/<pid>/stat`` directly (about 30 µs a hop,
several times cheaper than psutil) because a wake walks the tree on every call.

Start times and liveness come from the same file on Linux, with psutil's own
arithmetic (boot time + start ticks / clock rate, so the values are equal to
``psutil.Process.create_time()``), and from psutil elsewhere. That keeps
psutil (about 12 ms to import) off the path of a Claude Code hook.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar

MAX_HOPS = 64
"""Ancestry walks stop after this many steps, so a ppid cycle (or a corrupt table) terminates."""

START_TOLERANCE_S = 0.05
"""create_time has clock-tick resolution (10 ms); a registered start matches within this."""

T = TypeVar("T")


def _stat_fields(stat: str, need: int) -> list[str]:
    """The fields of a ``/proc/<pid>/stat`` text after the command name (state first).

    The command name is in parentheses and may itself contain spaces and
    parentheses (``1 (a) (b) S 7 ...``), so the fields are found after the
    *last* ``)``. Raises ValueError on text of any other shape (or with fewer
    than ``need`` fields).
    """
    _, sep, rest = stat.rpartition(")")
    fields = rest.split()
    if not sep or len(fields) < need:
        raise ValueError(f"not a /proc stat line: {stat[:80]!r}")
    return fields


def parse_ppid(stat: str) -> int:
    """The parent pid from the text of ``/proc/<pid>/stat``."""
    return int(_stat_fields(stat, 2)[1])


def _read_stat(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


@functools.cache
def _boot_time() -> float | None:
    try:
        with open("/proc/stat", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def _proc_facts(pid: int) -> tuple[str, float] | None:
    """``(state, create_time)`` of ``pid`` from /proc, or None if it is gone or /proc cannot tell."""
    text = _read_stat(pid)
    boot = _boot_time()
    if text is None or boot is None:
        return None
    fields = _stat_fields(text, 20)
    return fields[0], boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def ppid_of(pid: int) -> int | None:
    """The parent of ``pid``, or None if the process does not exist (or cannot be read)."""
    text = _read_stat(pid)
    try:
        return None if text is None else parse_ppid(text)
    except ValueError:
        return None


def ancestry(pid: int, parent_of: Callable[[int], int | None] = ppid_of) -> Iterator[int]:
    """``pid`` and then its ancestors, nearest first, excluding init (pid 1) and the kernel (pid 0).

    At most :data:`MAX_HOPS` pids are produced; an unknown parent ends the walk.
    """
    current: int | None = pid
    for _ in range(MAX_HOPS):
        if current is None or current <= 1:
            return
        yield current
        current = parent_of(current)


def nearest_ancestor_in(
    pid: int, wanted: Mapping[int, T], parent_of: Callable[[int], int | None] = ppid_of
) -> T | None:
    """The value of the nearest ancestor-or-self of ``pid`` that is a key of ``wanted``.

    An empty ``wanted`` answers None without reading the process table.
    """
    if not wanted:
        return None
    for ancestor in ancestry(pid, parent_of):
        if ancestor in wanted:
            return wanted[ancestor]
    return None


def _has_proc() -> bool:
    return _boot_time() is not None


def process_start(pid: int) -> float | None:
    """When ``pid`` was created (seconds since the epoch, as psutil reports it), or None if it is gone."""
    if _has_proc():
        try:
            facts = _proc_facts(pid)
        except ValueError:
            return None
        return None if facts is None else facts[1]
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.Error, ValueError):
        return None


def is_alive(pid: int, process_start: float | None = None) -> bool:
    """True iff ``pid`` runs (a zombie has finished) and, when given, started at ``process_start``.

    A process we may not inspect still counts as alive, as a signal-0 probe
    answering EPERM would, but only when no start time has to be confirmed:
    an identity that cannot be checked is not assumed.
    """
    if isinstance(pid, bool) or pid <= 0:
        return False
    if _has_proc():
        try:
            facts = _proc_facts(pid)
        except ValueError:
            return False
        if facts is None:
            return False
        state, started = facts
        if state == "Z":
            return False
        return process_start is None or abs(started - process_start) <= START_TOLERANCE_S
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        if process_start is None:
            return True
        return abs(float(proc.create_time()) - process_start) <= START_TOLERANCE_S
    except psutil.AccessDenied:
        return process_start is None
    except psutil.Error:
        return False


def cmdline_of(pid: int) -> tuple[str, ...] | None:
    """The argument vector of ``pid`` (``/proc/<pid>/cmdline``, else psutil), or None if unreadable."""
    if _has_proc():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                raw = f.read(64 << 10)
        except OSError:
            return None
        return tuple(arg.decode("utf-8", "replace") for arg in raw.split(b"\0") if arg)
    import psutil

    try:
        return tuple(psutil.Process(pid).cmdline())
    except (psutil.Error, OSError):
        return None


SERVER_SCRIPT = "oxtail-mcp"
SERVER_MODULE = "oxtail_mcp"
_ARGV_LOOKAHEAD = 4


def is_oxtail_server(pid: int) -> bool:
    """Whether ``pid`` runs our MCP server: the ``oxtail-mcp`` script (directly or as what its
    interpreter runs) or ``python -m oxtail_mcp``.

    A wake is typed only into the pane of such a process: a forged registry
    entry naming a shell, an editor or any other program never gets keystrokes
    (issue 15 item 10). A same-user process can still name itself
    ``oxtail-mcp``; that is T2 and out of what a command line can prove.
    """
    argv = cmdline_of(pid)
    if not argv:
        return False
    if os.path.basename(argv[0]) == SERVER_SCRIPT:
        return True
    rest = iter(argv[1 : _ARGV_LOOKAHEAD + 1])  # an interpreter's options, then what it runs
    for arg in rest:
        if arg == "-m":
            return next(rest, None) == SERVER_MODULE
        if arg == "-c":
            return False
        if not arg.startswith("-"):
            return os.path.basename(arg) == SERVER_SCRIPT
    return False


def parent_of(pid: int) -> tuple[int, float | None] | None:
    """``pid``'s parent and that parent's start time, or None when the process is gone or unreadable.

    A server's parent is its client process (the claim rule's "who launched
    you"); a parent read here is the kernel's word, never an entry's.
    """
    parent = ppid_of(pid)
    if parent is None or parent <= 0:
        return None
    return parent, process_start(parent)


def working_dir(pid: int) -> str | None:
    """Where ``pid`` really works (``/proc/<pid>/cwd``), or None when the OS will not say.

    None means "cannot tell" (no /proc, another user's process, a process that
    is gone): the caller falls back to what the entry reports.
    """
    if not _has_proc():
        return None
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None
