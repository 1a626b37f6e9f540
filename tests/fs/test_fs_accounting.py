"""FsStore's accounting files: receipts and outbox records (a contract with the stdlib hook), the
obligation ledger's bytes, crash repair and failures, ``peek`` without locks, ``pending_bump``'s
mtime. The behavior shared with MemoryStore is in the Store contract (tests/fs/test_fs_store.py)."""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from oxtail_core.convert import to_wire
from oxtail_core.errors import StoreError
from oxtail_core.model import LedgerRecord, OutboxRecord, PendingAsk, Receipt
from oxtail_core.testing.contract import DONE, ME, duty, mint, take_all
from oxtail_core.wire import dumps
from oxtail_fs.store.fs_store import FsStore
from oxtail_fs.store.layout import inbox_stem, lock_path
from tests.fs.test_hostile_files import within

DAY_MS = 86_400_000
RECEIPT = Receipt(message_id="8f49af1e0a2ecd80", delivered_at=1_796_150_456, via="read_my_messages")


class Crash(BaseException):
    """The process dying at a crash point (nothing may catch it)."""


def crashing_at(point: str) -> Callable[[str], None]:
    def hook(name: str) -> None:
        if name == point:
            raise Crash(name)

    return hook


def failing_at(point: str) -> Callable[[str], None]:
    def hook(name: str) -> None:
        if name == point:
            raise OSError(errno.ENOSPC, "No space left on device")

    return hook


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def fs(home: Path) -> FsStore:
    return FsStore(home, lock_timeout_s=0.5)


def snapshot(home: Path) -> dict[str, tuple[int, int, bytes | None]]:
    """Every path under ``home`` with its inode, mtime and content: equal iff nothing changed."""
    out = {}
    for path in sorted(home.rglob("*")):
        st = os.lstat(path)
        content = path.read_bytes() if stat.S_ISREG(st.st_mode) else None
        out[str(path.relative_to(home))] = (st.st_ino, st.st_mtime_ns, content)
    return out


# Receipts and outbox ------------------------------------------------------------------------------
def test_a_receipt_is_compact_wire_json_without_newline_named_by_its_id_and_private(fs: FsStore) -> None:
    assert fs.receipt_put(RECEIPT)
    path = fs.home / "receipts" / RECEIPT.message_id
    assert path.read_bytes() == dumps(to_wire(RECEIPT)).encode()
    assert path.read_bytes() == (
        b'{"schema_version":1,"message_id":"8f49af1e0a2ecd80","delivered_at":1796150456,'
        b'"via":"read_my_messages","recipient_session_id":null}'
    )
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert os.listdir(path.parent) == [RECEIPT.message_id]  # no temp file left
    record = OutboxRecord(
        message_id=RECEIPT.message_id, enqueued_at=5, target_session_id="B", target_server_pid=9
    )
    assert fs.outbox_put(record)
    assert (fs.home / "outbox" / RECEIPT.message_id).read_bytes() == dumps(to_wire(record)).encode()


def test_a_receipt_written_by_the_stdlib_hook_reads_back_and_is_never_overwritten(fs: FsStore) -> None:
    hooked = Receipt(message_id=RECEIPT.message_id, delivered_at=7, via="hook", recipient_session_id="B")
    path = fs.home / "receipts" / RECEIPT.message_id
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    os.write(fd, json.dumps(to_wire(hooked), separators=(",", ":")).encode())
    os.close(fd)
    assert fs.receipt_get(RECEIPT.message_id) == hooked
    assert fs.receipt_put(RECEIPT) is False
    assert fs.receipt_get(RECEIPT.message_id) == hooked


VALID = json.loads(dumps(to_wire(RECEIPT)))


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"",
        b"[]",
        b"\xff\xfe",
        json.dumps(dict(VALID, schema_version=2)).encode(),
        json.dumps(dict(VALID, message_id="0000000000000001")).encode(),  # not the file's id
        json.dumps(dict(VALID, message_id=VALID["message_id"].upper())).encode(),
        b" " * (65 << 10) + json.dumps(VALID).encode(),  # over the record cap
    ],
    ids=["bad-json", "empty", "array", "not-utf8", "schema-2", "other-id", "uppercase-id", "huge"],
)
def test_a_corrupt_receipt_reads_as_none_and_stays_first_a11(fs: FsStore, content: bytes) -> None:
    path = fs.home / "receipts" / RECEIPT.message_id
    path.write_bytes(content)
    assert fs.receipt_get(RECEIPT.message_id) is None
    assert fs.receipt_put(RECEIPT) is False  # write-once: the file that is there stays
    assert path.read_bytes() == content
    (fs.home / "outbox" / RECEIPT.message_id).write_bytes(content)
    assert fs.outbox_get(RECEIPT.message_id) is None


@pytest.mark.parametrize("kind", ["symlink", "fifo", "directory"])
def test_a_planted_receipt_is_never_followed_read_or_written_through(
    fs: FsStore, tmp_path: Path, kind: str
) -> None:
    outside = tmp_path / "outside"
    outside.write_bytes(dumps(to_wire(RECEIPT)).encode())
    path = fs.home / "receipts" / RECEIPT.message_id
    if kind == "symlink":
        path.symlink_to(outside)
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
    assert within(10, lambda: fs.receipt_get(RECEIPT.message_id)) == ("ok", None)
    assert within(10, lambda: fs.receipt_put(RECEIPT)) == ("ok", False)
    assert outside.read_bytes() == dumps(to_wire(RECEIPT)).encode()


def test_receipts_gc_judges_by_file_mtime_reclaims_stale_temps_and_leaves_everything_else(
    fs: FsStore,
) -> None:
    now_ms = 1_900_000_000_000
    old_ns = (now_ms - 8 * DAY_MS) * 1_000_000
    fresh_ns = (now_ms - DAY_MS) * 1_000_000
    receipts, outbox = fs.home / "receipts", fs.home / "outbox"
    for n in (1, 2):
        fs.receipt_put(Receipt(message_id=mint(n).id, delivered_at=now_ms // 1000, via="hook"))
        fs.outbox_put(
            OutboxRecord(message_id=mint(n).id, enqueued_at=1, target_session_id=None, target_server_pid=3)
        )
    planted = {
        f"{mint(3).id}.4242.a1b2c3d4e5f6.tmp": old_ns,  # our crash-orphaned temp: reclaimed
        f"{mint(4).id}.tmp.77": old_ns,  # the reference's temp: reclaimed
        f"{mint(5).id}.4242.a1b2c3d4e5f6.tmp": fresh_ns,
        "README": old_ns,
        mint(6).id.upper().replace("0", "A"): old_ns,
        mint(7).id + ".lock": old_ns,
    }
    for name, ns in planted.items():
        (receipts / name).write_text("x")
        os.utime(receipts / name, ns=(ns, ns))
    (receipts / mint(8).id).symlink_to(receipts / "README")
    for directory in (receipts, outbox):
        os.utime(directory / mint(1).id, ns=(old_ns, old_ns))
        os.utime(directory / mint(2).id, ns=(fresh_ns, fresh_ns))
    assert fs.receipts_gc(now_ms - 7 * DAY_MS) == 2
    assert fs.receipt_get(mint(1).id) is None and fs.outbox_get(mint(1).id) is None
    assert fs.receipt_get(mint(2).id) is not None and fs.outbox_get(mint(2).id) is not None
    reclaimed = {f"{mint(3).id}.4242.a1b2c3d4e5f6.tmp", f"{mint(4).id}.tmp.77"}
    assert sorted(os.listdir(receipts)) == sorted({mint(2).id, mint(8).id, *planted} - reclaimed)
    assert sorted(os.listdir(outbox)) == [mint(2).id]
    assert fs.receipts_gc(now_ms - 7 * DAY_MS) == 0


def test_receipts_gc_drops_an_old_outbox_record_even_while_its_message_waits_a8(fs: FsStore) -> None:
    fs.append(ME, [mint(1)])
    fs.outbox_put(
        OutboxRecord(message_id=mint(1).id, enqueued_at=1, target_session_id="s", target_server_pid=3)
    )
    path = fs.home / "outbox" / mint(1).id
    os.utime(path, ns=(0, 0))
    assert fs.receipts_gc(DAY_MS) == 1
    assert fs.outbox_get(mint(1).id) is None and fs.peek(ME, mint(1).id)


def test_receipts_gc_without_its_directories_collects_nothing_and_a_linked_one_is_refused(
    fs: FsStore, tmp_path: Path
) -> None:
    (fs.home / "outbox").rmdir()
    assert fs.receipts_gc(DAY_MS) == 0
    (fs.home / "outbox").symlink_to(tmp_path, target_is_directory=True)
    (tmp_path / mint(1).id).write_text("precious")
    os.utime(tmp_path / mint(1).id, ns=(0, 0))
    with pytest.raises(StoreError, match="symlink"):
        fs.receipts_gc(DAY_MS)
    assert (tmp_path / mint(1).id).read_text() == "precious"


# Peek ------------------------------------------------------------------------------------------------
def test_peek_ignores_a_torn_last_line_and_lines_that_are_not_messages(fs: FsStore) -> None:
    path = fs._layout.inbox(ME)
    fs.append(ME, [mint(1)])
    line = (dumps(to_wire(mint(2))) + "\n").encode()
    with open(path, "ab") as fh:
        fh.write(b'garbage "' + mint(3).id.encode() + b'"\n')
        fh.write(dumps(to_wire(mint(4, "caf\u00e9"))).encode().replace(b"\xc3\xa9", b"\xff") + b"\n")
        fh.write(line[:-1])  # a writer still writing (or killed): no newline yet
    assert fs.peek(ME, mint(1).id) is True
    assert fs.peek(ME, mint(2).id) is False
    assert fs.peek(ME, mint(3).id) is False
    assert fs.peek(ME, mint(4).id) is False  # not UTF-8: a take would never serve it
    with open(path, "ab") as fh:
        fh.write(b"\n")
    assert fs.peek(ME, mint(2).id) is True


def test_peek_finds_a_message_held_only_by_a_take_journal(home: Path) -> None:
    store = FsStore(home)
    store.append(ME, [mint(1), mint(2)])
    crashed = FsStore(home, crash_hook=crashing_at("take:after-inbox-rewrite"))
    with pytest.raises(Crash):
        take_all(crashed)
    assert (
        list((home / "inflight" / inbox_stem(ME)).glob("*.json")) == []
    )  # the batch file is not written yet
    assert store.peek(ME, mint(1).id) is True  # the inbox no longer has it; the journal does
    assert [e.id for b in store.in_flight(ME) for e in b.envelopes] == [mint(1).id, mint(2).id]
    assert store.peek(ME, mint(2).id) is True


def test_peek_writes_nothing_even_where_a_locked_read_would_repair(fs: FsStore) -> None:
    fs.append(ME, [mint(1)])
    batch = take_all(fs)
    fs.append(ME, [mint(2)])
    (fs._layout.inflight_dir(inbox_stem(ME)) / "00000000000000ff.json").write_text(
        "{corrupt"
    )  # a take would set it aside
    with open(fs._layout.inbox(ME), "ab") as fh:
        fh.write(b"torn")  # a take would quarantine it
    before = snapshot(fs.home)
    assert fs.peek(ME, mint(1).id) is True and fs.peek(ME, mint(2).id) is True
    assert snapshot(fs.home) == before
    assert batch is not None


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_peek_of_a_planted_inbox_answers_not_there_at_once(fs: FsStore, tmp_path: Path, kind: str) -> None:
    outside = tmp_path / "outside.jsonl"
    outside.write_text(dumps(to_wire(mint(1))) + "\n")
    path = fs._layout.inbox(ME)
    if kind == "symlink":
        path.symlink_to(outside)
    else:
        os.mkfifo(path)
    assert within(10, lambda: fs.peek(ME, mint(1).id)) == ("ok", False)


# Ledger bytes, repair and failures ------------------------------------------------------------------
def test_a_closed_line_is_the_envelope_then_its_obligation_as_the_reference_writes_it(fs: FsStore) -> None:
    env = duty(1, "please do X")
    fs.ledger_record("me", env, 10)
    fs.ledger_close("me", env.id, DONE)
    assert fs._layout.ledger("me").read_bytes() == (
        b'{"schema_version":1,"id":"0000000000000001","body":"please do X","enqueued_at":1001,'
        b'"body_bytes":11,"origin":"peer","from_session_id":"requester","action_required":true,'
        b'"obligation":{"state":"done","at":1796150478,"note":"X done"}}\n'
    )


def test_a_line_that_is_not_a_record_survives_every_rewrite_and_is_pruned_like_any_other(fs: FsStore) -> None:
    path = fs._layout.ledger("me")
    fs.ledger_record("me", mint(1), 10)
    with open(path, "ab") as fh:
        fh.write(b'{"id":"0000000000000002","torn')  # a foreign writer died mid-line
    fs.ledger_record("me", duty(3), 10)
    fs.ledger_record("me", duty(3, "again"), 10)  # a rewrite
    assert fs.ledger_close("me", duty(3).id, DONE).kind == "claimed"  # another rewrite
    lines = path.read_bytes().split(b"\n")
    assert lines[1] == b'{"id":"0000000000000002","torn'
    assert fs.ledger_lookup("me", mint(2).id) is None
    assert fs.ledger_record("me", mint(4), 2) == 2  # 1 and the torn line, oldest first
    assert b"torn" not in path.read_bytes()


@pytest.mark.parametrize("kind", ["fifo", "symlink", "unreadable", "directory"])
def test_an_unreadable_ledger_is_a_store_error_for_the_open_list_a35(
    fs: FsStore, tmp_path: Path, kind: str
) -> None:
    path = fs._layout.ledger("me")
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink":
        (tmp_path / "forged.jsonl").write_text(dumps(to_wire(duty(1))) + "\n")
        path.symlink_to(tmp_path / "forged.jsonl")
    elif kind == "directory":
        path.mkdir()
    else:
        if os.geteuid() == 0:
            pytest.skip("root reads any file")
        fs.ledger_record("me", duty(1), 10)
        path.chmod(0)
    outcome, error = within(10, lambda: fs.ledger_open("me"))
    assert outcome == "raised" and isinstance(error, StoreError), error


@pytest.mark.parametrize("operation", ["compaction", "close"])
def test_a_failed_ledger_rewrite_leaves_the_ledger_as_it_was_and_no_temp_a14(
    home: Path, operation: str
) -> None:
    store = FsStore(home)
    for env in (duty(1), mint(2), duty(3)):
        store.ledger_record("me", env, 3)
    path = store._layout.ledger("me")
    before = path.read_bytes()
    failing = FsStore(home, crash_hook=failing_at("ledger:after-temp-write"))
    with pytest.raises(StoreError, match="No space left"):
        if operation == "compaction":
            failing.ledger_record("me", duty(4), 3)
        else:
            failing.ledger_close("me", duty(3).id, DONE)
    assert path.read_bytes() == before  # nothing half-recorded: the appended line was cut off again
    assert sorted(os.listdir(path.parent)) == sorted([path.name, lock_path(path).name])
    assert store.ledger_open("me") == [duty(3), duty(1)]


def test_a_ledger_append_refused_by_the_filesystem_is_a_store_error_and_changes_nothing_a14(
    home: Path,
) -> None:
    store = FsStore(home)
    store.ledger_record("me", duty(1), 10)
    path = store._layout.ledger("me")
    before = path.read_bytes()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.close(read)
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (len(before), len(before)))  # "the disk is full"
            try:
                FsStore(home).ledger_record("me", duty(2), 10)
                os.write(write, b"recorded")
            except StoreError as exc:
                os.write(write, f"StoreError {exc}".encode())
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 4096).decode()
    os.waitpid(pid, 0)
    assert answer.startswith("StoreError") and "File too large" in answer, answer
    assert path.read_bytes() == before
    assert store.ledger_open("me") == [duty(1)]


def test_a_crash_inside_a_compaction_never_reopens_and_the_next_holder_repairs_it_a32(home: Path) -> None:
    store = FsStore(home)
    store.ledger_record("me", duty(1), 10)
    store.ledger_record("me", duty(2), 10)
    store.ledger_close("me", duty(1).id, DONE)
    path = store._layout.ledger("me")
    crashed = FsStore(home, crash_hook=crashing_at("ledger:after-temp-write"))
    with pytest.raises(Crash):
        crashed.ledger_record("me", duty(1, "redelivered"), 10)  # appended, then killed before the rename
    assert path.with_name(path.name + ".tmp").exists()
    assert path.read_bytes().count(b'"id":"0000000000000001"') == 2  # the old line and the new
    assert store.ledger_open("me") == [duty(2)]  # lock-free readers: still closed
    assert store.ledger_lookup("me", duty(1).id) == duty(1, "redelivered")
    assert store.ledger_record("me", mint(3), 10) == 0  # the next holder repairs first
    assert not path.with_name(path.name + ".tmp").exists()
    lines = [LedgerRecord(duty(2)), LedgerRecord(duty(1, "redelivered"), DONE), LedgerRecord(mint(3))]
    assert path.read_bytes() == b"".join((dumps(to_wire(r)) + "\n").encode() for r in lines)


def test_a_crash_inside_a_close_leaves_it_open_for_the_next_closer(home: Path) -> None:
    store = FsStore(home)
    store.ledger_record("me", duty(1), 10)
    crashed = FsStore(home, crash_hook=crashing_at("ledger:after-temp-write"))
    with pytest.raises(Crash):
        crashed.ledger_close("me", duty(1).id, DONE)
    assert store.ledger_open("me") == [duty(1)]
    assert store.ledger_close("me", duty(1).id, DONE).kind == "claimed"
    path = store._layout.ledger("me")
    assert sorted(os.listdir(path.parent)) == sorted([path.name, lock_path(path).name])


# Pending bumps --------------------------------------------------------------------------------------
def test_a_bump_keeps_the_record_file_s_mtime_the_reference_s_ttl_clock(fs: FsStore) -> None:
    fs.pending_put(PendingAsk(requester="req", request_id="r1", at_ms=100, peer="bob", message_id=mint(1).id))
    path = fs._layout.pending("req", "r1")
    os.utime(path, ns=(1_000_000_000, 2_000_000_000))
    assert fs.pending_bump("req", "r1", 500)
    assert os.stat(path).st_mtime_ns == 2_000_000_000
    body = json.loads(path.read_bytes())
    assert (body["at"], body["attempts"], body["lastRepokeAt"]) == (100, 1, 500)
    assert sorted(os.listdir(path.parent)) == sorted([path.name, ".lock"])


def test_a_bump_of_a_corrupt_record_changes_nothing(fs: FsStore) -> None:
    path = fs._layout.pending("req", "r1")
    path.write_text("{broken")
    assert fs.pending_bump("req", "r1", 500) is False
    assert path.read_text() == "{broken"
