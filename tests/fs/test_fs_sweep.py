"""The store's sweep (selfheal §4.3-4.4): real processes SIGKILLed mid-write leave leftovers, the
sweep removes exactly those, and never a live writer's file, a held lock, mail, or anything behind
a planted symlink. Ages are judged against the ``now_ms`` the sweep is given (a fake clock)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from oxtail_core.model import ActivityMarker
from oxtail_core.protocols import Holder, InboxId
from oxtail_core.testing.contract import duty, entry, mint
from oxtail_fs.store.fs_store import FsStore
from oxtail_fs.store.layout import inbox_stem
from oxtail_fs.store.sweep import INBOX_MIN_AGE_MS, QUARANTINE_MAX_AGE_MS, TEMP_MIN_AGE_MS

ALL: Callable[[object], range] = lambda es: range(len(es))  # type: ignore[arg-type]  # noqa: E731
DAY_MS = 86_400_000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def killed_at_rename(home: Path, nth: int, work: Callable[[FsStore], object]) -> None:
    """Run ``work`` in a child that SIGKILLs itself at its ``nth`` rename of a temp file (real death
    between writing a temp and publishing it: the one moment a temp can be left)."""
    pid = os.fork()
    if pid == 0:
        try:
            real = os.replace
            seen = [0]

            def replace(src: object, dst: object) -> None:
                if str(src).endswith(".tmp"):
                    seen[0] += 1
                    if seen[0] == nth:
                        os.kill(os.getpid(), signal.SIGKILL)
                real(src, dst)  # type: ignore[arg-type]

            os.replace = replace  # type: ignore[assignment]
            work(FsStore(home))
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


def temps(home: Path) -> set[Path]:
    return {p for p in home.rglob("*.tmp") if not p.is_symlink()}


def live_child(job: Callable[[], object]) -> tuple[int, int]:
    """A child that runs ``job`` and then waits until its pipe is closed; returns (pid, write end)."""
    ready_r, ready_w = os.pipe()
    stop_r, stop_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(ready_r)
            os.close(stop_w)
            job()
            os.write(ready_w, b"x")
            os.read(stop_r, 1)
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(stop_r)
    assert os.read(ready_r, 1) == b"x"
    os.close(ready_r)
    return pid, stop_w


def finish(child: tuple[int, int]) -> None:
    os.close(child[1])
    os.waitpid(child[0], 0)


def test_temps_of_writers_killed_mid_write_are_swept_and_a_live_writers_temp_is_kept(tmp_path: Path) -> None:
    store = FsStore(tmp_path)
    inbox = InboxId.for_session("sweep-session")
    store.append(inbox, [mint(1), mint(2)])

    def take(s: FsStore) -> None:
        s.take(inbox, lambda es: [0], Holder(pid=os.getpid()))

    for nth in (1, 2, 3):  # the take's journal, inbox rewrite and batch file
        killed_at_rename(tmp_path, nth, take)
        store.recover(inbox, lambda h: False)
    killed_at_rename(tmp_path, 1, lambda s: s.registry_put(entry(4242)))
    killed_at_rename(tmp_path, 1, lambda s: s.activity_put("x", ActivityMarker("busy", 1)))
    dead = temps(tmp_path)
    assert len(dead) == 5

    def write_and_hold() -> None:
        (tmp_path / "registry" / f"77.json.{os.getpid()}.0123456789ab.tmp").write_bytes(b"half")

    child = live_child(write_and_hold)
    try:
        live = tmp_path / "registry" / f"77.json.{child[0]}.0123456789ab.tmp"
        assert live.exists()
        assert store.sweep(now_ms()).temps == 0  # too young to judge, even with the writer dead
        report = store.sweep(now_ms() + TEMP_MIN_AGE_MS + 60_000)
        assert report.temps == 5 and report.kept_in_doubt >= 1
        assert temps(tmp_path) == {live}  # exactly the dead writers' temps went
    finally:
        finish(child)
    batch = store.take(inbox, ALL, Holder(pid=os.getpid()))
    assert batch is not None and sorted(e.id for e in batch.envelopes) == [mint(1).id, mint(2).id]


def test_a_ledger_rewrite_killed_after_its_temp_is_repaired_by_the_sweep(tmp_path: Path) -> None:
    store = FsStore(tmp_path)
    store.ledger_record("lead", duty(1), 1)
    pid = os.fork()
    if pid == 0:

        def die(point: str) -> None:
            if point == "ledger:after-temp-write":
                os.kill(os.getpid(), signal.SIGKILL)

        try:
            FsStore(tmp_path, crash_hook=die).ledger_record("lead", duty(2), 1)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    path = store._layout.ledger("lead")
    temp = path.with_name(path.name + ".tmp")
    assert temp.exists()
    assert store.sweep(now_ms()).temps == 1
    assert not temp.exists()
    assert sorted(e.id for e in store.ledger_open("lead")) == [duty(1).id, duty(2).id]
    assert len(path.read_bytes().splitlines()) == 2  # normalized: one line per id


def _drained_box(home: Path, inbox: InboxId) -> None:
    """A killed server's leftovers: an empty inbox, its lock, an empty in-flight dir."""

    def drain(s: FsStore) -> None:
        s.append(inbox, [mint(9)])
        batch = s.take(inbox, ALL, Holder(pid=os.getpid()))
        assert batch is not None
        s.settle(batch)
        os.kill(os.getpid(), signal.SIGKILL)

    killed_at_rename(home, 10**6, drain)


def test_an_empty_unreferenced_inbox_is_collected_and_everything_else_stays(tmp_path: Path) -> None:
    store = FsStore(tmp_path)
    gone = InboxId.for_process(999_999, 1)
    registered = entry(31, sid="kept-session")
    store.registry_put(registered)
    kept_empty = InboxId.for_session("kept-session")
    with_mail = InboxId.for_session("nobody-but-mail")
    young = InboxId.for_session("young")
    for inbox in (gone, kept_empty, young):
        _drained_box(tmp_path, inbox)
    head = store._layout.inbox(gone).with_name(f"{inbox_stem(gone)}.jsonl.head")  # a prefix read's offset
    head.write_text('{"ino": 1, "offset": 10}')
    store.append(with_mail, [mint(1)])
    young_path = store._layout.inbox(young)
    future = time.time() + 30 * 86_400
    os.utime(young_path, (future, future))
    lock_only = tmp_path / "inboxes" / f"{inbox_stem(InboxId.for_session('gone-too'))}.jsonl.lock"
    lock_only.write_bytes(b"")

    report = store.sweep(now_ms() + INBOX_MIN_AGE_MS + DAY_MS)
    assert (report.inboxes, report.locks) == (1, 1)
    stem = inbox_stem(gone)
    assert not list((tmp_path / "inboxes").glob(f"{stem}*"))
    assert not (tmp_path / "inflight" / stem).exists()
    assert not lock_only.exists()
    for inbox in (kept_empty, young, with_mail):
        assert store._layout.inbox(inbox).exists()
    assert store.depth(with_mail) == 1


def test_a_registry_file_that_does_not_parse_keeps_every_inbox(tmp_path: Path) -> None:
    store = FsStore(tmp_path)
    gone = InboxId.for_process(999_998, 1)
    _drained_box(tmp_path, gone)
    (tmp_path / "registry" / "123.json").write_text("{not json")
    report = store.sweep(now_ms() + INBOX_MIN_AGE_MS + DAY_MS)
    assert report.inboxes == 0 and store._layout.inbox(gone).exists()
    (tmp_path / "registry" / "123.json").unlink()
    assert store.sweep(now_ms() + INBOX_MIN_AGE_MS + DAY_MS).inboxes == 1


def test_a_lock_held_by_another_live_process_is_never_taken_or_removed(tmp_path: Path) -> None:
    store = FsStore(tmp_path)
    gone = InboxId.for_process(999_997, 1)
    _drained_box(tmp_path, gone)
    path = store._layout.inbox(gone)
    lock = path.with_name(path.name + ".lock")
    holding: list[object] = []

    def take_lock() -> None:
        from oxtail_fs.store.locks import hold

        cm = hold(lock, 1.0, 0.005)
        cm.__enter__()
        holding.append(cm)

    child = live_child(take_lock)
    try:
        report = store.sweep(now_ms() + INBOX_MIN_AGE_MS + DAY_MS)
        assert report.inboxes == 0 and report.kept_in_doubt >= 1
        assert path.exists() and lock.exists()
    finally:
        finish(child)
    assert store.sweep(now_ms() + INBOX_MIN_AGE_MS + DAY_MS).inboxes == 1
    assert not lock.exists()


def test_an_old_quarantine_goes_and_a_recent_one_stays(tmp_path: Path) -> None:
    store = FsStore(tmp_path)
    inbox = InboxId.for_session("q")
    store.registry_put(entry(41, sid="q"))
    path = store._layout.inbox(inbox)
    path.write_bytes(b"not a message\n")
    assert store.take(inbox, ALL, Holder(pid=1)) is None  # the line goes to the quarantine
    quarantine = path.with_name(path.name + ".quarantine")
    assert quarantine.read_bytes() == b"not a message\n"
    assert store.sweep(now_ms() + QUARANTINE_MAX_AGE_MS - DAY_MS).quarantines == 0
    assert quarantine.exists()
    assert store.sweep(now_ms() + QUARANTINE_MAX_AGE_MS + DAY_MS).quarantines == 1
    assert not quarantine.exists() and path.exists()  # a registered inbox stays


def test_planted_symlinks_are_never_followed_or_removed_by_the_sweep(tmp_path: Path) -> None:
    home = tmp_path / "home"
    outside = tmp_path / "outside"
    outside.mkdir()
    store = FsStore(home)
    victim = outside / "victim.1.0123456789ab.tmp"
    victim.write_bytes(b"")
    box = outside / f"s-{'0' * 32}.jsonl"
    box.write_bytes(b"")
    links = [
        home / "inflight" / f"p-{'1' * 32}",  # a directory link: never entered
        home / "activity" / "x.1.0123456789ab.tmp",  # a temp-named link: never removed
        home / "inboxes" / f"s-{'2' * 32}.jsonl",  # an inbox link
        home / "inboxes" / f"s-{'3' * 32}.jsonl.lock",  # a lock link
        home / "inboxes" / f"s-{'4' * 32}.jsonl.quarantine",  # a quarantine link
    ]
    targets = [outside, victim, box, box, box]
    for link, target in zip(links, targets, strict=True):
        link.symlink_to(target)
    store.sweep(now_ms() + 400 * DAY_MS)
    assert all(link.is_symlink() for link in links)
    assert victim.exists() and box.exists() and box.read_bytes() == b""
