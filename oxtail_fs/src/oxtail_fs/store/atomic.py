"""File primitives whose crash behaviour the store relies on.

A reader or a crasher sees a file replaced by :func:`write_atomic` either
complete-old or complete-new (temp file in the same directory, then rename):
a kill leaves at most a stray ``.tmp`` file, never a half-written record.
Every file is created 0600.

Hostile files (issue 15 items 7, 8, 13): every open here uses ``O_NOFOLLOW``
(a symlink at a state path is refused with ELOOP, never followed) and, for
reads, ``O_NONBLOCK`` plus an ``fstat`` check that the file is regular, so a
FIFO or a device planted where a record belongs is refused instead of hanging
or spinning; every read is capped. Temp names carry 48 random bits and are
created with ``O_EXCL``, so a link planted at a guessed name is never written
through.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import stat
from collections.abc import Sequence
from pathlib import Path

from oxtail_core.errors import StoreError
from oxtail_fs.store.layout import FILE_MODE

STATE_FILE_MAX_BYTES = 64 << 20
"""The most any inbox, ledger or journal read takes in (an inbox is capped at append far below)."""

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW


def _read_up_to(fd: int, count: int) -> bytes:
    """At most ``count`` bytes from ``fd``, in 1 MiB reads (a growing file cannot make us read more)."""
    chunks: list[bytes] = []
    left = count
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def temp_name(path: Path) -> Path:
    """A fresh sibling of ``path`` that no reader opens: ``<name>.<pid>.<hex12>.tmp``."""
    return path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is written (a regular-file write may be short)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_new(path: Path, data: bytes, *, fsync: bool) -> None:
    """Create ``path`` (it must not exist) holding ``data``."""
    fd = os.open(path, _CREATE, FILE_MODE)
    try:
        write_all(fd, data)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, fsync: bool, times_ns: tuple[int, int] | None = None) -> None:
    """Replace ``path`` with ``data`` all at once.

    ``times_ns`` (atime, mtime) is set on the temp file before the rename, so a
    record whose age is its mtime keeps its age across the rewrite.
    """
    tmp = temp_name(path)
    try:
        write_new(tmp, data, fsync=fsync)
        if times_ns is not None:
            os.utime(tmp, ns=times_ns, follow_symlinks=False)
        os.replace(tmp, path)
    except BaseException:
        unlink_quietly(tmp)
        raise
    if fsync:
        sync_dir(path.parent)


Piece = bytes | tuple[int, int]
"""Part of a file being rewritten: literal bytes, or the byte range ``[start, end)`` of a source file."""


def copy_range(src: int, dst: int, start: int, end: int) -> None:
    """Copy bytes ``[start, end)`` of ``src`` to ``dst``'s position, in the kernel where it can."""
    while start < end:
        try:
            done = os.copy_file_range(src, dst, end - start, start)
        except OSError:  # EXDEV, ENOSYS, EINVAL (an old kernel, a special fs): the plain way
            done = 0
        if done <= 0:
            chunk = os.pread(src, min(end - start, 1 << 20), start)
            if not chunk:
                return  # the source ended early (it was truncated): what was there is copied
            write_all(dst, chunk)
            done = len(chunk)
        start += done


def write_atomic_pieces(path: Path, pieces: Sequence[Piece], src: int, *, fsync: bool) -> None:
    """:func:`write_atomic` of the concatenated ``pieces``, ranges copied from ``src`` without
    passing through our memory (an inbox rewrite costs a kernel copy, not a parse)."""
    tmp = temp_name(path)
    try:
        fd = os.open(tmp, _CREATE, FILE_MODE)
        try:
            for piece in pieces:
                if isinstance(piece, bytes):
                    write_all(fd, piece)
                else:
                    copy_range(src, fd, *piece)
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        unlink_quietly(tmp)
        raise
    if fsync:
        sync_dir(path.parent)


def publish_new(path: Path, data: bytes, *, fsync: bool) -> bool:
    """Create ``path`` complete with ``data`` unless it exists: exclusive AND never seen half-written.

    The content goes to a temp file first and is published with ``link``,
    which fails if ``path`` exists; so exactly one of racing creators wins and
    no reader ever sees an empty record.
    """
    tmp = temp_name(path)
    try:
        write_new(tmp, data, fsync=fsync)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
    finally:
        unlink_quietly(tmp)
    if fsync:
        sync_dir(path.parent)
    return True


def read_bounded(path: Path, limit: int) -> bytes | None:
    """The content of a regular file of at most ``limit`` bytes; None if missing, larger or not a file.

    Opens with O_NOFOLLOW and never reads more than ``limit + 1`` bytes, so a
    huge or hostile file cannot exhaust memory.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            return None
        data = _read_up_to(fd, limit + 1)
        return None if len(data) > limit else data
    finally:
        os.close(fd)


def require_regular(fd: int, path: Path) -> os.stat_result:
    """``fstat`` of an open state file; StoreError unless it is a regular file. A looser mode is tightened."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise StoreError(f"refusing {path}: not a regular file (mode {stat.filemode(st.st_mode)})")
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.fchmod(fd, stat.S_IMODE(st.st_mode) & FILE_MODE)
    return st


def open_regular(path: Path, max_bytes: int) -> io.BufferedReader:
    """A reader of the regular file ``path`` that yields at most ``max_bytes`` bytes.

    For files we do not own (transcripts): no ``O_NOFOLLOW`` (a user may link
    a transcript), but ``O_NONBLOCK`` and a regular-file check, so a FIFO or
    ``/dev/zero`` is refused (StoreError) instead of hanging or spinning.
    FileNotFoundError passes through.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise StoreError(f"refusing {path}: not a regular file")
        return io.BufferedReader(_Capped(fd, max_bytes))
    except BaseException:
        os.close(fd)
        raise


class _Capped(io.RawIOBase):
    """A raw reader over ``fd`` that reports end of file after ``left`` bytes."""

    def __init__(self, fd: int, left: int) -> None:
        self._fd = fd
        self._left = left

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        want = min(len(buffer), self._left)
        if want <= 0:
            return 0
        data = os.read(self._fd, want)
        buffer[: len(data)] = data
        self._left -= len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


def read_all(path: Path, limit: int = STATE_FILE_MAX_BYTES) -> bytes:
    """The whole state file, or ``b""`` if it does not exist.

    StoreError for a symlink (ELOOP), a FIFO, a device or a file over
    ``limit`` bytes: such a file is refused, never followed, waited on or
    read without bound.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return b""
    try:
        st = require_regular(fd, path)
        if st.st_size > limit:
            raise StoreError(f"refusing {path}: {st.st_size} bytes (at most {limit})")
        data = _read_up_to(fd, limit + 1)
        if len(data) > limit:
            raise StoreError(f"refusing {path}: over {limit} bytes")
        return data
    finally:
        os.close(fd)


def inode(path: Path) -> int | None:
    """The file's inode number, None if absent: a rename-replace always changes it."""
    try:
        return os.lstat(path).st_ino
    except FileNotFoundError:
        return None


def sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def unlink_missing_ok(path: Path) -> bool:
    """Remove ``path``; False if it was already gone."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


def truncate_to(path: Path, size: int) -> None:
    """Cut the regular file ``path`` back to ``size`` bytes (undo an append that must not stand)."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if require_regular(fd, path).st_size > size:
            os.ftruncate(fd, size)
    finally:
        os.close(fd)


def unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
