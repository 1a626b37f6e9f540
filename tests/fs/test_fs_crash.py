"""Real processes, real SIGKILLs: nothing acknowledged is lost, nothing is duplicated, nothing torn.

Writers append one message at a time and record an ack (one unbuffered write)
only after ``append`` returned. Drainers take, record what they got as one
write tagged with the batch id, then settle. Processes are killed at random
moments, and deterministically at every named crash point. After each round
dead holders' batches are recovered with real liveness (pid + start time).

The one window the design admits (spec README §8: "after the write, before the
commit — may duplicate, never lose") is a drainer killed after recording a
batch and before settling it; the check settles such a batch, as a reader that
committed its delivery would, and counts how often that happened.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from oxtail_core.convert import envelope_from_line
from oxtail_core.errors import StoreBusy
from oxtail_core.model import Envelope
from oxtail_core.protocols import Holder, InboxId
from oxtail_fs.store.fs_store import CRASH_POINTS, FsStore

INBOX = InboxId.for_session("crash-target")
PROC = InboxId.for_process(777, 1)
ALL: Callable[[Any], range] = lambda es: range(len(es))  # noqa: E731


def fork(fn: Callable[[], object]) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            fn()
        finally:
            os._exit(0)
    return pid


def reap(pid: int) -> None:
    os.waitpid(pid, 0)


def log_line(path: Path, record: object) -> None:
    """One O_APPEND write: a kill lands before or after it, never inside a line we count."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, (json.dumps(record) + "\n").encode())
    finally:
        os.close(fd)


def read_log(path: Path) -> list[Any]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):  # killed mid-write of its own log: that record does not count
            out.append(json.loads(line))
    return out


def me_holder() -> Holder:
    return Holder(pid=os.getpid(), process_start=psutil.Process().create_time())


def is_alive(holder: Holder) -> bool:
    try:
        proc = psutil.Process(holder.pid)
        return proc.status() != psutil.STATUS_ZOMBIE and proc.create_time() == holder.process_start
    except psutil.Error:
        return False


def writer(home: Path, tag: str, acks: Path, inbox: InboxId = INBOX) -> None:
    store = FsStore(home, lock_timeout_s=5.0)
    for seq in range(10_000):
        mid = f"{tag}{seq:08x}"
        store.append(inbox, [Envelope(id=mid, body=f"{tag}/{seq}", body_bytes=0)])
        log_line(acks, mid)


def drainer(home: Path, delivered: Path) -> None:
    store = FsStore(home, lock_timeout_s=5.0)
    holder = me_holder()
    while True:
        batch = store.take(INBOX, ALL, holder)
        if batch is None:
            store.wait_for_change([INBOX], store.change_token([INBOX]), 0.02)
            continue
        log_line(delivered, [batch.batch_id, [e.id for e in batch.envelopes]])
        store.settle(batch)


def check_inbox_lines(store: FsStore, inbox: InboxId) -> list[str]:
    """Every line of the inbox parses (nothing torn, nothing quarantined); the ids in order."""
    store.depth(inbox)  # any locked operation first undoes a crashed append
    path = store._layout.inbox(inbox)
    data = path.read_bytes() if path.exists() else b""
    assert data == b"" or data.endswith(b"\n")
    assert not path.with_name(path.name + ".quarantine").exists()
    return [envelope_from_line(line).id for line in data.decode().splitlines()]


def settle_recorded_batches(store: FsStore, delivered: list[Any]) -> int:
    """Settle batches whose delivery was recorded before their holder died (the admitted window)."""
    recorded = {batch_id for batch_id, _ in delivered}
    windows = 0
    for batch in store.in_flight(INBOX):
        if batch.batch_id in recorded and not is_alive(batch.holder):
            store.settle(batch)
            windows += 1
    return windows


def final_ids(store: FsStore, delivered: list[Any]) -> list[str]:
    store.recover(INBOX, is_alive)
    assert store.in_flight(INBOX) == []
    return [mid for _, batch in delivered for mid in batch] + check_inbox_lines(store, INBOX)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_random_sigkills_lose_and_duplicate_nothing(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    home = tmp_path / "home"
    store = FsStore(home, lock_timeout_s=5.0)
    delivered_log = tmp_path / "delivered"
    kills = windows = 0
    acked: list[str] = []
    sent_tags: list[str] = []
    for round_ in range(32):
        pids = []
        for w in range(2):
            tag = f"{seed:02x}{round_:02x}{w:02x}"
            sent_tags.append(tag)
            pids.append(fork(lambda tag=tag: writer(home, tag, tmp_path / f"acks-{tag}")))
        pids += [fork(lambda: drainer(home, delivered_log)) for _ in range(2)]
        time.sleep(rng.uniform(0.002, 0.04))
        for pid in rng.sample(pids, len(pids)):
            os.kill(pid, signal.SIGKILL)
            time.sleep(rng.uniform(0, 0.003))
        for pid in pids:
            reap(pid)
        kills += len(pids)
        delivered = read_log(delivered_log)
        windows += settle_recorded_batches(store, delivered)
        store.recover(INBOX, is_alive)
        check_inbox_lines(store, INBOX)
    for tag in sent_tags:
        acked += read_log(tmp_path / f"acks-{tag}")

    seen = final_ids(store, read_log(delivered_log))
    assert len(seen) == len(set(seen)), "a message was delivered or kept twice"
    assert set(acked) <= set(seen), "an acknowledged message was lost"
    assert len(acked) > 100 and kills == 128
    # an unacknowledged append may be there or not, but only whole messages of ours ever are
    assert all(mid[:6] in sent_tags for mid in seen)
    print(f"seed {seed}: {kills} kills, {len(acked)} acked, {windows} settle windows")


POINTS = list(CRASH_POINTS)


def kill_at(point: str) -> Callable[[str], None]:
    def hook(name: str) -> None:
        if name == point:
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def victim(home: Path, point: str) -> None:
    store = FsStore(home, crash_hook=kill_at(point))
    holder = me_holder()
    store.append(PROC, [Envelope(id=f"{i:016x}", body="p", body_bytes=1) for i in (90, 91)])
    store.append(INBOX, [Envelope(id=f"{i:016x}", body="x", body_bytes=1) for i in (3, 4)])
    batch = store.take(INBOX, lambda es: [0, 2], holder)
    assert batch is not None
    store.restore(batch, [batch.envelopes[0].id])
    store.merge(PROC, INBOX)
    store.ledger_record("me", Envelope(id=f"{5:016x}", body="l", body_bytes=1), 1)
    store.ledger_record("me", Envelope(id=f"{6:016x}", body="l", body_bytes=1), 1)


@pytest.mark.slow
@pytest.mark.parametrize("point", POINTS)
def test_sigkill_at_each_crash_point(tmp_path: Path, point: str) -> None:
    home = tmp_path / "home"
    store = FsStore(home)
    store.append(INBOX, [Envelope(id=f"{i:016x}", body="x", body_bytes=1) for i in (1, 2)])
    pid = fork(lambda: victim(home, point))
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, "the crash point was not reached"
    store.recover(INBOX, is_alive)
    store.recover(PROC, is_alive)
    seen = check_inbox_lines(store, INBOX) + check_inbox_lines(store, PROC)
    assert len(seen) == len(set(seen))
    assert {f"{i:016x}" for i in (1, 2)} <= set(seen)  # acknowledged before the victim started
    if point not in ("append:mid-write",):
        assert {f"{i:016x}" for i in (3, 4, 90, 91)} <= set(seen)
    else:  # the first append of the victim died half-way: all or none
        assert not {f"{i:016x}" for i in (90, 91)} & set(seen)
    assert store.in_flight(INBOX) == []
    if point == "ledger:after-temp-write":
        assert store.ledger_lookup("me", f"{6:016x}") is not None
    assert store.ledger_record("me", Envelope(id=f"{7:016x}", body="l", body_bytes=1), 1) >= 0


@pytest.mark.slow
@pytest.mark.parametrize("round_", range(3))
def test_kills_at_random_crash_points_in_a_loop(tmp_path: Path, round_: int) -> None:
    """Many short-lived victims dying at random named points against one inbox."""
    rng = random.Random(100 + round_)
    home = tmp_path / "home"
    store = FsStore(home)
    base = [f"{i:016x}" for i in (1, 2)]
    store.append(INBOX, [Envelope(id=mid, body="x", body_bytes=1) for mid in base])
    kills = 0
    for _ in range(40):
        point, salt = rng.choice(POINTS), rng.randrange(1_000_000)
        pid = fork(lambda point=point, salt=salt: victim_loop(home, point, salt))
        _, status = os.waitpid(pid, 0)
        kills += os.WIFSIGNALED(status)
        store.recover(INBOX, is_alive)
        store.recover(PROC, is_alive)
        seen = check_inbox_lines(store, INBOX) + check_inbox_lines(store, PROC)
        assert len(seen) == len(set(seen))
        assert set(base) <= set(seen)
    assert kills == 40


def victim_loop(home: Path, point: str, salt: int) -> None:
    store = FsStore(home, crash_hook=kill_at(point))
    holder = me_holder()
    for n in range(3):
        mids = [f"{salt:08x}{n:04x}{i:04x}" for i in range(2)]
        store.append(PROC, [Envelope(id=mid, body="p", body_bytes=1) for mid in mids])
        store.merge(PROC, INBOX)
        batch = store.take(INBOX, lambda es: range(0, len(es), 2), holder)
        if batch is not None:
            store.restore(batch, [e.id for e in batch.envelopes[::2]])
        store.ledger_record("me", Envelope(id=mids[0], body="l", body_bytes=1), 1)
        store.append(INBOX, [Envelope(id=f"{salt:08x}{n:04x}ffff", body="x", body_bytes=1)])
    os.kill(os.getpid(), signal.SIGKILL)  # every victim dies, at a named point or at the end


def stopped_appender(home: Path) -> None:
    def stop_here(name: str) -> None:
        if name == "append:mid-write":
            os.kill(os.getpid(), signal.SIGSTOP)

    FsStore(home, crash_hook=stop_here).append(
        INBOX, [Envelope(id=f"{i:016x}", body="s", body_bytes=1) for i in (8, 9)]
    )


@pytest.mark.slow
def test_stopped_lock_holder_makes_others_busy_then_nothing_is_lost(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = FsStore(home, lock_timeout_s=0.3)
    store.append(INBOX, [Envelope(id=f"{1:016x}", body="a", body_bytes=1)])
    pid = fork(lambda: stopped_appender(home))
    try:
        assert os.waitpid(pid, os.WUNTRACED)[1] and psutil.Process(pid).status() == psutil.STATUS_STOPPED
        for attempt in (
            lambda: store.append(INBOX, [Envelope(id=f"{2:016x}", body="b", body_bytes=1)]),
            lambda: store.take(INBOX, ALL, me_holder()),
            lambda: store.merge(PROC, INBOX),
        ):
            started = time.monotonic()
            with pytest.raises(StoreBusy):
                attempt()
            assert 0.25 <= time.monotonic() - started < 1.0
        assert store.change_token([INBOX]) is not None  # lock-free reads still work
    finally:
        os.kill(pid, signal.SIGCONT)
        reap(pid)
    store.append(INBOX, [Envelope(id=f"{2:016x}", body="b", body_bytes=1)])
    batch = store.take(INBOX, ALL, me_holder())
    assert batch is not None
    assert [e.id for e in batch.envelopes] == [f"{i:016x}" for i in (1, 8, 9, 2)]
