"""The filesystem Store: durable, multi-process state under one private directory.

Behaves exactly like :class:`oxtail_core.memory.MemoryStore` (same results,
same edge cases), with three additions that only a shared filesystem needs:

* every method is atomic across processes (kernel ``flock`` on sidecar files,
  bounded waits: a timeout is :class:`StoreBusy`, never a steal);
* every change survives SIGKILL at any instant without loss, duplication or a
  torn record (see docs/protocol.md for the rules and the journals);
* callers only ever see :class:`StoreError` / :class:`StoreBusy`: an
  ``OSError`` never escapes, and malformed files are skipped, not fatal.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import stat
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, cast

import attrs

from oxtail_core.convert import (
    ShapeError,
    envelope_from_line,
    from_wire,
    legacy_entry_from_wire,
    to_wire,
)
from oxtail_core.errors import StoreBusy, StoreError
from oxtail_core.foreign import is_foreign
from oxtail_core.ids import canonical_session_id
from oxtail_core.limits import INBOX_MAX_BYTES
from oxtail_core.model import (
    ActivityMarker,
    ActivityStatus,
    ClaimRecord,
    CloseOutcome,
    Envelope,
    LedgerRecord,
    Obligation,
    OutboxRecord,
    PendingAsk,
    PendingWake,
    Receipt,
    RegistryEntry,
    claim_is_stale,
    one_per_message,
    same_incarnation,
)
from oxtail_core.protocols import Batch, Holder, InboxId, ReservationStep, Selector, SweepReport, T
from oxtail_core.reservations import Reservation
from oxtail_core.wire import WireError, dumps, loads, utf8
from oxtail_fs.store import ledger, reservation_file
from oxtail_fs.store.atomic import (
    publish_new,
    read_all,
    read_bounded,
    sync_dir,
    truncate_to,
    unlink_missing_ok,
    unlink_quietly,
    write_atomic,
    write_new,
)
from oxtail_fs.store.inbox import CrashHook, InboxFiles
from oxtail_fs.store.layout import (
    AUTOWAKE,
    CLAIMS,
    OUTBOX,
    PENDING,
    PENDING_WAKE,
    RECEIPTS,
    REGISTRY_NAME,
    SELF_WAKE,
    TOP_DIRS,
    WAITER_WAKE,
    Layout,
    dir_lock,
    inbox_stem,
    is_message_id,
    is_registry_pid,
    lock_path,
)
from oxtail_fs.store.locks import HeldLock, append_guarded, hold
from oxtail_fs.store.names import (
    REGISTRY,
    REGISTRY_MAX_BYTES,
    RESERVATIONS,
    RESERVATIONS_MAX_BYTES,
    SESSIONS,
    reservations_name,
)
from oxtail_fs.store.sweep import Sweeper

P = ParamSpec("P")
R = TypeVar("R")

RECORD_MAX_BYTES = 64 << 10
_PENDING_NAME = "p-"
_WAKE_PREFIXES = ("d-", "r-")
_STAMP_NAME = re.compile(r"^[0-9a-f]{32}\Z")
_WAKE_INTENT = re.compile(r"^w-[0-9a-f]{32}\Z")
_RECORD_TEMP = re.compile(r"^[0-9a-f]{16}\.(?:[0-9]+\.[0-9a-f]{12}\.tmp|tmp\..*)\Z", re.DOTALL)
"""A receipt's or outbox record's temp file: ours (``publish_new``) or the reference's ``<id>.tmp.*``."""


def _store_op(method: Callable[P, R]) -> Callable[P, R]:
    """Turn any OSError into StoreError, so callers handle exactly one family of failures."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except StoreError:
            raise
        except OSError as exc:
            raise StoreError(f"{method.__name__}: {exc}") from exc

    return wrapper


def _parse_record(raw: bytes | None, cls: type[Any]) -> Any:
    """A record of ``cls`` from a small JSON file, or None for a missing or malformed one."""
    if raw is None:
        return None
    try:
        return from_wire(loads(raw.decode("utf-8")), cls)
    except (ShapeError, WireError, UnicodeDecodeError):
        return None


def _parse_entry(raw: bytes | None) -> RegistryEntry | None:
    return _parse_record(raw, RegistryEntry)  # type: ignore[no-any-return]


def _parse_legacy_entry(raw: bytes | None) -> RegistryEntry | None:
    """An entry of ``sessions/``: ours from before ``registry/``, or a ForeignEntry (the reference's)."""
    if raw is None:
        return None
    try:
        return legacy_entry_from_wire(loads(raw.decode("utf-8")))
    except (ShapeError, WireError, UnicodeDecodeError):
        return None


def _is_real_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _stamp(raw: bytes | None) -> int | None:
    """The ``at`` of a dedupe record or the decimal text of a rate record."""
    if raw is None:
        return None
    try:
        value = loads(raw.decode("utf-8"))
    except (WireError, UnicodeDecodeError):
        return None
    if isinstance(value, dict):
        value = value.get("at")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


CRASH_POINTS = (
    "append:mid-write",
    "take:after-batch-write",
    "take:before-inbox-rewrite",
    "take:after-inbox-rewrite",
    "restore:after-journal",
    "restore:after-inbox-rewrite",
    "merge:after-journal",
    "merge:after-dest-append",
    "merge:after-source-rewrite",
    "ledger:after-temp-write",
)
"""Every point at which ``crash_hook`` is called: the steps of the multi-file operations."""


class FsStore:
    """A complete :class:`~oxtail_core.protocols.Store` kept in files under ``home`` (0700 dirs, 0600 files).

    ``crash_hook`` is called with a point name ("take:after-batch-write",
    "merge:after-dest-append", "append:mid-write", ...) at each step of the
    multi-file operations, so crash tests can kill the process exactly there.
    """

    def __init__(
        self,
        home: Path,
        *,
        lock_timeout_s: float = 2.0,
        check_interval_s: float = 0.005,
        fsync: bool = False,
        crash_hook: CrashHook | None = None,
        inbox_max_bytes: int = INBOX_MAX_BYTES,
    ) -> None:
        self._layout = Layout(Path(home))
        self._timeout = lock_timeout_s
        self._interval = check_interval_s
        self._fsync = fsync
        self._hook = crash_hook
        self._registry_cache: dict[str, tuple[tuple[int, int, int], RegistryEntry | None]] = {}
        try:
            for name in TOP_DIRS:
                self._layout.ensure_dir(self._layout.dir(name))
            self._layout.tighten()
        except OSError as exc:
            raise StoreError(f"cannot use state directory {home}: {exc}") from exc
        self._inboxes = InboxFiles(
            self._layout,
            lock_timeout_s=lock_timeout_s,
            check_interval_s=check_interval_s,
            fsync=fsync,
            crash_hook=crash_hook,
            inbox_max_bytes=inbox_max_bytes,
        )

    @property
    def home(self) -> Path:
        return self._layout.home

    def _hold(self, path: Path) -> Any:
        return hold(path, self._timeout, self._interval)

    def _point(self, name: str) -> None:
        if self._hook is not None:
            self._hook(name)

    # Inboxes -------------------------------------------------------------------------
    @_store_op
    def append(
        self,
        inbox: InboxId,
        envelopes: Sequence[Envelope],
        *,
        only_if_registered: RegistryEntry | None = None,
    ) -> bool:
        if only_if_registered is None:
            return self._inboxes.append(inbox, envelopes)
        entry = only_if_registered
        return self._inboxes.append(inbox, envelopes, lambda: self._registered(entry))

    @_store_op
    def admit(self, inbox: InboxId, envelopes: Sequence[Envelope]) -> None:
        self._inboxes.admit(inbox, envelopes)

    @_store_op
    def take(self, inbox: InboxId, select: Selector, holder: Holder) -> Batch | None:
        return self._inboxes.take(inbox, select, holder)

    @_store_op
    def settle(self, batch: Batch) -> None:
        self._inboxes.settle(batch)

    @_store_op
    def prepare_settle(self, batch: Batch) -> Callable[[], None]:
        return _store_op(self._inboxes.prepare_settle(batch))

    @_store_op
    def restore(self, batch: Batch, ids: Sequence[str] | None = None) -> None:
        self._inboxes.restore(batch, ids)

    @_store_op
    def recover(self, inbox: InboxId, is_alive: Callable[[Holder], bool]) -> int:
        return self._inboxes.recover(inbox, is_alive)

    @_store_op
    def merge(self, source: InboxId, dest: InboxId) -> int:
        return self._inboxes.merge(source, dest)

    @_store_op
    def depth(self, inbox: InboxId) -> int:
        return self._inboxes.depth(inbox)

    def peek(self, inbox: InboxId, message_id: str) -> bool:
        """Lock-free and read-only; never raises (an unreadable inbox reads as "not there")."""
        return self._inboxes.peek(inbox, message_id)

    @_store_op
    def in_flight(self, inbox: InboxId) -> list[Batch]:
        """Batches taken from ``inbox`` and not yet settled, oldest first (for tests and status views)."""
        return self._inboxes.in_flight(inbox)

    @_store_op
    def change_token(self, inboxes: Sequence[InboxId]) -> Hashable:
        return self._inboxes.change_token(inboxes)

    @_store_op
    def wait_for_change(self, inboxes: Sequence[InboxId], token: Hashable, timeout_s: float) -> bool:
        return self._inboxes.wait_for_change(inboxes, token, timeout_s)

    # Received ledger ---------------------------------------------------------------------
    def _ledger_temp(self, path: Path) -> Path:
        """The one temp file of a ledger rewrite: only the lock holder writes it, so a fixed name is safe."""
        return path.with_name(path.name + ".tmp")

    def _ledger_repair(self, lock: HeldLock, path: Path) -> None:
        """Under the ledger lock, before anything else: undo what a killed holder left.

        A half-written append is cut off. A temp file left means a holder died
        inside a rewrite: it is removed, and if the holder had appended its line
        before dying (a compaction), the ledger is normalized (one line per id).
        """
        lock.undo_crashed_append(path)
        if unlink_missing_ok(self._ledger_temp(path)):
            lines = ledger.split(read_all(path))
            repaired = ledger.normalize(lines)
            if repaired != lines:
                self._ledger_replace(path, repaired)

    def _ledger_replace(self, path: Path, lines: Sequence[bytes]) -> None:
        """Atomic rewrite (temp + rename); a failure removes the temp before the error propagates."""
        tmp = self._ledger_temp(path)
        try:
            write_new(tmp, ledger.join(lines), fsync=self._fsync)
            self._point("ledger:after-temp-write")
            os.replace(tmp, path)
        except Exception:
            unlink_quietly(tmp)
            raise
        if self._fsync:
            sync_dir(path.parent)

    @_store_op
    def ledger_record(self, session_id: str, envelope: Envelope, keep: int) -> int:
        """Under the ledger lock. A new id below the cap is a plain append (all or none); otherwise
        the line is appended and the file then compacted by one atomic rewrite (older lines of the
        id dropped, the oldest prunable lines above ``keep`` pruned).

        Nothing is half-recorded: a failure before the rename cuts the appended line off again, so
        a StoreError means the ledger is as it was. A kill after the append keeps the line (the
        caller never got an answer); the next holder then finishes the compaction's dedupe.
        """
        path = self._layout.ledger(session_id)
        with self._hold(lock_path(path)) as lock:
            self._ledger_repair(lock, path)
            data = read_all(path)
            lines = ledger.split(data)
            same = ledger.matching(data, lines, envelope.id)
            line = ledger.line_of(LedgerRecord(envelope, ledger.outcome_of(same)))
            if not same and len(lines) < keep:
                append_guarded(lock, path, line + b"\n")
                lock.commit(bump=False)
                return 0
            older = {index for index, _ in same}
            rest = [raw for index, raw in enumerate(lines) if index not in older] if older else lines
            survivors, pruned = ledger.prune([*rest, line], keep)
            try:
                append_guarded(lock, path, line + b"\n")
            except Exception:
                lock.undo_crashed_append(path)
                raise
            lock.commit(bump=False)
            try:
                self._ledger_replace(path, survivors)
            except Exception:
                truncate_to(path, len(data))
                raise
            return pruned

    @_store_op
    def ledger_lookup(self, session_id: str, message_id: str) -> Envelope | None:
        """Newest first; lock-free, because the file is only ever appended to or replaced whole."""
        needle = ledger.needle(message_id)
        for line in reversed(read_all(self._layout.ledger(session_id)).split(b"\n")):
            if needle not in line:
                continue
            try:
                env = envelope_from_line(line.decode("utf-8"))
            except (ValueError, TypeError):
                continue
            if env.id == message_id:
                return env
        return None

    @_store_op
    def ledger_entry(self, session_id: str, message_id: str) -> LedgerRecord | None:
        """Lock-free like :meth:`ledger_lookup`; the newest line, with the outcome of any of its lines."""
        data = read_all(self._layout.ledger(session_id))
        same = ledger.matching(data, ledger.split(data), message_id)
        if not same:
            return None
        return LedgerRecord(same[-1][1].envelope, ledger.outcome_of(same))

    @_store_op
    def ledger_close(self, session_id: str, message_id: str, outcome: Obligation) -> CloseOutcome:
        """Compare-and-set under the ledger lock: exactly one of racing closers rewrites the line."""
        path = self._layout.ledger(session_id)
        with self._hold(lock_path(path)) as lock:
            self._ledger_repair(lock, path)
            data = read_all(path)
            lines = ledger.split(data)
            same = ledger.matching(data, lines, message_id)
            if not same:
                return CloseOutcome("not-found")
            newest_index, newest = same[-1]
            current = LedgerRecord(newest.envelope, ledger.outcome_of(same))
            if not current.envelope.action_required:
                return CloseOutcome("not-an-obligation", current)
            if current.obligation is not None:
                return CloseOutcome("already-closed", current)
            closed = LedgerRecord(current.envelope, outcome)
            older = {index for index, _ in same[:-1]}
            self._ledger_replace(
                path,
                [
                    ledger.line_of(closed) if index == newest_index else raw
                    for index, raw in enumerate(lines)
                    if index not in older
                ],
            )
            return CloseOutcome("claimed", closed)

    @_store_op
    def ledger_open(self, session_id: str) -> list[Envelope]:
        """Lock-free (a rewrite is a rename: the old or the new file, whole); a missing ledger is
        empty, an unreadable one (symlink, FIFO, no permission, over the cap) a StoreError."""
        return ledger.open_obligations(read_all(self._layout.ledger(session_id)))

    @_store_op
    def ledger_records(self, session_id: str) -> list[LedgerRecord]:
        """Lock-free, like :meth:`ledger_open`; torn or foreign lines are skipped."""
        lines = ledger.split(read_all(self._layout.ledger(session_id)))
        return one_per_message(r for raw in lines if (r := ledger.parse(raw)) is not None)

    # Receipts and outbox -------------------------------------------------------------------
    def _publish_once(self, path: Path, record: object) -> bool:
        """Exclusive and never seen half-written (temp + ``link``); an existing file is kept as is."""
        return publish_new(path, utf8(dumps(to_wire(record))), fsync=self._fsync)

    def _named_record(self, path: Path, cls: type[Any]) -> Any:
        """The record in ``path`` iff it is valid and names the same message as its file; else None.

        Never raises: a link, FIFO, huge, unreadable or corrupt file is simply no record (A11).
        """
        try:
            record = _parse_record(read_bounded(path, RECORD_MAX_BYTES), cls)
        except OSError:
            return None
        return record if record is not None and record.message_id == path.name else None

    @_store_op
    def receipt_put(self, receipt: Receipt) -> bool:
        if not is_message_id(receipt.message_id):
            return False
        return self._publish_once(self._layout.receipt(receipt.message_id), receipt)

    def receipt_get(self, message_id: str) -> Receipt | None:
        if not is_message_id(message_id):
            return None
        return cast("Receipt | None", self._named_record(self._layout.receipt(message_id), Receipt))

    @_store_op
    def outbox_put(self, record: OutboxRecord) -> bool:
        if not is_message_id(record.message_id):
            return False
        return self._publish_once(self._layout.outbox(record.message_id), record)

    def outbox_get(self, message_id: str) -> OutboxRecord | None:
        if not is_message_id(message_id):
            return None
        return cast("OutboxRecord | None", self._named_record(self._layout.outbox(message_id), OutboxRecord))

    @_store_op
    def receipts_gc(self, cutoff_ms: int) -> int:
        """By file mtime (the reference's rule), lock-free: a record is written once and never changed.

        Counts the records removed; crash-orphaned temp files of a record are reclaimed by the
        same age, uncounted. Anything else in the directories is left alone.
        """
        removed = 0
        for name in (RECEIPTS, OUTBOX):
            directory = self._layout.dir(name)
            if not self._layout.existing_dir(directory):  # a link in its place: StoreError, never followed
                continue
            with os.scandir(directory) as listing:
                dirents = [d for d in listing if is_message_id(d.name) or _RECORD_TEMP.match(d.name)]
            for dirent in dirents:
                try:
                    st = dirent.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if stat.S_ISREG(st.st_mode) and st.st_mtime_ns // 1_000_000 < cutoff_ms:
                    gone = unlink_missing_ok(directory / dirent.name)
                    removed += gone and is_message_id(dirent.name)
        return removed

    # Pending asks ---------------------------------------------------------------------------
    @_store_op
    def pending_put(self, ask: PendingAsk) -> bool:
        body = utf8(dumps(to_wire(ask)))
        publish_new(self._layout.pending(ask.requester, ask.request_id), body, fsync=self._fsync)
        return True  # an existing record is left untouched: its age keeps counting from the first ask

    @_store_op
    def pending_take(self, requester: str, request_id: str, replier: str | None) -> PendingAsk | None:
        path = self._layout.pending(requester, request_id)
        with self._hold(dir_lock(path.parent)):
            record = _parse_record(read_bounded(path, RECORD_MAX_BYTES), PendingAsk)
            if record is None or (replier is not None and record.peer not in (None, replier)):
                return None
            unlink_missing_ok(path)
            return record  # type: ignore[no-any-return]

    @_store_op
    def pending_gc(self, cutoff_ms: int) -> int:
        """Unparseable records are left alone: they carry no age to judge by."""
        directory = self._layout.dir(PENDING)
        removed = 0
        with self._hold(dir_lock(directory)):
            for name in os.listdir(directory):
                if not name.startswith(_PENDING_NAME) or name.endswith((".tmp", ".lock")):
                    continue
                record = _parse_record(read_bounded(directory / name, RECORD_MAX_BYTES), PendingAsk)
                if record is not None and record.at_ms <= cutoff_ms:
                    removed += unlink_missing_ok(directory / name)
        return removed

    @_store_op
    def pending_list(self) -> list[PendingAsk]:
        """Lock-free: each record is published whole (rename), so a listing sees whole records."""
        directory = self._layout.dir(PENDING)
        if not directory.is_dir():
            return []
        records = []
        for name in os.listdir(directory):
            if not name.startswith(_PENDING_NAME) or name.endswith((".tmp", ".lock")):
                continue
            record = _parse_record(read_bounded(directory / name, RECORD_MAX_BYTES), PendingAsk)
            if record is not None:
                records.append(record)
        return records

    @_store_op
    def pending_bump(self, requester: str, request_id: str, at_ms: int) -> bool:
        """Under the directory lock; the rewrite keeps the body's ``at`` (our TTL clock) and the
        file's mtime (the reference's), so a re-poke never extends the record's life."""
        path = self._layout.pending(requester, request_id)
        with self._hold(dir_lock(path.parent)):
            record = _parse_record(read_bounded(path, RECORD_MAX_BYTES), PendingAsk)
            if record is None:
                return False
            st = os.lstat(path)
            bumped = attrs.evolve(record, attempts=record.attempts + 1, last_repoke_at=at_ms)
            body = utf8(dumps(to_wire(bumped)))
            write_atomic(path, body, fsync=self._fsync, times_ns=(st.st_atime_ns, st.st_mtime_ns))
            return True

    # Self-heal --------------------------------------------------------------------------------------
    @_store_op
    def wake_intent_put(self, record: PendingWake) -> bool:
        """Exclusive create (temp + link): an existing record keeps its age and attempts."""
        path = self._layout.wake_intent(record.recipient, record.message_id)
        return publish_new(path, utf8(dumps(to_wire(record))), fsync=self._fsync)

    @_store_op
    def wake_intent_list(self, recipient: str) -> list[PendingWake]:
        """Lock-free (records are published whole); only exact ``w-<32 hex>`` names are records."""
        directory = self._layout.dir(PENDING_WAKE)
        if not self._layout.existing_dir(directory):
            return []
        out = []
        for name in os.listdir(directory):
            if not _WAKE_INTENT.match(name):
                continue
            record = _parse_record(read_bounded(directory / name, RECORD_MAX_BYTES), PendingWake)
            if record is not None and record.recipient == recipient:
                out.append(record)
        return out

    @_store_op
    def wake_intent_bump(self, recipient: str, message_id: str, at_ms: int) -> bool:
        """Under the directory lock; the body's ``sentAt`` and the file's mtime are both kept."""
        path = self._layout.wake_intent(recipient, message_id)
        with self._hold(dir_lock(path.parent)):
            record = _parse_record(read_bounded(path, RECORD_MAX_BYTES), PendingWake)
            if record is None:
                return False
            st = os.lstat(path)
            bumped = attrs.evolve(record, attempts=record.attempts + 1, last_attempt_at=at_ms)
            times = (st.st_atime_ns, st.st_mtime_ns)
            write_atomic(path, utf8(dumps(to_wire(bumped))), fsync=self._fsync, times_ns=times)
            return True

    @_store_op
    def wake_intent_take(self, recipient: str, message_id: str) -> bool:
        """A plain unlink: of racing takers exactly one removes the file."""
        return unlink_missing_ok(self._layout.wake_intent(recipient, message_id))

    @_store_op
    def wake_intent_gc(self, cutoff_ms: int) -> int:
        """Records by their ``sentAt``; anything else named ``w*`` (a crash's temp file, a body we
        cannot parse) by its mtime. Counts the records removed."""
        directory = self._layout.dir(PENDING_WAKE)
        if not self._layout.existing_dir(directory):
            return 0
        removed = 0
        with self._hold(dir_lock(directory)):
            for name in os.listdir(directory):
                if not name.startswith("w"):
                    continue
                path = directory / name
                record = _parse_record(read_bounded(path, RECORD_MAX_BYTES), PendingWake)
                if record is not None and _WAKE_INTENT.match(name):
                    removed += record.sent_at_ms <= cutoff_ms and unlink_missing_ok(path)
                    continue
                try:
                    st = os.lstat(path)
                except FileNotFoundError:
                    continue
                if stat.S_ISREG(st.st_mode) and st.st_mtime_ns // 1_000_000 <= cutoff_ms:
                    unlink_missing_ok(path)
        return removed

    @_store_op
    def self_wake_get(self, session_id: str) -> int | None:
        return _stamp(read_bounded(self._layout.self_wake(session_id), RECORD_MAX_BYTES))

    @_store_op
    def self_wake_put(self, session_id: str, at_ms: int) -> None:
        write_atomic(self._layout.self_wake(session_id), str(at_ms).encode("ascii"), fsync=self._fsync)

    @_store_op
    def waiter_claim(self, target: str, at_ms: int, stale_before_ms: int) -> bool:
        """Read-compare-write under the directory lock: one winner (a corrupt stamp counts as stale)."""
        path = self._layout.waiter_claim(target)
        with self._hold(dir_lock(path.parent)):
            existing = _stamp(read_bounded(path, RECORD_MAX_BYTES))
            if existing is not None and existing > stale_before_ms:
                return False
            write_atomic(path, str(at_ms).encode("ascii"), fsync=self._fsync)
            return True

    @_store_op
    def ledger_reply_tos(self, session_id: str) -> set[str]:
        """Lock-free, like :meth:`ledger_open`; torn lines are skipped."""
        out: set[str] = set()
        for line in read_all(self._layout.ledger(session_id)).split(b"\n"):
            if b'"reply_to"' not in line:
                continue
            try:
                env = envelope_from_line(line.decode("utf-8"))
            except (ValueError, TypeError):
                continue
            if env.reply_to:
                out.add(env.reply_to)
        return out

    # Wake bookkeeping ----------------------------------------------------------------------------
    @_store_op
    def dedupe_get(self, target: str, reply_to: str) -> int | None:
        return _stamp(read_bounded(self._layout.dedupe(target, reply_to), RECORD_MAX_BYTES))

    @_store_op
    def dedupe_claim(self, target: str, reply_to: str, at_ms: int, stale_before_ms: int) -> bool:
        """Single winner: read-compare-write under the autowake lock (a corrupt record counts as stale)."""
        path = self._layout.dedupe(target, reply_to)
        with self._hold(dir_lock(path.parent)):
            existing = _stamp(read_bounded(path, RECORD_MAX_BYTES))
            if existing is not None and existing > stale_before_ms:
                return False
            body = {"sessionId": target, "replyTo": reply_to, "at": at_ms}
            write_atomic(path, utf8(dumps(body)), fsync=self._fsync)
            return True

    @_store_op
    def dedupe_release(self, target: str, reply_to: str, at_ms: int) -> None:
        path = self._layout.dedupe(target, reply_to)
        with self._hold(dir_lock(path.parent)):
            if _stamp(read_bounded(path, RECORD_MAX_BYTES)) == at_ms:
                unlink_missing_ok(path)

    @_store_op
    def rate_get(self, target: str) -> int | None:
        return _stamp(read_bounded(self._layout.rate(target), RECORD_MAX_BYTES))

    @_store_op
    def rate_put(self, target: str, at_ms: int) -> None:
        write_atomic(self._layout.rate(target), str(at_ms).encode("ascii"), fsync=self._fsync)

    @_store_op
    def wake_gc(self, cutoff_ms: int) -> int:
        """Dedupe and rate records in ``autowake/``, self-wake stamps and waiter claims in theirs."""
        removed = 0
        for name, is_stamp in (
            (AUTOWAKE, lambda n: n.startswith(_WAKE_PREFIXES) and not n.endswith(".tmp")),
            (SELF_WAKE, _STAMP_NAME.match),
            (WAITER_WAKE, _STAMP_NAME.match),
        ):
            directory = self._layout.dir(name)
            with self._hold(dir_lock(directory)):
                for entry in os.listdir(directory):
                    if not is_stamp(entry):
                        continue
                    at = _stamp(read_bounded(directory / entry, RECORD_MAX_BYTES))
                    if at is not None and at <= cutoff_ms:
                        removed += unlink_missing_ok(directory / entry)
        return removed

    # Sweep (selfheal §4; the rules are in oxtail_fs.store.sweep) ---------------------------------------
    @_store_op
    def sweep(self, now_ms: int) -> SweepReport:
        sweeper = Sweeper(self._layout, self._referenced_stems, self._try_ledger_repair, self._interval)
        return sweeper.sweep(now_ms)

    def _referenced_stems(self) -> frozenset[str] | None:
        """Every inbox our entries read (session and process inboxes, raw and canonical session keys);
        None when some registry file does not parse (its inbox cannot be named: nothing is collected)."""
        files = 0
        for name in (REGISTRY, SESSIONS):
            directory = self._layout.dir(name)
            if not _is_real_dir(directory):
                continue
            with os.scandir(directory) as listing:
                files += sum(1 for d in listing if REGISTRY_NAME.match(d.name))
        entries = self.registry_entries()
        if len(entries) < files:
            return None
        stems: set[str] = set()
        for entry in entries:
            if is_foreign(entry):
                continue
            # the routing module's inboxes_of, spelt out: the hook imports this store, not routing
            inboxes = [InboxId.for_process(entry.server_pid, entry.started_at)]
            if entry.session_id:
                sid = entry.session_id
                inboxes += [InboxId.for_session(canonical_session_id(sid)), InboxId.for_session(sid)]
            stems.update(inbox_stem(inbox) for inbox in inboxes)
        return frozenset(stems)

    def _try_ledger_repair(self, path: Path) -> bool:
        """The ledger's own repair (drop the temp, normalize) if its lock is free right now."""
        try:
            with hold(lock_path(path), 0.0, self._interval) as lock:
                self._ledger_repair(lock, path)
        except StoreBusy:
            return False
        return True

    # Activity --------------------------------------------------------------------------------------
    def activity_get(self, session_id: str) -> ActivityMarker | None:
        """The newer of our marker and one the reference's bash hooks wrote (plain ``busy``/``idle``,
        fresh as its mtime), so an agent whose old hooks are still installed is not "unknown".

        None for a missing, unreadable or malformed marker: "unknown" is always a safe answer.
        """
        try:
            raw = read_bounded(self._layout.activity(session_id), RECORD_MAX_BYTES)
        except OSError:
            raw = None
        ours: ActivityMarker | None = _parse_record(raw, ActivityMarker)
        legacy = self._legacy_activity(session_id)
        if ours is None or (legacy is not None and legacy.at_ms > ours.at_ms):
            return legacy
        return ours

    def _legacy_activity(self, session_id: str) -> ActivityMarker | None:
        path = self._layout.legacy_activity(session_id)
        if path is None:
            return None
        try:
            raw = read_bounded(path, 64)
            if raw is None:
                return None
            status = raw.decode("utf-8", errors="replace").strip()
            mtime_ns = os.stat(path, follow_symlinks=False).st_mtime_ns
        except OSError:
            return None
        if status not in ("busy", "idle"):
            return None
        return ActivityMarker(status=cast("ActivityStatus", status), at_ms=mtime_ns // 1_000_000)

    @_store_op
    def activity_put(self, session_id: str, marker: ActivityMarker) -> None:
        path = self._layout.activity(session_id)
        write_atomic(path, utf8(dumps(to_wire(marker))), fsync=self._fsync)

    # Sticky claims -----------------------------------------------------------------------------------
    @_store_op
    def claim_put(self, record: ClaimRecord) -> None:
        """Pretty JSON (2-space indent, no trailing newline), 0600, temp + rename: the reference's bytes.

        A ``claims/`` that is a symlink or not a directory is refused (StoreError), never followed.
        """
        path = self._layout.claim(record)
        self._layout.ensure_dir(path.parent)
        text = json.dumps(to_wire(record), indent=2, ensure_ascii=False)
        write_atomic(path, utf8(text), fsync=self._fsync)

    def _claim_files(self) -> list[tuple[Path, Any]]:
        """``(path, parsed JSON)`` of each regular ``*.json`` file in a real ``claims/``, by name.

        Lock-free (records are published whole by rename). A linked ``claims/`` is refused
        (StoreError); links, FIFOs, devices, huge and unparseable files are skipped.
        """
        directory = self._layout.dir(CLAIMS)
        try:
            if not stat.S_ISDIR(os.lstat(directory).st_mode):
                raise StoreError(f"refusing {directory}: not a real directory (never followed)")
        except FileNotFoundError:
            return []
        with os.scandir(directory) as listing:
            names = sorted(
                d.name for d in listing if d.name.endswith(".json") and d.is_file(follow_symlinks=False)
            )
        out = []
        for name in names:
            try:
                raw = read_bounded(directory / name, RECORD_MAX_BYTES)
                data = loads(raw) if raw is not None else None
            except (OSError, WireError):
                continue  # vanished, unreadable or not JSON: skipped, never fatal
            if data is not None:
                out.append((directory / name, data))
        return out

    @_store_op
    def claim_list(self) -> list[ClaimRecord]:
        records = []
        for _, data in self._claim_files():
            try:
                records.append(from_wire(data, ClaimRecord))
            except ShapeError:
                continue
        return records

    @_store_op
    def claim_gc(self, cutoff_ms: int, transcript_exists: Callable[[str], bool]) -> int:
        """Any JSON object counts by its ``transcript_path`` and ``claimed_at`` alone, as the reference
        sweeps, so a half-written foreign record without a transcript is collected too.

        Unlocked, like the reference: a refresh of the same record racing a sweep may be lost
        (it is recreated by the agent's next claim).
        """
        removed = 0
        for path, data in self._claim_files():
            if not isinstance(data, dict):
                continue
            transcript = data.get("transcript_path")
            claimed_at = data.get("claimed_at")
            number = (
                claimed_at
                if isinstance(claimed_at, (int, float))
                and not isinstance(claimed_at, bool)
                and math.isfinite(claimed_at)
                else None
            )
            if claim_is_stale(
                transcript if isinstance(transcript, str) else None, number, cutoff_ms, transcript_exists
            ):
                removed += unlink_missing_ok(path)
        return removed

    # Registry ----------------------------------------------------------------------------------------
    # Ours live in registry/; the reference's sessions/ is read (never written) so its servers are
    # listed and refused as foreign peers (oxtail_core.foreign), and so our servers from before the
    # move stay reachable until they restart (convert.legacy_entry_from_wire tells them apart).
    @_store_op
    def registry_put(self, entry: RegistryEntry) -> None:
        if not is_registry_pid(entry.server_pid):
            raise StoreError(f"not a registrable pid: {entry.server_pid!r}")
        text = json.dumps(to_wire(entry), indent=2, ensure_ascii=False) + "\n"
        write_atomic(self._layout.registry(entry.server_pid), utf8(text), fsync=self._fsync)

    @_store_op
    def registry_remove(self, pid: int) -> None:
        if is_registry_pid(pid):
            unlink_missing_ok(self._layout.registry(pid))

    @_store_op
    def registry_remove_if_drained(self, entry: RegistryEntry, inbox: InboxId) -> bool:
        def remove() -> bool:
            path = self._registry_file(entry)
            if path is None:
                return False
            unlink_missing_ok(path)
            return True

        return self._inboxes.remove_if_drained(inbox, remove)

    def _registry_file(self, entry: RegistryEntry) -> Path | None:
        """The file of ours that registers exactly ``entry``'s process (a reference entry has none)."""
        if is_foreign(entry) or not is_registry_pid(entry.server_pid):
            return None
        pid = entry.server_pid
        for path, parse in (
            (self._layout.registry(pid), _parse_entry),
            (self._layout.legacy_registry(pid), _parse_legacy_entry),
        ):
            try:
                raw = read_bounded(path, REGISTRY_MAX_BYTES)
            except OSError:
                continue
            current = parse(raw)
            if current is not None and current.server_pid == pid and same_incarnation(current, entry):
                return path
        return None

    def _registered(self, entry: RegistryEntry) -> bool:
        return self._registry_file(entry) is not None

    @_store_op
    def registry_entries(self) -> list[RegistryEntry]:
        """Entries by pid (ours first); a file that is huge, unparseable, malformed or forged is skipped.

        Every send resolves its target through this, so a file is parsed again
        only when its inode, size or mtime changed since we last parsed it.
        """
        seen: dict[str, tuple[tuple[int, int, int], RegistryEntry | None]] = {}
        entries = self._registry_dir(self._layout.dir(REGISTRY), _parse_entry, seen)
        legacy = self._layout.dir(SESSIONS)
        try:
            if self._layout.existing_dir(legacy):
                entries += self._registry_dir(legacy, _parse_legacy_entry, seen)
        except StoreError:
            pass  # not a real directory: nothing of the reference's to show, nothing followed
        self._registry_cache = seen
        entries.sort(key=lambda e: (e.server_pid, is_foreign(e)))
        return entries

    def _registry_dir(
        self,
        directory: Path,
        parse: Callable[[bytes | None], RegistryEntry | None],
        seen: dict[str, tuple[tuple[int, int, int], RegistryEntry | None]],
    ) -> list[RegistryEntry]:
        entries = []
        with os.scandir(directory) as listing:
            dirents = [d for d in listing if REGISTRY_NAME.match(d.name)]
        for dirent in dirents:
            key = dirent.path
            try:
                st = dirent.stat(follow_symlinks=False)
            except OSError:
                continue  # vanished between listing and stat
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
            cached = self._registry_cache.get(key)
            if cached is not None and cached[0] == stamp:
                entry = cached[1]
            else:
                try:
                    raw = read_bounded(directory / dirent.name, REGISTRY_MAX_BYTES)
                except OSError:
                    continue  # vanished or unreadable between listing and opening
                parsed = parse(raw)
                entry = parsed if parsed is not None and parsed.server_pid == int(dirent.name[:-5]) else None
            seen[key] = (stamp, entry)
            if entry is not None:
                entries.append(entry)
        return entries

    # Reservations (issue 12) ----------------------------------------------------------------
    def _reservations_file(self, project: str) -> Path:
        """``reservations/<hash32(project)>.json``: the name is never the caller's text."""
        return self._layout.dir(RESERVATIONS) / reservations_name(project)

    def _reservations_read(self, path: Path) -> list[Reservation]:
        """The records of one project file; an unparseable record is skipped, a huge file refused
        (StoreError: rewriting it as empty would lose every reservation in it)."""
        raw = read_bounded(path, RESERVATIONS_MAX_BYTES)
        if raw is None:
            if os.path.lexists(path):
                raise StoreError(f"refusing {path}: not a regular file of <= {RESERVATIONS_MAX_BYTES} bytes")
            return []
        return reservation_file.parse(str(path), raw)

    @_store_op
    def reservations_update(self, project: str, step: ReservationStep[T]) -> T:
        """Read, step and replace (temp + rename) under the project file's flock."""
        path = self._reservations_file(project)
        with self._hold(lock_path(path)):
            before = self._reservations_read(path)
            kept, result = step(before)
            if list(kept) == before:
                return result  # nothing changed: no rewrite (listings and guard runs stay reads)
            if kept:
                write_atomic(path, reservation_file.encode(str(path), kept), fsync=self._fsync)
            else:
                unlink_missing_ok(path)
            return result

    @_store_op
    def reservations_list(self, project: str) -> list[Reservation]:
        """Lock-free: the file is only ever replaced whole."""
        return self._reservations_read(self._reservations_file(project))
