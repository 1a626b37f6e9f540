"""Real processes racing the accounting files: closers of one obligation, writers of one receipt,
SIGKILLs inside ledger rewrites, and lock-free readers (``peek``, ``ledger_open``) while others
rewrite. Same harness as tests/fs/test_fs_crash.py (fork, one-write logs, SIGKILL)."""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from oxtail_core.model import Envelope, Obligation, Receipt
from oxtail_core.protocols import Holder, InboxId
from oxtail_core.testing.contract import duty, mint
from oxtail_fs.store.fs_store import FsStore
from oxtail_fs.store.layout import lock_path
from tests.fs.test_fs_crash import fork, kill_at, log_line, read_log, reap

INBOX = InboxId.for_session("peek-target")


def released_together(count: int, run: Callable[[int], None]) -> list[int]:
    """Fork ``count`` children that block on one pipe, then release them at once; their pids."""
    read, write = os.pipe()

    def child(i: int) -> None:
        os.close(write)
        os.read(read, 1)
        run(i)

    pids = [fork(lambda i=i: child(i)) for i in range(count)]
    os.close(read)
    time.sleep(0.05)  # let every child reach its read
    os.write(write, b"x" * count)
    os.close(write)
    return pids


@pytest.mark.slow
@pytest.mark.parametrize("round_", range(3))
def test_of_processes_racing_to_close_one_obligation_exactly_one_claims_it_a23(
    tmp_path: Path, round_: int
) -> None:
    home, log = tmp_path / "home", tmp_path / "closes"
    store = FsStore(home)
    obligations = [duty(n) for n in range(1, 5)]
    for env in obligations:
        store.ledger_record("me", env, 1000)

    def closer(i: int) -> None:
        mine = FsStore(home, lock_timeout_s=10.0)
        for env in obligations:
            outcome = Obligation(state="done" if i % 2 else "blocked", at=i, note=f"closer {i}")
            result = mine.ledger_close("me", env.id, outcome)
            stored = result.record.obligation if result.record and result.record.obligation else None
            log_line(log, [env.id, i, result.kind, stored.note if stored else None])

    for pid in released_together(6, closer):
        reap(pid)
    results = read_log(log)
    assert len(results) == 6 * len(obligations)
    for env in obligations:
        mine = [r for r in results if r[0] == env.id]
        winners = [r for r in mine if r[2] == "claimed"]
        assert len(winners) == 1, mine
        winner_note = f"closer {winners[0][1]}"
        assert all(r[2] == "already-closed" and r[3] == winner_note for r in mine if r is not winners[0])
        late = store.ledger_close("me", env.id, Obligation(state="done", at=0, note="late"))
        assert (
            late.kind == "already-closed" and late.record is not None and late.record.obligation is not None
        )
        assert late.record.obligation.note == winner_note
    assert store.ledger_open("me") == []
    lines = store._layout.ledger("me").read_bytes().splitlines()
    assert len(lines) == len(obligations)  # one line per obligation, each closed once


@pytest.mark.slow
def test_processes_racing_to_write_one_receipt_leave_exactly_the_first_a1(tmp_path: Path) -> None:
    home, log = tmp_path / "home", tmp_path / "puts"
    FsStore(home)
    mid = mint(1).id

    def writer(i: int) -> None:
        receipt = Receipt(message_id=mid, delivered_at=1000 + i, via="hook", recipient_session_id=f"r{i}")
        log_line(log, [i, FsStore(home).receipt_put(receipt)])

    for pid in released_together(8, writer):
        reap(pid)
    results = read_log(log)
    winners = [i for i, created in results if created]
    assert len(results) == 8 and len(winners) == 1
    stored = FsStore(home).receipt_get(mid)
    assert stored == Receipt(
        message_id=mid, delivered_at=1000 + winners[0], via="hook", recipient_session_id=f"r{winners[0]}"
    )
    assert os.listdir(home / "receipts") == [mid]


def ledger_files(store: FsStore) -> list[str]:
    path = store._layout.ledger("me")
    return sorted(p for p in os.listdir(path.parent) if p.startswith(path.name))


def ledger_and_lock(store: FsStore) -> list[str]:
    """What ``ledger_files`` is when no temp file is left behind."""
    path = store._layout.ledger("me")
    return sorted([path.name, lock_path(path).name])


SCENARIOS = {
    "re-record-closed": lambda s: s.ledger_record("me", duty(1, "again"), 3),
    "prune": lambda s: s.ledger_record("me", mint(50), 3),
    "re-record-open": lambda s: s.ledger_record("me", duty(3, "again"), 3),
    "close": lambda s: s.ledger_close("me", duty(2).id, Obligation(state="done", at=1, note="n")),
}


@pytest.mark.slow
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_sigkill_inside_a_ledger_rewrite_keeps_every_open_obligation_and_the_next_holder_cleans_up(
    tmp_path: Path, scenario: str
) -> None:
    home = tmp_path / "home"
    store = FsStore(home)
    for env in (duty(1), mint(10), duty(2), mint(11), duty(3), duty(4), duty(5)):
        store.ledger_record("me", env, 3)  # 5 open obligations over a cap of 3: the plain lines went
    store.ledger_close("me", duty(1).id, Obligation(state="done", at=1, note="first"))
    opened = [duty(n) for n in (5, 4, 3, 2)]
    assert store.ledger_open("me") == opened
    pid = fork(lambda: SCENARIOS[scenario](FsStore(home, crash_hook=kill_at("ledger:after-temp-write"))))
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, "the rewrite was not reached"
    # lock-free readers see the old file, or it with the appended line (a re-record: its id once)
    assert {e.id for e in store.ledger_open("me")} == {e.id for e in opened}
    assert store.ledger_record("me", mint(60), 3) >= 0  # the next holder repairs first
    assert ledger_files(store) == ledger_and_lock(store)
    assert {e.id for e in store.ledger_open("me")} == {e.id for e in opened}
    ids = [line.split(b'"id":"')[1][:16] for line in store._layout.ledger("me").read_bytes().splitlines()]
    assert len(ids) == len(set(ids))  # one line per id after the repair
    assert store.ledger_close("me", duty(2).id, Obligation(state="done", at=2, note="x")).kind == "claimed"


def ledger_victim(home: Path, log: Path, seed: int) -> None:
    """Close the odd obligations, re-record the even (open) ones, add plain mail: until killed."""
    rng = random.Random(seed)
    store = FsStore(home, lock_timeout_s=10.0)
    for n in range(10_000):
        pick = rng.randrange(4)
        if pick == 0:
            target = duty(rng.choice((1, 3, 5, 7)))
            if (
                store.ledger_close("me", target.id, Obligation(state="done", at=n, note="v")).kind
                == "claimed"
            ):
                log_line(log, target.id)
        elif pick == 1:  # re-record an open one (a closed one re-recorded after its pruning is new)
            store.ledger_record("me", duty(rng.choice((2, 4, 6, 8)), f"again {n}"), 4)
        else:
            store.ledger_record("me", Envelope(id=f"plain-{seed}-{n}", body="p", body_bytes=1), 4)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3))
def test_random_sigkills_of_ledger_writers_never_lose_or_reopen_an_obligation(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    home, log = tmp_path / "home", tmp_path / "closed"
    store = FsStore(home, lock_timeout_s=10.0)
    for n in range(1, 9):
        store.ledger_record("me", duty(n), 4)
    never_closed = {duty(n).id for n in (2, 4, 6, 8)}
    for round_ in range(12):
        salts = [seed * 100 + round_ * 2 + k for k in range(2)]
        pids = [fork(lambda salt=salt: ledger_victim(home, log, salt)) for salt in salts]
        time.sleep(rng.uniform(0.005, 0.05))
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        for pid in pids:
            reap(pid)
        open_now = {e.id for e in store.ledger_open("me")}  # before any repair
        closed = set(read_log(log))
        assert never_closed <= open_now
        assert not closed & open_now, "a closed obligation reopened"
        store.ledger_record("me", mint(99), 4)  # repair
        assert ledger_files(store) == ledger_and_lock(store)
        assert {e.id for e in store.ledger_open("me")} == open_now
    assert read_log(log), "no close ever landed: the victims did not run"


def churner(home: Path, stop_at: float) -> None:
    """Take the watched message and put it back, around appends, settles and torn lines."""
    store = FsStore(home, lock_timeout_s=10.0)
    holder = Holder(pid=os.getpid(), process_start=None)
    n = 0
    while time.monotonic() < stop_at:
        n += 1
        store.append(INBOX, [Envelope(id=f"c{n:015x}", body="noise", body_bytes=5)])
        batch = store.take(INBOX, lambda es: range(len(es)), holder)
        if batch is not None:
            store.restore(batch, [mint(1).id])
            store.settle(batch)
        if n % 7 == 0:
            with open(store._layout.inbox(INBOX), "ab") as fh:
                fh.write(b'{"schema_version":1,"id":"torn')


@pytest.mark.slow
def test_peek_and_the_open_list_never_fail_under_concurrent_rewrites_a12(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = FsStore(home)
    store.append(INBOX, [mint(1)])
    store.ledger_record("me", duty(1), 3)
    store.ledger_record("me", duty(2), 3)  # the victim never closes an even one
    stop_at = time.monotonic() + 1.5
    pids = [fork(lambda: churner(home, stop_at))]
    pids.append(fork(lambda: ledger_victim(home, tmp_path / "closed", 7)))
    answers: list[bool] = []
    missing = 0
    try:
        while time.monotonic() < stop_at:
            answers.append(store.peek(INBOX, mint(1).id))
            missing += duty(2).id not in {e.id for e in store.ledger_open("me")}
    finally:
        os.kill(pids[1], signal.SIGKILL)
        for pid in pids:
            reap(pid)
    assert len(answers) > 100
    assert all(answers), f"peek missed the message {answers.count(False)} times in {len(answers)}"
    assert store.peek(INBOX, mint(1).id)
    assert missing == 0, f"an open obligation was missing from {missing} lock-free listings"
