"""The live process tree: parents, start times and liveness of local processes.

A pid alone names a process only until it exits; the kernel may hand the same
number to an unrelated process later. ``(pid, create_time)`` names one process
for good, so every identity check here compares the start time when one is
known. Parent lookups read ``/proc/<pid>/stat`` directly (about 30 µs a hop,
several times cheaper than psutil) because a wake walks the tree on every call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar

import psutil

MAX_HOPS = 64
"""Ancestry walks stop after this many steps, so a ppid cycle (or a corrupt table) terminates."""

START_TOLERANCE_S = 0.05
"""create_time has clock-tick resolution (10 ms); a registered start matches within this."""

T = TypeVar("T")


def parse_ppid(stat: str) -> int:
    """The parent pid from the text of ``/proc/<pid>/stat``.

    The second field is the command name in parentheses and may itself contain
    spaces and parentheses (``1 (a) (b) S 7 ...``), so the fields after it are
    found after the *last* ``)``. Raises ValueError on text of any other shape.
    """
    _, sep, rest = stat.rpartition(")")
    fields = rest.split()
    if not sep or len(fields) < 2:
        raise ValueError(f"not a /proc stat line: {stat[:80]!r}")
    return int(fields[1])


def ppid_of(pid: int) -> int | None:
    """The parent of ``pid``, or None if the process does not exist (or cannot be read)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
            return parse_ppid(f.read())
    except (OSError, ValueError):
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


def process_start(pid: int) -> float | None:
    """When ``pid`` was created (seconds since the epoch, as psutil reports it), or None if it is gone."""
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
