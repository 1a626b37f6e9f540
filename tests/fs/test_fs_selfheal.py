"""FsStore's self-heal files: the reference's pending-wake names, crash leftovers (selfheal S9), and
hostile entries in ``pending-wake/``. The shared behavior is in the Store contract."""

from __future__ import annotations

import os
from pathlib import Path

from oxtail_core.model import PendingWake
from oxtail_fs.store.fs_store import FsStore

SID = "aaaaaaaa-0000-0000-0000-000000000001"
MID = "0123456789abcdef"


def test_a_pending_wake_is_named_like_the_reference_and_its_body_keeps_the_key_order(tmp_path: Path) -> None:
    store = FsStore(tmp_path)
    store.wake_intent_put(PendingWake(recipient=SID, message_id=MID, sender=None, sent_at_ms=5))
    path = tmp_path / "pending-wake" / "w-15a29b41413136a4b399413d833ae47a"
    assert path.read_text() == (
        f'{{"recipientSessionId":"{SID}","messageId":"{MID}","senderSessionId":null,'
        '"sentAt":5,"attempts":0,"lastAttemptAt":null}'
    )
    assert oct(os.stat(tmp_path / "pending-wake").st_mode & 0o777) == "0o700"


def test_a_crash_leftover_is_never_listed_and_gc_removes_it_once_old(tmp_path: Path) -> None:
    """S9: a temp of an interrupted bump; also a body we cannot parse and a foreign name."""
    store = FsStore(tmp_path)
    store.wake_intent_put(PendingWake(recipient=SID, message_id=MID, sent_at_ms=10_000))
    directory = tmp_path / "pending-wake"
    temp = directory / "w-15a29b41413136a4b399413d833ae47a.tmp.123.deadbeef"
    temp.write_text((directory / "w-15a29b41413136a4b399413d833ae47a").read_text())
    junk = directory / ("w-" + "f" * 32)
    junk.write_text("{not json")
    other = directory / "notes.txt"
    other.write_text("x")
    for path in (temp, junk):
        os.utime(path, ns=(2_000_000_000, 2_000_000_000))  # mtime 2000 ms
    assert [r.message_id for r in store.wake_intent_list(SID)] == [MID]
    assert store.wake_intent_gc(1_999) == 0 and temp.exists() and junk.exists()
    assert store.wake_intent_gc(2_000) == 0  # the leftovers go, uncounted; the record is younger
    assert not temp.exists() and not junk.exists() and other.exists()
    assert store.wake_intent_gc(10_000) == 1 and store.wake_intent_list(SID) == []


def test_a_bump_keeps_the_files_mtime(tmp_path: Path) -> None:
    store = FsStore(tmp_path)
    store.wake_intent_put(PendingWake(recipient=SID, message_id=MID, sent_at_ms=1))
    path = tmp_path / "pending-wake" / "w-15a29b41413136a4b399413d833ae47a"
    os.utime(path, ns=(1_000_000, 1_000_000))
    assert store.wake_intent_bump(SID, MID, 99)
    assert os.stat(path).st_mtime_ns == 1_000_000
    (record,) = store.wake_intent_list(SID)
    assert (record.attempts, record.last_attempt_at, record.sent_at_ms) == (1, 99, 1)
