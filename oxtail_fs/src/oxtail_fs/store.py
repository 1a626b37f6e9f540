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
import stat
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, cast

from oxtail_core.convert import ShapeError, envelope_from_line, envelope_to_line, from_wire, to_wire
from oxtail_core.errors import StoreError
from oxtail_core.ids import hash32
from oxtail_core.model import (
    ActivityMarker,
    ActivityStatus,
    ClaimRecord,
    CloseOutcome,
    Envelope,
    Obligation,
    OutboxRecord,
    PendingAsk,
    Receipt,
    RegistryEntry,
    claim_is_stale,
    same_incarnation,
)
from oxtail_core.protocols import Batch, Holder, InboxId, ReservationStep, Selector, T
from oxtail_core.reservations import Reservation
from oxtail_core.wire import WireError, dumps, loads, utf8
from oxtail_fs.atomic import (
    publish_new,
    read_all,
    read_bounded,
    temp_name,
    unlink_missing_ok,
    write_atomic,
    write_new,
)
from oxtail_fs.inbox import CrashHook, InboxFiles
from oxtail_fs.layout import (
    AUTOWAKE,
    CLAIMS,
    PENDING,
    REGISTRY_NAME,
    RESERVATIONS,
    SESSIONS,
    TOP_DIRS,
    Layout,
    dir_lock,
    is_registry_pid,
    lock_path,
)
from oxtail_fs.locks import append_guarded, hold

P = ParamSpec("P")
R = TypeVar("R")

REGISTRY_MAX_BYTES = 1 << 20
RECORD_MAX_BYTES = 64 << 10
RESERVATIONS_MAX_BYTES = 16 << 20
_PENDING_NAME = "p-"
_WAKE_PREFIXES = ("d-", "r-")


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
    def take(self, inbox: InboxId, select: Selector, holder: Holder) -> Batch | None:
        return self._inboxes.take(inbox, select, holder)

    @_store_op
    def settle(self, batch: Batch) -> None:
        self._inboxes.settle(batch)

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
    @_store_op
    def ledger_record(self, session_id: str, envelope: Envelope, keep: int) -> int:
        """Append under the ledger lock; past ``keep`` lines, atomically rewrite with the newest ``keep``."""
        path = self._layout.ledger(session_id)
        with self._hold(lock_path(path)) as lock:
            lock.undo_crashed_append(path)
            append_guarded(lock, path, envelope_to_line(envelope).encode("utf-8"))
            lock.commit(bump=False)
            lines = [line for line in read_all(path).split(b"\n") if line]
            dropped = max(len(lines) - max(keep, 0), 0)
            if dropped:
                tmp = temp_name(path)
                write_new(tmp, b"".join(line + b"\n" for line in lines[dropped:]), fsync=self._fsync)
                self._point("ledger:after-temp-write")
                os.replace(tmp, path)
            return dropped

    @_store_op
    def ledger_lookup(self, session_id: str, message_id: str) -> Envelope | None:
        """Newest first; lock-free, because the file is only ever appended to or replaced whole."""
        needle = dumps(message_id).encode("utf-8")
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
        directory = self._layout.dir(AUTOWAKE)
        removed = 0
        with self._hold(dir_lock(directory)):
            for name in os.listdir(directory):
                if not name.startswith(_WAKE_PREFIXES) or name.endswith(".tmp"):
                    continue
                at = _stamp(read_bounded(directory / name, RECORD_MAX_BYTES))
                if at is not None and at <= cutoff_ms:
                    removed += unlink_missing_ok(directory / name)
        return removed

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
            if not self._registered(entry):
                return False
            unlink_missing_ok(self._layout.registry(entry.server_pid))
            return True

        return self._inboxes.remove_if_drained(inbox, remove)

    def _registry_get(self, pid: int) -> RegistryEntry | None:
        if not is_registry_pid(pid):
            return None
        try:
            raw = read_bounded(self._layout.registry(pid), REGISTRY_MAX_BYTES)
        except OSError:
            return None
        entry = _parse_record(raw, RegistryEntry)
        return entry if entry is not None and entry.server_pid == pid else None

    def _registered(self, entry: RegistryEntry) -> bool:
        current = self._registry_get(entry.server_pid)
        return current is not None and same_incarnation(current, entry)

    @_store_op
    def registry_entries(self) -> list[RegistryEntry]:
        """Entries sorted by pid; a file that is huge, unparseable, malformed or forged is skipped.

        Every send resolves its target through this, so a file is parsed again
        only when its inode, size or mtime changed since we last parsed it.
        """
        directory = self._layout.dir(SESSIONS)
        entries = []
        seen: dict[str, tuple[tuple[int, int, int], RegistryEntry | None]] = {}
        with os.scandir(directory) as listing:
            dirents = sorted(
                (d for d in listing if REGISTRY_NAME.match(d.name)), key=lambda d: (len(d.name), d.name)
            )
        for dirent in dirents:
            name = dirent.name
            try:
                st = dirent.stat(follow_symlinks=False)
            except OSError:
                continue  # vanished between listing and stat
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
            cached = self._registry_cache.get(name)
            if cached is not None and cached[0] == stamp:
                entry = cached[1]
            else:
                try:
                    raw = read_bounded(directory / name, REGISTRY_MAX_BYTES)
                except OSError:
                    continue  # vanished or unreadable between listing and opening
                parsed = _parse_record(raw, RegistryEntry)
                entry = parsed if parsed is not None and parsed.server_pid == int(name[:-5]) else None
            seen[name] = (stamp, entry)
            if entry is not None:
                entries.append(entry)
        self._registry_cache = seen
        return entries

    # Accounting (issue 9): being built by the store helper ---------------------------------
    def peek(self, inbox: InboxId, message_id: str) -> bool:
        raise NotImplementedError("issue 9")

    def ledger_close(self, session_id: str, message_id: str, outcome: Obligation) -> CloseOutcome:
        raise NotImplementedError("issue 9")

    def ledger_open(self, session_id: str) -> list[Envelope]:
        raise NotImplementedError("issue 9")

    def receipt_put(self, receipt: Receipt) -> bool:
        raise NotImplementedError("issue 9")

    def receipt_get(self, message_id: str) -> Receipt | None:
        raise NotImplementedError("issue 9")

    def outbox_put(self, record: OutboxRecord) -> bool:
        raise NotImplementedError("issue 9")

    def outbox_get(self, message_id: str) -> OutboxRecord | None:
        raise NotImplementedError("issue 9")

    def receipts_gc(self, cutoff_ms: int) -> int:
        raise NotImplementedError("issue 9")

    def pending_bump(self, requester: str, request_id: str, at_ms: int) -> bool:
        raise NotImplementedError("issue 9")

    # Reservations (issue 12) ----------------------------------------------------------------
    def _reservations_file(self, project: str) -> Path:
        """``reservations/<hash32(project)>.json``: the name is never the caller's text."""
        return self._layout.dir(RESERVATIONS) / f"{hash32(project)}.json"

    def _reservations_read(self, path: Path) -> list[Reservation]:
        """The records of one project file; an unparseable record is skipped, a huge file refused
        (StoreError: rewriting it as empty would lose every reservation in it)."""
        raw = read_bounded(path, RESERVATIONS_MAX_BYTES)
        if raw is None:
            if os.path.lexists(path):
                raise StoreError(f"refusing {path}: not a regular file of <= {RESERVATIONS_MAX_BYTES} bytes")
            return []
        try:
            data = loads(raw.decode("utf-8"))
        except (WireError, UnicodeDecodeError):
            return []
        out = []
        for item in data if isinstance(data, list) else []:
            try:
                out.append(Reservation.from_json(item))
            except (TypeError, ValueError):
                continue
        return out

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
                body = dumps([r.to_json() for r in kept])
                write_atomic(path, utf8(body), fsync=self._fsync)
            else:
                unlink_missing_ok(path)
            return result

    @_store_op
    def reservations_list(self, project: str) -> list[Reservation]:
        """Lock-free: the file is only ever replaced whole."""
        return self._reservations_read(self._reservations_file(project))
