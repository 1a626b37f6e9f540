"""Reading, backing up and replacing the clients' config files so that none is ever half-written or lost.

A replacement is a temp file in the file's own directory, then a rename: a reader (Claude Code,
Codex) sees the old bytes or the new, never a mix. Through a symlink (dotfile managers) the link
stays and its target changes; the file's mode is kept.

Just before the rename the file is read again (:func:`reread`) and compared with the bytes the plan
was made from. Claude Code rewrites ``~/.claude.json`` itself, at any moment; a plan made from bytes it
has since replaced would throw its write away, so a mismatch aborts the replacement (the caller plans
again from the new bytes). What remains is the rename itself, microseconds after the compare.

A backup is a copy of the bytes being replaced, next to the file as named,
``<name>.oxtail-backup.<UTC stamp>`` (the naming of ``install-hook``), made only when the file is
about to change: a run that changes nothing leaves no backup.
"""

from __future__ import annotations

import datetime
import os
import time
from pathlib import Path

import attrs

from oxtail_mcp.commands.setup.errors import SetupError


@attrs.frozen
class Snapshot:
    """A file as it was read: its bytes (None: there was no file) and its permission bits."""

    path: Path
    data: bytes | None
    mode: int | None

    def text(self) -> str:
        """The content as text; a file that is not UTF-8 is refused rather than guessed at."""
        if self.data is None:
            return ""
        try:
            return self.data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SetupError(f"{self.path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc


def read(path: Path) -> Snapshot:
    try:
        with path.open("rb") as f:
            return Snapshot(path, f.read(), os.fstat(f.fileno()).st_mode & 0o777)
    except FileNotFoundError:
        return Snapshot(path, None, None)
    except OSError as exc:
        raise SetupError(f"cannot read {path}: {exc.strerror or exc}") from exc


SETTLE_PAUSE_S = 0.02
SETTLE_TRIES = 25


def read_settled(path: Path) -> Snapshot:
    """The file once two reads a moment apart agree: Claude Code writes ``~/.claude.json`` in place
    (truncate, then write), so one read can catch half a file, which would read as malformed."""
    snapshot = read(path)
    for _ in range(SETTLE_TRIES):
        time.sleep(SETTLE_PAUSE_S)
        again = read(path)
        if again.data == snapshot.data:
            return snapshot
        snapshot = again
    raise SetupError(f"{path} kept changing for {SETTLE_TRIES * SETTLE_PAUSE_S:.1f} s; re-run setup")


def reread(path: Path) -> bytes | None:
    """The compare step's read of ``path`` (None: no file). Tests substitute it to rewrite the file first."""
    return read(path).data


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable(path: Path) -> None:
    """Refuse now, before any file is touched, a file whose directory cannot take a temp file and a rename."""
    target = Path(os.path.realpath(path))
    for folder in {_nearest_existing(target.parent), _nearest_existing(path.parent)}:  # file, backup
        if not folder.is_dir():
            raise SetupError(f"cannot write {path}: {folder} is not a directory")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise SetupError(f"cannot write {path}: {folder} is not writable")
    if target.exists() and not target.is_file():
        raise SetupError(f"cannot write {path}: it is not a regular file")


def _stamp(now: datetime.datetime) -> str:
    return now.strftime("%Y-%m-%dT%H-%M-%S-") + f"{now.microsecond // 1000:03d}Z"


def _create(path: Path, data: bytes, mode: int | None) -> None:
    """A new file; one we create from nothing is private (``~/.claude.json`` holds account data, a
    ``config.toml`` may hold keys)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if mode is None else mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    if mode is not None:
        os.chmod(path, mode)


def backup(snapshot: Snapshot, now: datetime.datetime) -> Path | None:
    """Copy the bytes about to be replaced next to the file; None when there was no file to keep."""
    if snapshot.data is None:
        return None
    base = snapshot.path.with_name(f"{snapshot.path.name}.oxtail-backup.{_stamp(now)}")
    for n in range(100):
        candidate = base if n == 0 else base.with_name(f"{base.name}-{n}")
        try:
            _create(candidate, snapshot.data, snapshot.mode)
        except FileExistsError:
            continue
        return candidate
    raise SetupError(f"cannot back up {snapshot.path}: too many backups made this millisecond")


def replace(snapshot: Snapshot, new: bytes) -> bool:
    """Put ``new`` in place of the file if it still holds ``snapshot``'s bytes; else False (no write)."""
    target = Path(os.path.realpath(snapshot.path))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.oxtail-tmp-{os.urandom(6).hex()}")
    try:
        _create(tmp, new, snapshot.mode)
        if reread(snapshot.path) != snapshot.data:
            return False
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return True


def restore(snapshot: Snapshot, written: bytes) -> bool:
    """Undo a replacement of ours (rollback), unless someone has written the file since; True if undone."""
    if reread(snapshot.path) != written:
        return False
    if snapshot.data is None:
        Path(os.path.realpath(snapshot.path)).unlink()
        return True
    return replace(attrs.evolve(snapshot, data=written), snapshot.data)
