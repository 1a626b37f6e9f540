"""File primitives whose crash behaviour the store relies on.

A reader or a crasher sees a file replaced by :func:`write_atomic` either
complete-old or complete-new (temp file in the same directory, then rename):
a kill leaves at most a stray ``.tmp`` file, never a half-written record.
Every file is created 0600.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from oxtail_fs.layout import FILE_MODE

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW


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


def write_atomic(path: Path, data: bytes, *, fsync: bool) -> None:
    """Replace ``path`` with ``data`` all at once."""
    tmp = temp_name(path)
    try:
        write_new(tmp, data, fsync=fsync)
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
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
        _unlink_quietly(tmp)
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
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        return None if len(data) > limit else data
    finally:
        os.close(fd)


def read_all(path: Path) -> bytes:
    """The whole file, or ``b""`` if it does not exist."""
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        return b""


def inode(path: Path) -> int | None:
    """The file's inode number, None if absent: a rename-replace always changes it."""
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


def sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
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


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
