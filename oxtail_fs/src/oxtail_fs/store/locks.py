"""Kernel file locks on sidecar files, with a bounded wait and a small state header.

Each operation opens its own descriptor and takes ``flock(2)`` on it, so
threads of one process exclude each other as well as other processes, and a
holder killed with SIGKILL releases the lock with its last descriptor.

We call ``fcntl.flock`` directly rather than through portalocker: on POSIX
portalocker's non-blocking exclusive lock is exactly this one call, and
importing portalocker (it reads its own version through importlib.metadata,
which loads the email package) cost 16-60 ms here -- on the path of a Claude
Code hook that runs before every tool call. A wait is bounded: past ``timeout_s`` the caller gets
:class:`~oxtail_core.errors.StoreBusy` and nothing is changed; a lock is never
stolen, and never held across a sleep of the caller.

The sidecar also carries 16 bytes of state, written only by the holder:

* ``seq`` — bumped by every change a waiter must notice (append, restore,
  merge). Readers use it as the change token without locking: a concurrent
  write can only make it look changed early, never hide a change.
* ``append_from`` — the data file's size when an append started, or -1. An
  append that dies half-way leaves it set; the next holder truncates the data
  file back to it, so an append is all or none even across SIGKILL.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from oxtail_core.errors import StoreBusy, StoreError
from oxtail_fs.store.atomic import require_regular, write_all
from oxtail_fs.store.layout import FILE_MODE

_STATE = struct.Struct("<qq")
_NO_APPEND = -1
_FIRST_RETRY_S = 0.0005
_APPEND_FLAGS = os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
_LOCK_FLAGS = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK


class HeldLock:
    """A lock this operation holds; valid only inside :func:`hold`."""

    def __init__(self, fd: int, path: Path) -> None:
        self.fd = fd
        self.path = path

    def unlink_if_linked(self) -> bool:
        """Remove the sidecar from its directory while we hold it, iff ``path`` is still our inode.

        Safe against every concurrent locker because :func:`hold` re-checks,
        after taking the flock, that its descriptor is still the linked file
        (and starts over if not): a process that opened the old inode before
        this unlink gets its flock only after we release, sees it is stale and
        locks the new file. So no two holders ever believe they hold "the" lock.
        """
        if not _still_linked(self.fd, self.path):
            return False
        os.unlink(self.path)
        return True

    def state(self) -> tuple[int, int]:
        """``(seq, append_from)``; a fresh sidecar reads as ``(0, -1)``."""
        raw = os.pread(self.fd, _STATE.size, 0)
        if len(raw) < _STATE.size:
            return 0, _NO_APPEND
        seq, append_from = _STATE.unpack(raw)
        return seq, append_from

    def mark_append(self, start: int) -> None:
        """Record that an append begins at byte ``start`` of the data file."""
        seq, _ = self.state()
        os.pwrite(self.fd, _STATE.pack(seq, start), 0)

    def commit(self, *, bump: bool) -> None:
        """Clear the append mark; with ``bump``, also tell waiters something changed."""
        seq, _ = self.state()
        os.pwrite(self.fd, _STATE.pack(seq + 1 if bump else seq, _NO_APPEND), 0)

    def undo_crashed_append(self, data: Path) -> None:
        """Truncate ``data`` back to where an append that died half-way started (all-or-none appends)."""
        _, append_from = self.state()
        if append_from == _NO_APPEND:
            return
        try:
            fd = os.open(data, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            pass
        else:
            try:
                if require_regular(fd, data).st_size > append_from:
                    os.ftruncate(fd, append_from)
            finally:
                os.close(fd)
        self.commit(bump=False)


def append_guarded(
    lock: HeldLock, data_path: Path, data: bytes, midway: Callable[[], None] | None = None
) -> None:
    """Append ``data`` to ``data_path`` all or none (``midway`` runs after half the bytes, for crash tests).

    A file whose last byte is not a newline ends in a torn record: a newline
    goes first so that record cannot swallow our first line.
    """
    fd = os.open(data_path, _APPEND_FLAGS, FILE_MODE)
    try:
        size = require_regular(fd, data_path).st_size
        lock.mark_append(size)
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data
        if midway is not None:
            half = len(data) // 2
            write_all(fd, data[:half])
            midway()
            data = data[half:]
        write_all(fd, data)
    finally:
        os.close(fd)


@contextmanager
def hold(path: Path, timeout_s: float, check_interval_s: float) -> Iterator[HeldLock]:
    """Hold the exclusive lock on ``path`` (created 0600 if missing) for the ``with`` body.

    A lock whose sidecar was unlinked while we waited (see
    :meth:`HeldLock.unlink_if_linked`) is dropped and the linked one taken
    instead, within the same deadline.
    """
    deadline = time.monotonic() + max(timeout_s, 0.0)
    while True:
        fd = os.open(path, _LOCK_FLAGS, FILE_MODE)
        try:
            require_regular(fd, path)
            _acquire(fd, path, deadline - time.monotonic(), check_interval_s)
            if _still_linked(fd, path):
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    try:
        yield HeldLock(fd, path)
    finally:
        os.close(fd)  # closing the only descriptor releases the flock


def _still_linked(fd: int, path: Path) -> bool:
    try:
        linked = os.lstat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (linked.st_dev, linked.st_ino) == (mine.st_dev, mine.st_ino)


def _acquire(fd: int, path: Path, timeout_s: float, check_interval_s: float) -> None:
    deadline = time.monotonic() + max(timeout_s, 0.0)
    pause = _FIRST_RETRY_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise StoreError(f"cannot lock {path}: {exc}") from exc
        left = deadline - time.monotonic()
        if left <= 0:
            raise StoreBusy(str(path))
        time.sleep(min(pause, left))
        pause = check_interval_s


def read_seq(path: Path) -> int:
    """The sidecar's change counter, read without locking (0 if there is no sidecar yet).

    A planted link, FIFO or unreadable sidecar also reads as 0 ("no change"):
    the next operation that locks it refuses it with a StoreError.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return 0
    try:
        raw = os.pread(fd, _STATE.size, 0)
    except OSError:
        return 0
    finally:
        os.close(fd)
    return _STATE.unpack(raw)[0] if len(raw) == _STATE.size else 0
