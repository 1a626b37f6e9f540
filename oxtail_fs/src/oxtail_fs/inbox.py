"""Inboxes as JSONL files: append, take into in-flight batches, restore, recover, merge.

Invariants (see docs/protocol.md):

* every inbox file is only changed by the holder of its sidecar lock;
* an append is all or none (a crashed append is truncated back by the next holder);
* a take, restore, recover or merge is all or none (an intent journal, see
  :mod:`oxtail_fs.journal`), so a message is never both in the inbox and in
  flight, never in two inboxes after a merge, and never lost;
* a line that is not a message (torn, corrupt, not UTF-8) is never served and
  never silently destroyed: the next rewrite moves it to ``<inbox>.quarantine``;
* survivors of a rewrite keep their bytes and order.
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

from oxtail_core.convert import envelope_from_line, envelope_to_line
from oxtail_core.errors import InboxFull, StoreBusy, StoreError
from oxtail_core.ids import new_id
from oxtail_core.limits import INBOX_MAX_BYTES
from oxtail_core.model import Envelope
from oxtail_core.protocols import Batch, Holder, InboxId, Selector
from oxtail_core.wire import dumps
from oxtail_fs import journal
from oxtail_fs.atomic import (
    STATE_FILE_MAX_BYTES,
    inode,
    read_all,
    read_bounded,
    require_regular,
    unlink_missing_ok,
    write_all,
    write_atomic,
)
from oxtail_fs.layout import FILE_MODE, Layout, inbox_stem, is_batch_id, lock_path
from oxtail_fs.locks import HeldLock, append_guarded, hold, read_seq
from oxtail_fs.names import INBOXES, JOURNAL

if TYPE_CHECKING:
    from oxtail_fs.inotify import DirWatch

CrashHook = Callable[[str], None]
Entry = tuple[bytes, Envelope]
_APPEND_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
_JOURNAL_RETRIES = 8
_BATCH_MAX_BYTES = 64 << 20
_PARSED_MAX_LINES = 20_000
_PEEK_ROUNDS = 4


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
    ) -> None:
        self._layout = layout
        self._timeout = lock_timeout_s
        self._interval = check_interval_s
        self._fsync = fsync
        self._hook = crash_hook
        self._dir = layout.dir(INBOXES)
        self._journals = layout.dir(JOURNAL)
        self._watches = threading.local()
        self._parsed: dict[str, dict[bytes, Envelope]] = {}
        self._parsed_lock = threading.Lock()

    # Paths and small helpers ----------------------------------------------------------
    def _path(self, stem: str) -> Path:
        return self._layout.stem_inbox(stem)

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

    def _parse(self, stem: str, data: bytes) -> tuple[list[Entry], list[bytes]]:
        """``parse_lines`` remembering this inbox's parsed lines (issue 15 item 12).

        A take of 50 from 10,000 waiting then parses only lines it has not seen;
        the memory is that of the inbox (bounded by its cap) and at most
        ``_PARSED_MAX_LINES`` lines are remembered per process.
        """
        with self._parsed_lock:
            known = self._parsed.get(stem, {})
        good, bad = parse_lines(data, known)
        with self._parsed_lock:
            self._parsed.pop(stem, None)
            room = _PARSED_MAX_LINES - sum(len(v) for v in self._parsed.values())
            if room > 0:
                self._parsed[stem] = dict(good[:room])
        return good, bad

    def _write(self, path: Path, data: bytes) -> None:
        write_atomic(path, data, fsync=self._fsync)

    # Locking ----------------------------------------------------------------------------
    @contextmanager
    def _hold(self, stems: Sequence[str]) -> Iterator[dict[str, HeldLock]]:
        """Hold the locks of ``stems`` (in sorted order: no deadlock) with crashed appends undone."""
        with ExitStack() as stack:
            held: dict[str, HeldLock] = {}
            for stem in sorted(set(stems)):
                held[stem] = stack.enter_context(
                    hold(lock_path(self._path(stem)), self._timeout, self._interval)
                )
                held[stem].undo_crashed_append(self._path(stem))
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
        self, stem: str, updates: dict[str, dict[str, Any] | None]
    ) -> tuple[Path, dict[str, Any]]:
        doc = {"stem": stem, "pre_ino": inode(self._path(stem)), "batches": updates}
        path = self._journals / journal.single_name(stem)
        self._write(path, journal.encode(doc))
        return path, doc

    def _finish_single(self, path: Path, doc: dict[str, Any], lock: HeldLock, *, bump: bool) -> None:
        """Commit the batch-file updates iff the inbox was rewritten, then drop the journal."""
        stem = doc["stem"]
        batches = doc.get("batches")
        if inode(self._path(stem)) != doc.get("pre_ino") and isinstance(batches, dict):
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
                waiting = _size(self._path(stem))
                if waiting + len(data) > INBOX_MAX_BYTES:
                    raise InboxFull(waiting, INBOX_MAX_BYTES)
                append_guarded(held[stem], self._path(stem), data, midway)
                held[stem].commit(bump=True)
            return True

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
            data = read_all(path)
            if parse_lines(data)[0] or self._batches(stem):
                return False
            if not remove():
                return False
            if inbox.kind == "process" and not data:
                unlink_missing_ok(path)
                with contextlib.suppress(OSError):
                    os.rmdir(self._layout.inflight_dir(stem))
                held[stem].unlink_if_linked()
            return True

    # Take / settle / restore / recover ----------------------------------------------------------------
    def take(self, inbox: InboxId, select: Selector, holder: Holder) -> Batch | None:
        stem = inbox_stem(inbox)
        with self._resolved([stem]) as held:
            path = self._path(stem)
            good, bad = self._parse(stem, read_all(path))
            chosen = sorted(set(select(tuple(env for _, env in good))))
            if not chosen:
                if bad and not good:  # bytes but no message: set them aside, so the box reads empty
                    self._quarantine(stem, bad)
                    self._write(path, b"")
                return None  # otherwise nothing changes, not even the mtime (pollers are not woken)
            taken = [good[i] for i in chosen]
            keep = set(chosen)
            survivors = b"".join(raw for i, (raw, _) in enumerate(good) if i not in keep)
            batch = Batch(inbox=inbox, batch_id=new_id(), holder=holder, envelopes=tuple(e for _, e in taken))
            doc = _batch_doc(batch, [raw for raw, _ in taken])
            self._layout.ensure_dir(self._layout.inflight_dir(stem))
            jpath, jdoc = self._begin_single(stem, {batch.batch_id: doc})
            self._point("take:after-batch-write")
            self._quarantine(stem, bad)
            self._point("take:before-inbox-rewrite")
            self._write(path, survivors)
            self._point("take:after-inbox-rewrite")
            self._finish_single(jpath, jdoc, held[stem], bump=False)
            return batch

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
        path = self._path(stem)
        jpath, jdoc = self._begin_single(stem, updates)
        self._point("restore:after-journal")
        self._write(path, front + read_all(path))
        self._point("restore:after-inbox-rewrite")
        self._finish_single(jpath, jdoc, lock, bump=True)
        return restored

    # Merge ------------------------------------------------------------------------------------------------
    def merge(self, source: InboxId, dest: InboxId) -> int:
        src, dst = inbox_stem(source), inbox_stem(dest)
        if src == dst:
            return 0
        with self._resolved([src, dst]) as held:
            data = read_all(self._path(src))
            good, _ = parse_lines(data)
            if not good:
                return 0
            doc = {
                "src": src,
                "dst": dst,
                "pre_src_ino": inode(self._path(src)),
                "pre_src_size": len(data),
                "pre_dst_ino": inode(self._path(dst)),
            }
            jpath = self._journals / journal.merge_name(src, dst)
            self._write(jpath, journal.encode(doc))
            self._point("merge:after-journal")
            dest_data = read_all(self._path(dst))
            if dest_data and not dest_data.endswith(b"\n"):
                dest_data += b"\n"
            self._write(self._path(dst), dest_data + b"".join(raw for raw, _ in good))
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
            self._quarantine(src, parse_lines(data[:cut])[1])
            self._write(self._path(src), data[cut:])
            self._point("merge:after-source-rewrite")
        unlink_missing_ok(path)
        held[src].commit(bump=True)
        held[dst].commit(bump=True)

    # Reading ------------------------------------------------------------------------------------------------
    def depth(self, inbox: InboxId) -> int:
        stem = inbox_stem(inbox)
        with self._hold([stem]):
            return len(self._parse(stem, read_all(self._path(stem)))[0])

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
                if _has_line(read_bounded(path, STATE_FILE_MAX_BYTES), key, message_id):
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
        from oxtail_fs.inotify import DirWatch

        watch: DirWatch | None = getattr(self._watches, "watch", None)
        if watch is None or watch.pid != os.getpid() or watch.fd is None:
            watch = self._watches.watch = DirWatch(self._dir)
        return watch


def _size(path: Path) -> int:
    try:
        return os.lstat(path).st_size
    except FileNotFoundError:
        return 0


def _version(path: Path) -> tuple[int, tuple[int, int, int, int] | None]:
    """The inbox's change counter and file identity: any rewrite or restore changes one of them."""
    try:
        st = os.lstat(path)
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    except FileNotFoundError:
        stamp = None
    return read_seq(lock_path(path)), stamp


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
