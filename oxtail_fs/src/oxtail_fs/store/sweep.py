"""The store's sweep: what killed processes leave behind, and empty inboxes nothing refers to.

Nothing else removes these (selfheal §4.3, §4.4): a temp file whose writer was
killed between writing and renaming, the lock sidecar of an inbox that is gone,
quarantine files that grow one per inbox ever used, and the empty inbox of a
session or process that no registry entry names any more.

========================================  ==============================================
artifact                                  removed when (lock taken)
========================================  ==============================================
``<name>.<pid>.<hex12>.tmp`` anywhere     its pid is not alive and it is ``TEMP_MIN_AGE_MS``
(top dirs, ``inflight/<stem>/``)          old (no lock: the name is its dead writer's alone)
``received/<h>.jsonl.tmp``                the ledger lock is free: the store's own repair
                                          runs, which also normalizes the ledger (try-lock)
``<stem>.jsonl.quarantine``               unchanged for ``QUARANTINE_MAX_AGE_MS`` (inbox
                                          lock, try-lock)
``<stem>.jsonl.lock``, no ``<stem>.jsonl``  no entry names the stem, no journal or batch of
                                          it, unchanged ``TEMP_MIN_AGE_MS`` (deleted held)
empty ``<stem>.jsonl`` (+ lock, empty     as above, inbox and lock unchanged for
``inflight/<stem>/``)                     ``INBOX_MIN_AGE_MS`` (inbox lock, try-lock)
========================================  ==============================================

"Any doubt keeps": a lock held by someone (never waited for, never stolen), a
registry file that does not parse (its inbox cannot be named, so no inbox is
collected in that pass), a journal or any file in the stem's in-flight
directory, a non-regular file, a pid that may be alive (ours, another user's)
all keep the file until a later sweep. Nothing is followed: directories are
checked with ``lstat`` and only regular files are removed, so a planted symlink
(to a directory or a file) is neither entered nor touched. The reference-check
is repeated under the inbox lock just before the unlink; an entry registered in
the microseconds between that check and the unlink still finds its (empty) inbox
recreated by its first append.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path

from oxtail_core.errors import StoreBusy
from oxtail_core.protocols import SweepReport
from oxtail_fs.store import journal
from oxtail_fs.store.atomic import unlink_missing_ok
from oxtail_fs.store.inbox import head_path
from oxtail_fs.store.layout import RECEIVED, TOP_DIRS, Layout, lock_path
from oxtail_fs.store.locks import hold
from oxtail_fs.store.names import INBOXES, INFLIGHT, JOURNAL

TEMP_MIN_AGE_MS = 10 * 60_000
"""A write takes milliseconds; ten minutes also covers a writer in another pid namespace (seen as dead)."""
INBOX_MIN_AGE_MS = 7 * 86_400_000
"""The reference's mailbox GC age (selfheal §4.3): an empty inbox unchanged for a week."""
QUARANTINE_MAX_AGE_MS = 30 * 86_400_000
"""Quarantined lines are never messages (torn, foreign, corrupt): kept a month after the last, for a human."""

TEMP_NAME = re.compile(r"^.+\.([1-9][0-9]{0,9})\.[0-9a-f]{12}\.tmp\Z", re.DOTALL)
LEDGER_TEMP = re.compile(r"^[0-9a-f]{32}\.jsonl\.tmp\Z")
INBOX_FILE = re.compile(r"^([sp]-[0-9a-f]{32})\.jsonl(\.lock|\.quarantine|\.head)?\Z")

Referenced = Callable[[], frozenset[str] | None]
"""The inbox stems some registry entry names, or None if an entry could not be read (doubt)."""
LedgerRepair = Callable[[Path], bool]
"""Run the store's ledger repair under a try-lock; False if the lock was held."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # another user's process (EPERM): alive
    return True


def _regular(path: Path) -> os.stat_result | None:
    """``lstat`` of a regular file, else None (missing, a link, a FIFO, a directory)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return st if stat.S_ISREG(st.st_mode) else None


def _age_ms(st: os.stat_result, now_ms: int) -> int:
    return now_ms - st.st_mtime_ns // 1_000_000


def _real_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


class Sweeper:
    """One pass over a state directory (see the module table); each pass is independent and idempotent."""

    def __init__(
        self,
        layout: Layout,
        referenced: Referenced,
        repair_ledger: LedgerRepair,
        check_interval_s: float,
    ) -> None:
        self._layout = layout
        self._referenced = referenced
        self._repair_ledger = repair_ledger
        self._interval = check_interval_s

    def sweep(self, now_ms: int) -> SweepReport:
        temps, doubt = self._temps(now_ms)
        quarantines, locks, inboxes, doubt2 = self._inboxes(now_ms)
        return SweepReport(
            temps=temps, locks=locks, quarantines=quarantines, inboxes=inboxes, kept_in_doubt=doubt + doubt2
        )

    # Temp files ---------------------------------------------------------------------------
    def _temp_dirs(self) -> list[Path]:
        """Every real top directory and every real ``inflight/<stem>/`` (links are never entered)."""
        dirs = [self._layout.dir(name) for name in TOP_DIRS if _real_dir(self._layout.dir(name))]
        inflight = self._layout.dir(INFLIGHT)
        if inflight in dirs:
            with os.scandir(inflight) as listing:
                dirs += [Path(d.path) for d in listing if d.is_dir(follow_symlinks=False)]
        return dirs

    def _temps(self, now_ms: int) -> tuple[int, int]:
        removed = doubt = 0
        for directory in self._temp_dirs():
            with os.scandir(directory) as listing:
                names = [d.name for d in listing]
            for name in names:
                path = directory / name
                if directory.name == RECEIVED and LEDGER_TEMP.match(name):
                    if _regular(path) is None:
                        continue
                    if self._repair_ledger(path.with_name(name[: -len(".tmp")])):
                        removed += _regular(path) is None
                    else:
                        doubt += 1
                    continue
                match = TEMP_NAME.match(name)
                st = _regular(path) if match else None
                if match is None or st is None:
                    continue
                if _age_ms(st, now_ms) < TEMP_MIN_AGE_MS or _pid_alive(int(match.group(1))):
                    doubt += 1
                    continue
                removed += unlink_missing_ok(path)
        return removed, doubt

    # Inboxes, their locks and quarantines ----------------------------------------------------------
    def _inboxes(self, now_ms: int) -> tuple[int, int, int, int]:
        directory = self._layout.dir(INBOXES)
        if not _real_dir(directory):
            return 0, 0, 0, 0
        with os.scandir(directory) as listing:
            stems = sorted({m.group(1) for d in listing if (m := INBOX_FILE.match(d.name))})
        referenced = self._referenced()
        quarantines = locks = inboxes = doubt = 0
        for stem in stems:
            outcome = self._one_stem(stem, now_ms, referenced)
            if outcome is None:
                doubt += 1
                continue
            gone_q, gone = outcome
            quarantines += gone_q
            if gone == "inbox":
                inboxes += 1
            elif gone == "lock":
                locks += 1
        return quarantines, locks, inboxes, doubt

    def _paths(self, stem: str) -> tuple[Path, Path, Path]:
        inbox = self._layout.stem_inbox(stem)
        return inbox, lock_path(inbox), inbox.with_name(f"{stem}.jsonl.quarantine")

    def _quarantine_due(self, quarantine: Path, now_ms: int) -> bool:
        st = _regular(quarantine)
        return st is not None and _age_ms(st, now_ms) >= QUARANTINE_MAX_AGE_MS

    def _collectable(
        self, stem: str, now_ms: int, referenced: frozenset[str] | None, *, lock_age: bool = True
    ) -> bool:
        """Unreferenced, empty or absent, old enough; checked before and again under the lock (where
        the sidecar's age no longer counts: taking the lock may have created or touched it)."""
        if referenced is None or stem in referenced:
            return False
        inbox, lock, _ = self._paths(stem)
        inbox_st, lock_st = _regular(inbox), _regular(lock)
        if os.path.lexists(inbox) and (inbox_st is None or inbox_st.st_size):
            return False  # mail (or something that is not ours) waits: never touched
        if os.path.lexists(lock) and lock_st is None:
            return False
        if inbox_st is not None and _age_ms(inbox_st, now_ms) < INBOX_MIN_AGE_MS:
            return False
        need = INBOX_MIN_AGE_MS if inbox_st is not None else TEMP_MIN_AGE_MS
        return not lock_age or lock_st is None or _age_ms(lock_st, now_ms) >= need

    def _one_stem(
        self, stem: str, now_ms: int, referenced: frozenset[str] | None
    ) -> tuple[int, str | None] | None:
        """``(quarantines removed, "inbox" | "lock" | None)``, or None when a held lock kept everything."""
        inbox, lock, quarantine = self._paths(stem)
        collect = self._collectable(stem, now_ms, referenced)
        if not collect and not self._quarantine_due(quarantine, now_ms):
            return 0, None
        had_lock = _regular(lock) is not None
        try:
            with hold(lock, 0.0, self._interval) as held:
                held.undo_crashed_append(inbox)
                gone_q = 0
                if self._quarantine_due(quarantine, now_ms):
                    gone_q = int(unlink_missing_ok(quarantine))
                if not (collect and self._collectable(stem, now_ms, self._referenced(), lock_age=False)):
                    return gone_q, None
                if self._in_use(stem):
                    return gone_q, None
                had_inbox = unlink_missing_ok(inbox)
                unlink_missing_ok(head_path(inbox))  # where its unread part began: nothing is unread
                with contextlib.suppress(FileNotFoundError):
                    os.rmdir(self._layout.inflight_dir(stem))
                dropped = held.unlink_if_linked()
                return gone_q, "inbox" if had_inbox else "lock" if dropped and had_lock else None
        except StoreBusy:
            return None

    def _in_use(self, stem: str) -> bool:
        """A journal naming the stem (or its set-aside ``.corrupt``), or anything in its in-flight dir."""
        journals = self._layout.dir(JOURNAL)
        try:
            names = os.listdir(journals)
        except FileNotFoundError:
            names = []
        if any(stem in journal.stems_of(name) or stem in name for name in names):
            return True
        inflight = self._layout.inflight_dir(stem)
        if not os.path.lexists(inflight):
            return False
        return not _real_dir(inflight) or bool(os.listdir(inflight))
