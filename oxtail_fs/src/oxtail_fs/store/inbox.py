"""Inboxes as JSONL files: append, take into in-flight batches, restore, recover, merge.

Invariants (see docs/protocol.md):

* every inbox file is only changed by the holder of its sidecar lock;
* an append is all or none (a crashed append is truncated back by the next holder);
* a take, restore, recover or merge is all or none (an intent journal, see
  :mod:`oxtail_fs.store.journal`), so a message is never both in the inbox and in
  flight, never in two inboxes after a merge, and never lost;
* a line that is not a message (torn, corrupt, not UTF-8, over ``LINE_MAX_BYTES``)
  is never served and never silently destroyed: the take that reaches it moves
  it to ``<inbox>.quarantine``;
* survivors of a rewrite keep their bytes and order.

A read costs what it takes, not what waits (issue 15 item 12):

| step | cost |
|---|---|
| find the unread start | ``<inbox>.head`` (``{"ino", "offset"}``): bytes before ``offset`` are taken |
| offer the selector its ``window`` | read 1 MiB chunks, parse only that prefix, count the rest's lines |
| take a prefix | write ``<inbox>.head`` past it (a few bytes), not the rest of the inbox |
| take all, or not a prefix, or a taken prefix | rewrite the unread part (the rest copied in the |
| that is large and outweighs the rest | kernel) and drop the head |

The head is valid only for the inode it names, and every holder of the lock
first removes a head naming another inode (or a missing inbox): a rewrite
makes a new inode, so a head can never apply to a file it was not written
for, even when a later file reuses the inode number. A take's journal
records the head it will write; on recovery the batch files are committed iff
the inbox was rewritten or the head says that offset.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from oxtail_core.convert import envelope_from_line, envelope_to_line
from oxtail_core.errors import InboxFull, StoreBusy, StoreError
from oxtail_core.ids import new_id
from oxtail_core.limits import INBOX_MAX_BYTES, LINE_MAX_BYTES
from oxtail_core.model import Envelope
from oxtail_core.protocols import Batch, Holder, InboxId, Offered, Selector, window_of
from oxtail_core.wire import dumps
from oxtail_fs.store import journal
from oxtail_fs.store.atomic import (
    STATE_FILE_MAX_BYTES,
    Piece,
    copy_range,
    inode,
    read_all,
    read_bounded,
    require_regular,
    unlink_missing_ok,
    write_all,
    write_atomic,
    write_atomic_pieces,
)
from oxtail_fs.store.layout import FILE_MODE, Layout, inbox_stem, is_batch_id, lock_path
from oxtail_fs.store.locks import HeldLock, append_guarded, hold, read_seq
from oxtail_fs.store.names import INBOXES, JOURNAL

if TYPE_CHECKING:
    from oxtail_fs.store.inotify import DirWatch

CrashHook = Callable[[str], None]
Entry = tuple[bytes, Envelope]
_APPEND_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
_JOURNAL_RETRIES = 8
_BATCH_MAX_BYTES = 64 << 20
_PARSED_MAX_LINES = 20_000
_PEEK_ROUNDS = 4
_PATHS_KEPT = 4096
_CHUNK = 1 << 20
_COMPACT_MIN_BYTES = 1 << 20
"""A taken prefix is cut off by a rewrite once it is this large and outweighs the unread rest."""
_HEAD_MAX_BYTES = 256
_MARKS_KEPT = 8
_READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK


@attrs.frozen
class Line:
    """One line of an inbox as a scan met it: bytes ``[start, end)``, its message if it is one.

    ``raw`` is None for a line over ``LINE_MAX_BYTES`` (never held in memory:
    it is copied to the quarantine from the file). ``blank`` lines are
    dropped by any rewrite, as they always were.
    """

    start: int
    end: int
    raw: bytes | None
    message: Envelope | None
    blank: bool = False

    @property
    def bad(self) -> bool:
        return self.message is None and not self.blank


@attrs.frozen
class Scan:
    """The unread part of an inbox, read from ``begin``: ``lines`` up to ``end``, then ``beyond``
    complete lines not parsed, up to ``size`` (the file's size when read)."""

    ino: int
    begin: int
    lines: list[Line]
    end: int
    beyond: int
    size: int

    @property
    def good(self) -> list[Line]:
        return [line for line in self.lines if line.message is not None]


def parse_lines(data: bytes, known: dict[bytes, Envelope] | None = None) -> tuple[list[Entry], list[bytes]]:
    """Split an inbox into (raw line, message) pairs and the lines that are not messages.

    A line must be newline-terminated, valid UTF-8 and a schema-1 envelope; a
    torn last line, a corrupt line or a stray byte sequence is "bad". ``known``
    maps raw lines already parsed to their message (the same bytes always parse
    to the same envelope), so a line is parsed once however many reads it waits.
    """
    good: list[Entry] = []
    bad: list[bytes] = []
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    for raw in lines:
        if not raw:
            continue
        line = raw + b"\n"
        cached = known.get(line) if known is not None else None
        if cached is not None:
            good.append((line, cached))
            continue
        try:
            good.append((line, envelope_from_line(raw.decode("utf-8"))))
        except (ValueError, TypeError):  # ShapeError and UnicodeDecodeError are ValueErrors
            bad.append(line)
    if tail:
        bad.append(tail + b"\n")
    return good, bad


def _nothing() -> None:
    """The commit of a settle with nothing to do (a batch id that names no file of ours)."""


class InboxFiles:
    """The inbox part of the filesystem store (every method runs under the inbox locks it needs)."""

    def __init__(
        self,
        layout: Layout,
        *,
        lock_timeout_s: float,
        check_interval_s: float,
        fsync: bool,
        crash_hook: CrashHook | None,
        inbox_max_bytes: int = INBOX_MAX_BYTES,
    ) -> None:
        self._layout = layout
        self._inbox_max = inbox_max_bytes
        self._timeout = lock_timeout_s
        self._interval = check_interval_s
        self._fsync = fsync
        self._hook = crash_hook
        self._dir = layout.dir(INBOXES)
        self._journals = layout.dir(JOURNAL)
        self._watches = threading.local()
        self._parsed: dict[str, dict[bytes, Envelope]] = {}
        self._parsed_lock = threading.Lock()
        self._files: dict[str, tuple[Path, Path, Path]] = {}
        """Per stem: its inbox, head and lock paths, built once (pathlib is most of an append's CPU)."""
        self._marks: dict[str, tuple[int, dict[int, int]]] = {}
        """Per inbox: its inode and known ``{offset: newlines before it}``, so counting what waits
        beyond a window costs only the bytes appended or taken since the last count."""

    # Paths and small helpers ----------------------------------------------------------
    def _paths(self, stem: str) -> tuple[Path, Path, Path]:
        """``(inbox, head, lock)`` of ``stem``; bounded (a flood of one-off inboxes starts it over)."""
        found = self._files.get(stem)
        if found is None:
            if len(self._files) >= _PATHS_KEPT:
                self._files.clear()
            inbox = self._layout.stem_inbox(stem)
            found = self._files[stem] = (inbox, head_path(inbox), lock_path(inbox))
        return found

    def _path(self, stem: str) -> Path:
        return self._paths(stem)[0]

    def _point(self, name: str) -> None:
        if self._hook is not None:
            self._hook(name)

    def _quarantine(self, stem: str, bad: Sequence[bytes]) -> None:
        if not bad:
            return
        target = self._path(stem).with_name(f"{stem}.jsonl.quarantine")
        fd = os.open(target, _APPEND_FLAGS, FILE_MODE)
        try:
            require_regular(fd, target)
            write_all(fd, b"".join(bad))
        finally:
            os.close(fd)

    def _quarantine_lines(self, stem: str, fd: int, lines: Sequence[Line]) -> None:
        """Append the bad ``lines`` to the quarantine byte for byte (a torn tail gets its newline)."""
        bad = [line for line in lines if line.bad]
        if not bad:
            return
        target = self._path(stem).with_name(f"{stem}.jsonl.quarantine")
        out = os.open(target, _APPEND_FLAGS, FILE_MODE)
        try:
            require_regular(out, target)
            for line in bad:
                if line.raw is not None:
                    write_all(out, line.raw if line.raw.endswith(b"\n") else line.raw + b"\n")
                else:
                    copy_range(fd, out, line.start, line.end)
                    if os.pread(fd, 1, line.end - 1) != b"\n":
                        write_all(out, b"\n")
        finally:
            os.close(out)

    # The unread start -------------------------------------------------------------------------
    def _head_path(self, stem: str) -> Path:
        return self._paths(stem)[1]

    def _head(self, stem: str) -> tuple[int, int] | None:
        return read_head(self._head_path(stem))

    def _offset(self, stem: str, fd: int, st: os.stat_result) -> int:
        return unread_start(self._head_path(stem), fd, st)

    def _drop_stale_head(self, stem: str) -> None:
        """Remove a head that names another inode than the inbox's (see the module docstring)."""
        head = self._head(stem)
        if head is not None and head[0] != inode(self._path(stem)):
            unlink_missing_ok(self._head_path(stem))
        elif head is None:
            unlink_missing_ok(self._head_path(stem))  # malformed: as good as absent, and must go

    def _waiting(self, stem: str) -> int:
        """Bytes of unread mail (what the cap counts); no lock needed, nothing written."""
        with self._open(stem, repair=False) as opened:
            return 0 if opened is None else opened[1].st_size - opened[2]

    @contextmanager
    def _open(self, stem: str, *, repair: bool = True) -> Iterator[tuple[int, os.stat_result, int] | None]:
        """The inbox open for reading, its ``fstat`` and its unread start; None if it does not exist.

        StoreError unless it is a regular file; with ``repair`` (a locked caller) a looser mode is
        tightened, without it (peek, admit) nothing is ever written.
        """
        path = self._path(stem)
        try:
            fd = os.open(path, _READ_FLAGS)
        except FileNotFoundError:
            yield None
            return
        try:
            st = require_regular(fd, path) if repair else os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise StoreError(f"refusing {path}: not a regular file")
            yield fd, st, self._offset(stem, fd, st)
        finally:
            os.close(fd)

    def _scan(self, stem: str, fd: int, st: os.stat_result, begin: int, window: int | None) -> Scan:
        """Read the unread part from ``begin`` in chunks until ``window`` messages (None: all) are met.

        Memory is bounded by the window: a line over ``LINE_MAX_BYTES`` is
        skipped, not kept, and the rest is only counted. A line is parsed once
        per process however many reads it waits (``self._parsed``, by its bytes).
        """
        with self._parsed_lock:
            known = self._parsed.get(stem, {})
        size = st.st_size
        lines: list[Line] = []
        found = 0
        buf, at, base, pos = b"", 0, begin, begin  # buf[at:] holds bytes [base, pos) of the file
        while window is None or found < window:
            cut = buf.find(b"\n", at)
            if cut < 0:
                left = len(buf) - at
                if left > LINE_MAX_BYTES or pos >= size:
                    if not left:
                        break
                    end = _line_end(fd, pos, size) if left > LINE_MAX_BYTES else pos
                    lines.append(Line(base, end, None if left > LINE_MAX_BYTES else buf[at:], None))
                    buf, at, base, pos = b"", 0, end, end
                    continue
                chunk = os.pread(fd, min(_CHUNK, size - pos), pos)
                if not chunk:
                    size = pos
                    continue
                buf, at, pos = buf[at:] + chunk, 0, pos + len(chunk)
                continue
            line = self._line(base, buf[at : cut + 1], known)
            lines.append(line)
            found += line.message is not None
            base += cut + 1 - at
            at = cut + 1
        beyond = 0
        if window is not None and found >= window:
            beyond = self._newlines_before(stem, fd, st.st_ino, size) - self._newlines_before(
                stem, fd, st.st_ino, base
            )
        with self._parsed_lock:
            self._parsed.pop(stem, None)
            room = _PARSED_MAX_LINES - sum(len(v) for v in self._parsed.values())
            if room > 0:
                good = [(ln.raw, ln.message) for ln in lines if ln.message is not None and ln.raw is not None]
                self._parsed[stem] = dict(good[:room])
        return Scan(st.st_ino, begin, lines, base, beyond, size)

    def _newlines_before(self, stem: str, fd: int, ino: int, pos: int) -> int:
        """Newlines in bytes ``[0, pos)`` of the inbox, counted from the nearest known mark below.

        Appends only add bytes at the end and a rewrite is a new inode, so a mark
        of this inode stays true; a few recent marks are kept.
        """
        with self._parsed_lock:
            known_ino, marks = self._marks.get(stem, (ino, {}))
            marks = dict(marks) if known_ino == ino else {}
        start = max((m for m in marks if m <= pos), default=0)
        count = marks.get(start, 0) + _count_lines(fd, start, pos)
        marks[pos] = count
        with self._parsed_lock:
            self._marks[stem] = (ino, dict(sorted(marks.items())[-_MARKS_KEPT:]))
        return count

    @staticmethod
    def _line(start: int, raw: bytes, known: dict[bytes, Envelope]) -> Line:
        end = start + len(raw)
        if raw == b"\n":
            return Line(start, end, raw, None, blank=True)
        if len(raw) > LINE_MAX_BYTES:
            return Line(start, end, None, None)
        cached = known.get(raw)
        if cached is not None:
            return Line(start, end, raw, cached)
        try:
            return Line(start, end, raw, envelope_from_line(raw[:-1].decode("utf-8")))
        except (ValueError, TypeError):  # ShapeError and UnicodeDecodeError are ValueErrors
            return Line(start, end, raw, None)

    def _write(self, path: Path, data: bytes) -> None:
        write_atomic(path, data, fsync=self._fsync)

    # Locking ----------------------------------------------------------------------------
    @contextmanager
    def _hold(self, stems: Sequence[str]) -> Iterator[dict[str, HeldLock]]:
        """Hold the locks of ``stems`` (in sorted order: no deadlock) with crashed appends undone."""
        with ExitStack() as stack:
            held: dict[str, HeldLock] = {}
            for stem in sorted(set(stems)):
                held[stem] = stack.enter_context(hold(self._paths(stem)[2], self._timeout, self._interval))
                held[stem].undo_crashed_append(self._path(stem))
                self._drop_stale_head(stem)
            yield held

    @contextmanager
    def _resolved(self, stems: Sequence[str]) -> Iterator[dict[str, HeldLock]]:
        """Hold the locks of ``stems`` with every journal concerning them resolved first."""
        for _ in range(_JOURNAL_RETRIES):
            with self._hold(stems) as held:
                foreign = self._resolve_journals(held)
                if foreign is None:
                    yield held
                    return
            # A merge journal also names an inbox we do not hold: resolve it under its own locks.
            with self._hold(sorted(journal.stems_of(foreign))) as other:
                self._resolve_journals(other)
        raise StoreBusy(str(self._journals))

    def _resolve_journals(self, held: dict[str, HeldLock]) -> str | None:
        """Resolve the journals covered by ``held``; return one that needs more locks, if any."""
        try:
            names = sorted(os.listdir(self._journals))
        except FileNotFoundError:
            return None
        foreign = None
        for name in names:
            stems = journal.stems_of(name)
            if not stems or not stems & held.keys():
                continue
            if stems <= held.keys():
                self._resolve(self._journals / name, held)
            elif foreign is None:
                foreign = name
        return foreign

    def _resolve(self, path: Path, held: dict[str, HeldLock]) -> None:
        raw = read_bounded(path, _BATCH_MAX_BYTES)
        if raw is None:
            return
        doc = journal.decode(raw)
        if doc is not None and journal.MERGE.match(path.name):
            self._finish_merge(path, doc, held)
        elif doc is not None and doc.get("stem") in held:
            self._finish_single(path, doc, held[doc["stem"]], bump=True)
        else:
            os.replace(path, journal.corrupt_aside(path))

    # Single-inbox journal (take, restore, recover) ---------------------------------------------
    def _begin_single(
        self, stem: str, updates: dict[str, dict[str, Any] | None], offset: int | None = None
    ) -> tuple[Path, dict[str, Any]]:
        doc: dict[str, Any] = {"stem": stem, "pre_ino": inode(self._path(stem)), "batches": updates}
        if offset is not None:
            doc["offset"] = offset
        path = self._journals / journal.single_name(stem)
        self._write(path, journal.encode(doc))
        return path, doc

    def _finish_single(self, path: Path, doc: dict[str, Any], lock: HeldLock, *, bump: bool) -> None:
        """Commit the batch-file updates iff the inbox was rewritten or its head moved to the
        journal's ``offset`` (a prefix take), then drop the journal."""
        stem = doc["stem"]
        batches = doc.get("batches")
        offset = doc.get("offset")
        rewritten = inode(self._path(stem)) != doc.get("pre_ino")
        advanced = isinstance(offset, int) and self._head(stem) == (doc.get("pre_ino"), offset)
        if (rewritten or advanced) and isinstance(batches, dict):
            for batch_id, body in batches.items():
                if not is_batch_id(batch_id):
                    continue
                target = self._layout.batch(stem, batch_id)
                if body is None:
                    unlink_missing_ok(target)
                else:
                    self._layout.ensure_dir(target.parent)
                    self._write(target, journal.encode(body))
        unlink_missing_ok(path)
        lock.commit(bump=bump)

    # Append ---------------------------------------------------------------------------------------
    def append(
        self, inbox: InboxId, envelopes: Sequence[Envelope], guard: Callable[[], bool] | None = None
    ) -> bool:
        """Append all or none; with ``guard``, only if it holds while the inbox lock is held."""
        data = "".join(envelope_to_line(e) for e in envelopes).encode("utf-8")
        stem = inbox_stem(inbox)
        midway = None if self._hook is None else lambda: self._point("append:mid-write")
        with self._hold([stem]) as held:
            if guard is not None and not guard():
                return False
            if data:
                waiting = self._waiting(stem)
                if waiting + len(data) > self._inbox_max:
                    raise InboxFull(waiting, self._inbox_max)
                append_guarded(held[stem], self._path(stem), data, midway)
                held[stem].commit(bump=True)
            return True

    def admit(self, inbox: InboxId, envelopes: Sequence[Envelope]) -> None:
        """InboxFull if appending would pass the cap now (no lock: append checks again under it)."""
        size = sum(len(envelope_to_line(e).encode("utf-8")) for e in envelopes)
        waiting = self._waiting(inbox_stem(inbox))
        if size and waiting + size > self._inbox_max:
            raise InboxFull(waiting, self._inbox_max)

    def remove_if_drained(self, inbox: InboxId, remove: Callable[[], bool]) -> bool:
        """Run ``remove`` under the inbox lock iff no message waits in the inbox or is in flight from it.

        A drained *process* inbox is then removed whole (empty file, empty
        in-flight dir, lock sidecar): its only reader is the server now
        leaving, so no waiter's change token can be fooled by the sidecar's
        counter starting again at 0 (issue 14 item 6). Session inboxes outlive
        servers and keep their files.
        """
        stem = inbox_stem(inbox)
        with self._resolved([stem]) as held:
            path = self._path(stem)
            with self._open(stem) as opened:
                empty = opened is None or opened[1].st_size == 0
                if opened is not None and self._scan(stem, *opened[:2], opened[2], 1).good:
                    return False
            if self._batches(stem):
                return False
            if not remove():
                return False
            if inbox.kind == "process" and empty:
                unlink_missing_ok(self._head_path(stem))
                unlink_missing_ok(path)
                with contextlib.suppress(OSError):
                    os.rmdir(self._layout.inflight_dir(stem))
                held[stem].unlink_if_linked()
            return True

    # Take / settle / restore / recover ----------------------------------------------------------------
    def take(self, inbox: InboxId, select: Selector, holder: Holder) -> Batch | None:
        stem = inbox_stem(inbox)
        with self._resolved([stem]) as held, self._open(stem) as opened:
            if opened is None:
                return None
            fd, st, begin = opened
            scan = self._scan(stem, fd, st, begin, window_of(select))
            good = scan.good
            offered = Offered(tuple(ln.message for ln in good if ln.message is not None), scan.beyond)
            chosen = sorted(set(select(offered)))
            if not chosen:
                if not good and any(
                    ln.bad for ln in scan.lines
                ):  # no message, only bad lines: set them aside
                    self._quarantine_lines(stem, fd, scan.lines)
                    self._cut(stem, fd, scan, scan.end)
                return None  # otherwise nothing changes, not even the mtime (pollers are not woken)
            taken = [good[i] for i in chosen]
            envelopes = tuple(ln.message for ln in taken if ln.message is not None)
            batch = Batch(inbox=inbox, batch_id=new_id(), holder=holder, envelopes=envelopes)
            doc = _batch_doc(batch, [ln.raw or b"" for ln in taken])
            prefix = chosen == list(range(len(chosen)))
            upto = taken[-1].end if prefix else None
            head = upto if upto is not None and not self._compact_due(scan, upto) else None
            self._layout.ensure_dir(self._layout.inflight_dir(stem))
            jpath, jdoc = self._begin_single(stem, {batch.batch_id: doc}, head)
            self._point("take:after-batch-write")
            if upto is not None:
                self._quarantine_lines(stem, fd, [ln for ln in scan.lines if ln.end <= upto])
            else:
                self._quarantine_lines(stem, fd, scan.lines)
            self._point("take:before-inbox-rewrite")
            if head is not None:
                self._write(self._head_path(stem), journal.encode({"ino": scan.ino, "offset": head}))
            elif upto is not None:
                self._cut(stem, fd, scan, upto)
            else:
                keep = {id(ln) for i, ln in enumerate(good) if i not in set(chosen)}
                self._rewrite(stem, fd, [(ln.start, ln.end) for ln in scan.lines if id(ln) in keep], scan)
            self._point("take:after-inbox-rewrite")
            self._finish_single(jpath, jdoc, held[stem], bump=False)
            return batch

    @staticmethod
    def _compact_due(scan: Scan, upto: int) -> bool:
        """Rewrite instead of moving the head: everything is taken, or the taken prefix is large and
        outweighs the unread rest (so a rewrite's cost is paid for by what was taken since the last)."""
        taken = upto  # the bytes before ``upto`` are all taken, older takes included
        return upto >= scan.size or (taken >= _COMPACT_MIN_BYTES and taken >= scan.size - upto)

    def _cut(self, stem: str, fd: int, scan: Scan, upto: int) -> None:
        """Rewrite the inbox as its bytes from ``upto`` on (everything before is taken or set aside)."""
        self._rewrite(stem, fd, [], scan, upto)

    def _rewrite(
        self, stem: str, fd: int, kept: Sequence[Piece], scan: Scan, rest: int | None = None
    ) -> None:
        """Replace the inbox with ``kept`` then its bytes from ``rest`` (default: where the scan
        stopped) to the end, copied in the kernel; the head goes with the old inode."""
        start = scan.end if rest is None else rest
        pieces = [*kept, (start, scan.size)] if start < scan.size else list(kept)
        write_atomic_pieces(self._path(stem), _coalesce(pieces), fd, fsync=self._fsync)
        unlink_missing_ok(self._head_path(stem))

    def settle(self, batch: Batch) -> None:
        self.prepare_settle(batch)()

    def prepare_settle(self, batch: Batch) -> Callable[[], None]:
        """Settling is deleting the batch file: with no journal of this inbox pending, the commit
        is one ``unlink`` with its path built here, and no lock.

        The commit is the step between a reader's response write and "settled" (the duplicate
        window, docs/protocol.md §4), so it must not wait for the inbox lock nor list a directory.
        Lock-free is safe: only the holder settles or restores its batch, a journal names a batch
        only for its restore or its holder's recovery (never while the holder lives and settles),
        and takes and merges do not name existing batches; so a journal that appears after this
        check cannot name this batch. A journal of the inbox pending now (a restore that failed
        half-way, say) could, so then the commit resolves the journals under the lock first.
        """
        if not is_batch_id(batch.batch_id):
            return _nothing
        stem = inbox_stem(batch.inbox)
        path = self._layout.batch(stem, batch.batch_id)
        if not self._journal_pending(stem):

            def unlink() -> None:
                unlink_missing_ok(path)

            return unlink

        def resolved_then_unlink() -> None:
            with self._resolved([stem]):
                unlink_missing_ok(path)

        return resolved_then_unlink

    def _journal_pending(self, stem: str) -> bool:
        try:
            names = os.listdir(self._journals)
        except FileNotFoundError:
            return False
        return any(stem in journal.stems_of(name) for name in names)

    def restore(self, batch: Batch, ids: Sequence[str] | None) -> int:
        if not is_batch_id(batch.batch_id):
            return 0
        stem = inbox_stem(batch.inbox)
        with self._resolved([stem]) as held:
            doc = self._load_batch(self._layout.batch(stem, batch.batch_id))
            if doc is None:
                return 0
            return self._put_back(stem, held[stem], [doc], None if ids is None else set(ids))

    def recover(self, inbox: InboxId, is_alive: Callable[[Holder], bool]) -> int:
        stem = inbox_stem(inbox)
        with self._resolved([stem]) as held:
            docs = [d for d in self._batches(stem) if not is_alive(_holder(d))]
            return self._put_back(stem, held[stem], docs, None)

    def in_flight(self, inbox: InboxId) -> list[Batch]:
        """Unsettled batches of ``inbox``, oldest first (for status views and tests)."""
        stem = inbox_stem(inbox)
        with self._resolved([stem]):
            return [_batch_from_doc(inbox, d) for d in self._batches(stem)]

    def _batches(self, stem: str) -> list[dict[str, Any]]:
        directory = self._layout.inflight_dir(stem)
        if not self._layout.existing_dir(directory):
            return []
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return []
        docs = []
        for name in names:
            if name.endswith(".json") and is_batch_id(name[:-5]):
                doc = self._load_batch(directory / name)
                if doc is not None:
                    docs.append(doc)
        return sorted(docs, key=lambda d: (d["taken_ns"], d["batch_id"]))

    def _load_batch(self, path: Path) -> dict[str, Any] | None:
        raw = read_bounded(path, _BATCH_MAX_BYTES)
        if raw is None:
            return None
        doc = journal.decode(raw)
        if doc is None or not _is_batch_doc(doc):
            os.replace(path, journal.corrupt_aside(path))
            return None
        return doc

    def _put_back(
        self, stem: str, lock: HeldLock, docs: Sequence[dict[str, Any]], wanted: set[str] | None
    ) -> int:
        """Move messages of ``docs`` (oldest batch first) back to the front of the inbox.

        The restored block keeps the batches in the order they were taken, so
        recovered mail is read in the order it arrived.
        """
        front = b""
        updates: dict[str, dict[str, Any] | None] = {}
        restored = 0
        for doc in docs:
            back: list[str] = []
            rest: list[str] = []
            for line in doc["lines"]:
                env = envelope_from_line(line)
                (back if wanted is None or env.id in wanted else rest).append(line)
            if not back:
                continue
            restored += len(back)
            front += "".join(back).encode("utf-8")
            updates[doc["batch_id"]] = dict(doc, lines=rest) if rest else None
        if not restored:
            return 0
        jpath, jdoc = self._begin_single(stem, updates)
        self._point("restore:after-journal")
        with self._open(stem) as opened:
            if opened is None:
                self._write(self._path(stem), front)
                unlink_missing_ok(self._head_path(stem))
            else:
                fd, st, begin = opened
                unread: list[Piece] = [(begin, st.st_size)] if begin < st.st_size else []
                write_atomic_pieces(self._path(stem), [front, *unread], fd, fsync=self._fsync)
                unlink_missing_ok(self._head_path(stem))
        self._point("restore:after-inbox-rewrite")
        self._finish_single(jpath, jdoc, lock, bump=True)
        return restored

    # Merge ------------------------------------------------------------------------------------------------
    def merge(self, source: InboxId, dest: InboxId) -> int:
        src, dst = inbox_stem(source), inbox_stem(dest)
        if src == dst:
            return 0
        with self._resolved([src, dst]) as held:
            begin, data = self._unread(src)
            good, _ = parse_lines(data)
            if not good:
                return 0
            doc = {
                "src": src,
                "dst": dst,
                "pre_src_ino": inode(self._path(src)),
                "pre_src_offset": begin,
                "pre_src_size": begin + len(data),
                "pre_dst_ino": inode(self._path(dst)),
            }
            jpath = self._journals / journal.merge_name(src, dst)
            self._write(jpath, journal.encode(doc))
            self._point("merge:after-journal")
            dest_data = self._unread(dst)[1]
            if dest_data and not dest_data.endswith(b"\n"):
                dest_data += b"\n"
            self._write(self._path(dst), dest_data + b"".join(raw for raw, _ in good))
            unlink_missing_ok(self._head_path(dst))
            self._point("merge:after-dest-append")
            self._finish_merge(jpath, doc, held)
            return len(good)

    def _finish_merge(self, path: Path, doc: dict[str, Any], held: dict[str, HeldLock]) -> None:
        """Commit iff the destination was rewritten: then cut the moved prefix off the source.

        Only appends can have touched the source since the journal was written,
        so its first ``pre_src_size`` bytes are exactly what was read: the moved
        messages plus bad lines (which go to quarantine).
        """
        src, dst = str(doc.get("src")), str(doc.get("dst"))
        if not {src, dst} <= held.keys():
            os.replace(path, journal.corrupt_aside(path))
            return
        dest_written = inode(self._path(dst)) != doc.get("pre_dst_ino")
        if dest_written and inode(self._path(src)) == doc.get("pre_src_ino"):
            data = read_all(self._path(src))
            cut = int(doc.get("pre_src_size", 0))
            self._quarantine(src, parse_lines(data[int(doc.get("pre_src_offset", 0)) : cut])[1])
            self._write(self._path(src), data[cut:])
            unlink_missing_ok(self._head_path(src))
            self._point("merge:after-source-rewrite")
        unlink_missing_ok(path)
        held[src].commit(bump=True)
        held[dst].commit(bump=True)

    # Reading ------------------------------------------------------------------------------------------------
    def _unread(self, stem: str) -> tuple[int, bytes]:
        """Where the unread part begins and its bytes (a merge moves all of it: capped like any read)."""
        with self._open(stem) as opened:
            if opened is None:
                return 0, b""
            fd, st, begin = opened
            if st.st_size - begin > STATE_FILE_MAX_BYTES:
                raise StoreError(f"refusing {self._path(stem)}: larger than {STATE_FILE_MAX_BYTES} bytes")
            return begin, os.pread(fd, st.st_size - begin, begin)

    def depth(self, inbox: InboxId) -> int:
        stem = inbox_stem(inbox)
        with self._hold([stem]), self._open(stem) as opened:
            return 0 if opened is None else len(self._scan(stem, *opened[:2], opened[2], None).good)

    def peek(self, inbox: InboxId, message_id: str) -> bool:
        """Whether the message waits in ``inbox`` or is in flight from it: no lock, no write, no raise.

        A message moves inbox -> journal -> batch file on a take (the journal is
        written before the inbox rewrite and removed after the batch file), so
        reading in that order never misses one that is being taken. A restore
        moves it the other way, renaming the inbox first and bumping the change
        counter last: if the inbox file or the counter changed while we looked,
        we look again (a few times at most). An unreadable, linked or foreign
        file reads as "not there" (A12).
        """
        stem = inbox_stem(inbox)
        path = self._path(stem)
        try:
            text = dumps(message_id)
            key, doc_key = text.encode("utf-8"), json.dumps(text)[1:-1].encode("ascii")
            for _ in range(_PEEK_ROUNDS):
                before = _version(path)
                if _has_line(self._unread_lockfree(stem), key, message_id):
                    return True
                if self._in_journal(stem, doc_key, text, message_id):
                    return True
                if self._in_batches(stem, doc_key, text, message_id):
                    return True
                if _version(path) == before:
                    return False
        except (OSError, StoreError, ValueError):
            return False
        return False

    def _unread_lockfree(self, stem: str) -> bytes | None:
        """The unread bytes of the inbox for :meth:`peek`; None if missing, not regular or over the cap."""
        with self._open(stem, repair=False) as opened:
            if opened is None:
                return None
            fd, st, begin = opened
            if st.st_size - begin > STATE_FILE_MAX_BYTES:
                return None
            return os.pread(fd, st.st_size - begin, begin)

    def _in_journal(self, stem: str, doc_key: bytes, text: str, message_id: str) -> bool:
        """``doc_key`` is the quoted id as it appears inside a JSON document's line strings."""
        raw = read_bounded(self._journals / journal.single_name(stem), _BATCH_MAX_BYTES)
        doc = journal.decode(raw) if raw is not None and doc_key in raw else None
        batches = doc.get("batches") if doc is not None and doc.get("stem") == stem else None
        if not isinstance(batches, dict):
            return False
        return any(isinstance(b, dict) and _in_doc(b, text, message_id) for b in batches.values())

    def _in_batches(self, stem: str, doc_key: bytes, text: str, message_id: str) -> bool:
        directory = self._layout.inflight_dir(stem)
        try:
            if not stat.S_ISDIR(os.lstat(directory).st_mode):
                return False
            names = os.listdir(directory)
        except FileNotFoundError:
            return False
        for name in names:
            if not (name.endswith(".json") and is_batch_id(name[:-5])):
                continue
            raw = read_bounded(directory / name, _BATCH_MAX_BYTES)
            doc = journal.decode(raw) if raw is not None and doc_key in raw else None
            if doc is not None and _in_doc(doc, text, message_id):
                return True
        return False

    def change_token(self, inboxes: Sequence[InboxId]) -> tuple[int, ...]:
        return tuple(read_seq(lock_path(self._path(inbox_stem(i)))) for i in inboxes)

    def wait_for_change(self, inboxes: Sequence[InboxId], token: object, timeout_s: float) -> bool:
        stems = [inbox_stem(i) for i in inboxes]
        return self._watch().wait_until(stems, lambda: self.change_token(inboxes) != token, timeout_s)

    def _watch(self) -> DirWatch:
        """This thread's watch of the inbox directory (a fresh one after a fork, or to retry inotify).

        Imported here: ctypes costs a process that never waits (a hook) about 5 ms.
        """
        from oxtail_fs.store.inotify import DirWatch

        watch: DirWatch | None = getattr(self._watches, "watch", None)
        if watch is None or watch.pid != os.getpid() or watch.fd is None:
            watch = self._watches.watch = DirWatch(self._dir)
        return watch


def head_path(inbox: Path) -> Path:
    """``<inbox>.head``: where the unread part of the inbox file ``inbox`` begins."""
    return inbox.with_name(inbox.name + ".head")


def read_head(path: Path) -> tuple[int, int] | None:
    """``(ino, offset)`` as the head file at ``path`` says, or None (missing, unreadable, malformed)."""
    raw = read_bounded(path, _HEAD_MAX_BYTES)
    doc = journal.decode(raw) if raw is not None else None
    ino, offset = (doc.get("ino"), doc.get("offset")) if doc is not None else (None, None)
    if isinstance(ino, int) and isinstance(offset, int) and offset > 0:
        return ino, offset
    return None


def unread_start(head: Path, fd: int, st: os.stat_result) -> int:
    """Where the unread part of the open inbox ``fd`` begins: the head's offset iff it names this
    inode, lies within the file and follows a newline; else 0 (everything is unread)."""
    found = read_head(head)
    if found is None or found[0] != st.st_ino or found[1] > st.st_size:
        return 0
    return found[1] if os.pread(fd, 1, found[1] - 1) == b"\n" else 0


def unread_bytes(path: Path) -> bytes:
    """The unread part of the inbox file at ``path`` (its head honored), for tests and diagnostics
    that look at inbox files directly; no lock, so only a quiet inbox reads consistently."""
    fd = os.open(path, _READ_FLAGS)
    try:
        st = require_regular(fd, path)
        begin = unread_start(head_path(path), fd, st)
        return os.pread(fd, st.st_size - begin, begin)
    finally:
        os.close(fd)


def _line_end(fd: int, pos: int, size: int) -> int:
    """The end (after its newline, or at ``size``) of the line that runs on at byte ``pos``."""
    while pos < size:
        chunk = os.pread(fd, min(_CHUNK, size - pos), pos)
        if not chunk:
            return pos
        cut = chunk.find(b"\n")
        if cut >= 0:
            return pos + cut + 1
        pos += len(chunk)
    return pos


def _count_lines(fd: int, pos: int, size: int) -> int:
    """Complete lines in bytes ``[pos, size)``, counted in chunks (nothing is parsed or kept)."""
    count = 0
    while pos < size:
        chunk = os.pread(fd, min(_CHUNK, size - pos), pos)
        if not chunk:
            break
        count += chunk.count(b"\n")
        pos += len(chunk)
    return count


def _coalesce(pieces: Sequence[Piece]) -> list[Piece]:
    """Adjacent byte ranges merged, so a rewrite copies runs, not lines."""
    out: list[Piece] = []
    for piece in pieces:
        last = out[-1] if out else None
        if isinstance(piece, tuple) and isinstance(last, tuple) and last[1] == piece[0]:
            out[-1] = (last[0], piece[1])
        else:
            out.append(piece)
    return out


def _version(path: Path) -> tuple[int, tuple[int, int, int, int] | None, tuple[int, int, int] | None]:
    """The inbox's change counter, file identity and head: any take, rewrite or restore changes one."""
    try:
        st = os.lstat(path)
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    except FileNotFoundError:
        stamp = None
    try:
        hd = os.lstat(head_path(path))
        head = (hd.st_ino, hd.st_size, hd.st_mtime_ns)
    except FileNotFoundError:
        head = None
    return read_seq(lock_path(path)), stamp, head


def _has_line(data: bytes | None, key: bytes, message_id: str) -> bool:
    """Whether a complete (newline-terminated) message line with that id is in ``data``."""
    if data is None or key not in data:
        return False
    lines = data.split(b"\n")
    lines.pop()  # a torn last line is no message
    return any(key in raw and _is_message(raw, message_id) for raw in lines)


def _in_doc(doc: dict[str, Any], text: str, message_id: str) -> bool:
    """Whether a batch document (or a journal's batch) holds a line with that id (quoted: ``text``)."""
    lines = doc.get("lines")
    if not isinstance(lines, list):
        return False
    return any(isinstance(line, str) and text in line and _is_message(line, message_id) for line in lines)


def _is_message(line: str | bytes, message_id: str) -> bool:
    """Whether ``line`` is a message with that id, by the rule a take serves by (strict UTF-8)."""
    try:
        return envelope_from_line(line.decode("utf-8") if isinstance(line, bytes) else line).id == message_id
    except (ValueError, TypeError):  # ShapeError and UnicodeDecodeError are ValueErrors
        return False


def _batch_doc(batch: Batch, lines: Sequence[bytes]) -> dict[str, Any]:
    return {
        "inbox": {"kind": batch.inbox.kind, "key": batch.inbox.key},
        "batch_id": batch.batch_id,
        "holder": {"pid": batch.holder.pid, "process_start": batch.holder.process_start},
        "taken_ns": time.time_ns(),
        "lines": [raw.decode("utf-8") for raw in lines],
    }


def _is_batch_doc(doc: dict[str, Any]) -> bool:
    holder = doc.get("holder")
    lines = doc.get("lines")
    return (
        is_batch_id(doc.get("batch_id"))
        and isinstance(doc.get("taken_ns"), int)
        and isinstance(holder, dict)
        and isinstance(holder.get("pid"), int)
        and isinstance(lines, list)
        and all(isinstance(line, str) for line in lines)
    )


def _holder(doc: dict[str, Any]) -> Holder:
    start = doc["holder"].get("process_start")
    return Holder(pid=doc["holder"]["pid"], process_start=start if isinstance(start, (int, float)) else None)


def _batch_from_doc(inbox: InboxId, doc: dict[str, Any]) -> Batch:
    return Batch(
        inbox=inbox,
        batch_id=doc["batch_id"],
        holder=_holder(doc),
        envelopes=tuple(envelope_from_line(line) for line in doc["lines"]),
    )
