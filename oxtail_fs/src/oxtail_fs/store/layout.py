"""Where every piece of state lives under the state directory, and how names are made.

No file name is ever built from a caller's string: session ids, request ids,
reply_to values and inbox keys only reach the filesystem through ``hash32`` /
``pair_key`` (32 lowercase hex characters), batch ids and the message ids that
name receipts and outbox records must be hex16, and registry pids must be
positive integers. So no input can escape ``home``,
collide with another record or become a hidden or lock file.

Every directory we use under ``home`` must be a real directory: a symlink (or
any other file) at ``inboxes/``, ``claims/``, ``inflight/<stem>`` ... is
refused with a StoreError, never followed (issue 15 item 7). ``home`` itself
may be a link (a user's dotfiles); its contents are ours to check.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from oxtail_core.errors import StoreError
from oxtail_core.ids import HEX16, hash32, pair_key
from oxtail_core.model import ClaimRecord
from oxtail_core.protocols import InboxId
from oxtail_fs.store.names import (
    ACTIVITY,
    INBOX_SUFFIX,
    INBOXES,
    INFLIGHT,
    JOURNAL,
    REGISTRY,
    RESERVATIONS,
    SESSIONS,
    activity_name,
    process_stem,
    session_stem,
)

DIR_MODE = 0o700
FILE_MODE = 0o600

RECEIVED = "received"
PENDING = "pending-ask"
AUTOWAKE = "autowake"
CLAIMS = "claims"
RECEIPTS = "receipts"
OUTBOX = "outbox"
PENDING_WAKE = "pending-wake"
SELF_WAKE = "self-wake"
WAITER_WAKE = "waiter-wake"
TOP_DIRS = (
    INBOXES,
    INFLIGHT,
    JOURNAL,
    RECEIVED,
    PENDING,
    AUTOWAKE,
    ACTIVITY,
    REGISTRY,
    CLAIMS,
    RECEIPTS,
    OUTBOX,
    RESERVATIONS,
    PENDING_WAKE,
    SELF_WAKE,
    WAITER_WAKE,
)

REGISTRY_NAME = re.compile(r"^[1-9][0-9]{0,9}\.json\Z")


def inbox_stem(inbox: InboxId) -> str:
    """``s-<hash32(session id)>`` or ``p-<hash32("<pid>-<started_at>")>``; the prefix keeps kinds apart."""
    return session_stem(inbox.key) if inbox.kind == "session" else process_stem(inbox.key)


def is_batch_id(batch_id: object) -> bool:
    """Batch ids are minted by ``new_id`` (hex16); anything else never names a file."""
    return isinstance(batch_id, str) and bool(HEX16.match(batch_id))


def is_message_id(message_id: object) -> bool:
    """Receipts and outbox records are named by the message id itself, so only hex16 ids have one."""
    return isinstance(message_id, str) and bool(HEX16.match(message_id))


def is_registry_pid(pid: object) -> bool:
    return isinstance(pid, int) and not isinstance(pid, bool) and 0 < pid < 10**10


class Layout:
    """Paths under one state directory; creating a directory fixes its mode to 0700."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home)

    def dir(self, name: str) -> Path:
        return self.home / name

    def ensure_dir(self, path: Path) -> Path:
        """Create ``path`` (and ``home``) with mode 0700 if missing; an existing one must be a real directory.

        StoreError for a symlink or a non-directory (never followed); an
        existing directory looser than 0700 is tightened.
        """
        try:
            os.mkdir(path, DIR_MODE)
        except FileExistsError:
            return self._verified(path)
        except FileNotFoundError:
            self.ensure_dir(path.parent)
            try:
                os.mkdir(path, DIR_MODE)
            except FileExistsError:
                return self._verified(path)
        os.chmod(path, DIR_MODE)  # the umask may have removed bits we want, never added any
        return self._verified(path)

    def _verified(self, path: Path) -> Path:
        if path == self.home:
            return path
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode):
            kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a directory"
            raise StoreError(f"refusing state directory {path}: it is {kind} (never followed)")
        if stat.S_IMODE(st.st_mode) & 0o077:
            os.chmod(path, stat.S_IMODE(st.st_mode) & DIR_MODE, follow_symlinks=False)
        return path

    def existing_dir(self, path: Path) -> bool:
        """Whether ``path`` exists as a real directory; StoreError if something else is there."""
        try:
            self._verified(path)
        except FileNotFoundError:
            return False
        return True

    def tighten(self) -> None:
        """Make ``home`` and every top directory that exists private (0700): mail is not for other users."""
        for path in (self.home, *(self.home / name for name in TOP_DIRS)):
            try:
                st = os.stat(path) if path == self.home else os.lstat(path)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) & 0o077:
                os.chmod(path, stat.S_IMODE(st.st_mode) & 0o700)

    # Inboxes ------------------------------------------------------------------------
    def inbox(self, inbox: InboxId) -> Path:
        return self.dir(INBOXES) / f"{inbox_stem(inbox)}{INBOX_SUFFIX}"

    def stem_inbox(self, stem: str) -> Path:
        return self.dir(INBOXES) / f"{stem}{INBOX_SUFFIX}"

    def inflight_dir(self, stem: str) -> Path:
        return self.dir(INFLIGHT) / stem

    def batch(self, stem: str, batch_id: str) -> Path:
        return self.inflight_dir(stem) / f"{batch_id}.json"

    # Other records ---------------------------------------------------------------------
    def ledger(self, session_id: str) -> Path:
        return self.dir(RECEIVED) / f"{hash32(session_id)}.jsonl"

    def receipt(self, message_id: str) -> Path:
        """``receipts/<message_id>``; the id must pass :func:`is_message_id` (ValueError otherwise)."""
        return self.dir(RECEIPTS) / _message_name(message_id)

    def outbox(self, message_id: str) -> Path:
        """``outbox/<message_id>``; the id must pass :func:`is_message_id` (ValueError otherwise)."""
        return self.dir(OUTBOX) / _message_name(message_id)

    def pending(self, requester: str, request_id: str) -> Path:
        return self.dir(PENDING) / f"p-{pair_key(requester, request_id)}"

    def dedupe(self, target: str, reply_to: str) -> Path:
        return self.dir(AUTOWAKE) / f"d-{pair_key(target, reply_to)}"

    def rate(self, target: str) -> Path:
        return self.dir(AUTOWAKE) / f"r-{hash32(target)}"

    def wake_intent(self, recipient: str, message_id: str) -> Path:
        """``pending-wake/w-<pair_key(recipient, message_id)>`` (the reference's name, selfheal §1.1)."""
        return self.dir(PENDING_WAKE) / f"w-{pair_key(recipient, message_id)}"

    def self_wake(self, session_id: str) -> Path:
        """The self-heal throttle stamp of one session (``self-wake/<hash32>``, the reference's name)."""
        return self.dir(SELF_WAKE) / hash32(session_id)

    def waiter_claim(self, target: str) -> Path:
        """The waiter-heal claim on one target, shared by all its waiters (``waiter-wake/<hash32>``)."""
        return self.dir(WAITER_WAKE) / hash32(target)

    def activity(self, session_id: str) -> Path:
        return self.dir(ACTIVITY) / activity_name(session_id)

    def legacy_activity(self, session_id: str) -> Path | None:
        """Where the reference's bash hooks keep the marker: the id with ``[^A-Za-z0-9_-]`` as ``_``.

        The substitution leaves no separator and no dot, so the name stays inside
        the directory; None where it would be no valid file name.
        """
        name = re.sub(r"[^A-Za-z0-9_-]", "_", session_id)
        return self.dir(ACTIVITY) / name if 0 < len(name.encode()) <= 255 else None

    def claim(self, record: ClaimRecord) -> Path:
        """``claims/<key>.json``: the key is a hash32, so the name is never the caller's text."""
        return self.dir(CLAIMS) / f"{record.key}.json"

    def registry(self, pid: int) -> Path:
        """``registry/<pid>.json``: our servers' entries, in a directory the reference never reads.

        The reference lists every ``sessions/<pid>.json`` as a peer and sends to
        its own mailbox, which we do not read; publishing elsewhere makes its
        sends to us fail visibly (``target-not-found``) instead of vanishing,
        and keeps its reaper away from our breadcrumbs.
        """
        return self.dir(REGISTRY) / f"{pid}.json"

    def legacy_registry(self, pid: int) -> Path:
        """``sessions/<pid>.json`` (read only): the reference's entries, and ours from before the move."""
        return self.dir(SESSIONS) / f"{pid}.json"


def _message_name(message_id: str) -> str:
    if not is_message_id(message_id):
        raise ValueError(f"not a hex16 message id: {message_id[:64]!r}")
    return message_id


def lock_path(data: Path) -> Path:
    """The sidecar lock of a data file (which is replaced by renames, so it cannot hold a lock itself)."""
    return data.with_name(data.name + ".lock")


def dir_lock(directory: Path) -> Path:
    """One lock for a directory of small records (its name cannot collide with a record name)."""
    return directory / ".lock"
