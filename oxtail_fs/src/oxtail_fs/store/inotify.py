"""Waiting for a directory to change: inotify through libc, a slow poll where it is missing.

Only the kernel interface is used (``inotify_init1`` / ``inotify_add_watch``
via ctypes), so there is no extra dependency. The watch is armed *before* the
caller's condition is first checked, so a change that lands between the check
and the wait still wakes us (no lost wakeup). Events are filtered by file
name, so a busy neighbour inbox costs a read of the event, not a re-check.
Where inotify is missing (or the per-user instance limit is reached) a slow
poll takes over.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import select
import struct
import time
import weakref
from collections.abc import Callable, Collection
from pathlib import Path

IN_MODIFY = 0x00000002
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_Q_OVERFLOW = 0x00004000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
WATCH_MASK = IN_CREATE | IN_MOVED_TO | IN_MODIFY | IN_CLOSE_WRITE | IN_DELETE

POLL_FALLBACK_S = 0.05
_EVENT = struct.Struct("iIII")


def _load_libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.inotify_init1.argtypes = [ctypes.c_int]
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _load_libc()


def _open_watch(directory: Path) -> int | None:
    """An inotify descriptor watching ``directory``, or None if the kernel will not give one."""
    if _LIBC is None:
        return None
    fd = int(_LIBC.inotify_init1(IN_NONBLOCK | IN_CLOEXEC))
    if fd < 0:
        return None  # e.g. the per-user instance limit; the poll still works
    if _LIBC.inotify_add_watch(fd, os.fsencode(directory), WATCH_MASK) < 0:
        os.close(fd)
        return None
    return fd


def _names(buffer: bytes) -> tuple[list[str], bool]:
    """File names in a buffer of inotify events, and whether the queue overflowed."""
    names: list[str] = []
    overflow = False
    offset = 0
    while offset + _EVENT.size <= len(buffer):
        _, mask, _, length = _EVENT.unpack_from(buffer, offset)
        start = offset + _EVENT.size
        names.append(buffer[start : start + length].rstrip(b"\0").decode("utf-8", "replace"))
        overflow = overflow or bool(mask & IN_Q_OVERFLOW)
        offset = start + length
    return names, overflow


class DirWatch:
    """A standing inotify watch on one directory, reused by every wait of one thread.

    Reused because closing an inotify descriptor waits for a kernel RCU grace
    period (milliseconds), which would otherwise sit between a change and the
    waiter noticing it. Owned by one thread of one process: a forked child or
    another thread must open its own, or they would steal each other's events.
    """

    def __init__(self, directory: Path) -> None:
        self.pid = os.getpid()
        self.fd = _open_watch(directory)
        if self.fd is not None:
            weakref.finalize(self, os.close, self.fd)

    def wait_until(self, prefixes: Collection[str], changed: Callable[[], bool], timeout_s: float) -> bool:
        """Block until ``changed()`` is true or ``timeout_s`` passes; True if it changed.

        ``changed`` is re-checked whenever a file whose name starts with one of
        ``prefixes`` is touched, and every :data:`POLL_FALLBACK_S` when inotify
        is unavailable. Stale events are discarded *before* the first check, so
        a change after that check is always seen.
        """
        deadline = time.monotonic() + max(timeout_s, 0.0)
        if self.fd is not None:
            _drain(self.fd)
        if changed():
            return True
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self.fd is None:
                time.sleep(min(POLL_FALLBACK_S, left))
            elif not _relevant_event(self.fd, prefixes, left):
                continue
            if changed():
                return True


def _drain(fd: int) -> None:
    with contextlib.suppress(BlockingIOError):
        while os.read(fd, 65536):
            pass


def _relevant_event(fd: int, prefixes: Collection[str], timeout_s: float) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    if not poller.poll(max(1, int(timeout_s * 1000 + 0.999))):
        return False
    relevant = False
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return relevant
        names, overflow = _names(chunk)
        relevant = relevant or overflow or any(n.startswith(tuple(prefixes)) for n in names)
