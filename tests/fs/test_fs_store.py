"""FsStore: the Store contract (run against MemoryStore too, so both behave alike) and the
filesystem-only promises: torn tails, quarantine, no needless rewrites, permissions, hostile
names, malformed registry files, event-driven waits, error mapping, journal recovery."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from oxtail_core.convert import envelope_to_line, to_wire
from oxtail_core.errors import StoreBusy, StoreError
from oxtail_core.memory import MemoryStore
from oxtail_core.model import ActivityMarker, ClientInfo, Envelope, PendingAsk, RegistryEntry, StateCard
from oxtail_core.protocols import Holder, InboxId
from oxtail_fs.layout import lock_path
from oxtail_fs.locks import hold
from oxtail_fs.store import FsStore

ME = InboxId.for_session("session-me")
OTHER = InboxId.for_session("session-other")
PROC = InboxId.for_process(4242, 1_700_000_000)
ALIVE = Holder(pid=1)
DEAD = Holder(pid=2)


def mint(n: int, body: str | None = None, **extra: Any) -> Envelope:
    """An envelope as a sender mints it (body_bytes and origin set, so it round-trips unchanged)."""
    text = body if body is not None else f"message {n}"
    return Envelope(id=f"{n:016x}", body=text, enqueued_at=1000 + n, body_bytes=len(text.encode()), **extra)


def take_all(store: Any, inbox: InboxId = ME, holder: Holder = ALIVE) -> Any:
    return store.take(inbox, lambda es: range(len(es)), holder)


def ids(envelopes: Any) -> list[str]:
    return [e.id for e in envelopes]


def entry(pid: int, sid: str | None = "sid", **kw: Any) -> RegistryEntry:
    return RegistryEntry(
        server_pid=pid,
        started_at=1_700_000_000_000,
        client=ClientInfo(type="claude-code", session_id=sid, cwd="/w"),
        state=StateCard(purpose="testing", updated_at=5),
        process_start=1_700_000_000.25,
        **kw,
    )


@pytest.fixture(params=["memory", "fs"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    return MemoryStore() if request.param == "memory" else FsStore(tmp_path / "home")


@pytest.fixture
def fs(tmp_path: Path) -> FsStore:
    return FsStore(tmp_path / "home", lock_timeout_s=0.5)


def inbox_file(store: FsStore, inbox: InboxId = ME) -> Path:
    return store._layout.inbox(inbox)


# Contract: inboxes ---------------------------------------------------------------------------------
def test_append_take_settle_round_trip(store: Any) -> None:
    store.append(ME, [mint(1), mint(2)])
    store.append(ME, [mint(3)])
    assert store.depth(ME) == 3
    batch = take_all(store)
    assert ids(batch.envelopes) == ids([mint(1), mint(2), mint(3)])
    assert batch.envelopes == (mint(1), mint(2), mint(3))
    assert batch.holder == ALIVE and batch.inbox == ME
    assert store.depth(ME) == 0
    assert [b.batch_id for b in store.in_flight(ME)] == [batch.batch_id]
    store.settle(batch)
    assert store.in_flight(ME) == []
    assert store.recover(ME, lambda h: False) == 0


def test_empty_append_and_empty_take(store: Any) -> None:
    store.append(ME, [])
    assert store.depth(ME) == 0
    assert take_all(store) is None
    store.append(ME, [mint(1)])
    assert store.take(ME, lambda es: [], ALIVE) is None
    assert store.depth(ME) == 1


def test_selective_take_keeps_the_rest_in_order(store: Any) -> None:
    store.append(ME, [mint(i) for i in range(6)])
    batch = store.take(ME, lambda es: [i for i, e in enumerate(es) if int(e.id, 16) % 2], ALIVE)
    assert ids(batch.envelopes) == ids([mint(1), mint(3), mint(5)])
    assert ids(take_all(store).envelopes) == ids([mint(0), mint(2), mint(4)])


def test_selector_sees_messages_in_order(store: Any) -> None:
    seen: list[list[str]] = []
    store.append(ME, [mint(i) for i in range(3)])
    store.take(ME, lambda es: seen.append(ids(es)) or [], ALIVE)
    assert seen == [ids([mint(0), mint(1), mint(2)])]


def test_restore_puts_back_in_front_in_original_order(store: Any) -> None:
    store.append(ME, [mint(1), mint(2)])
    batch = take_all(store)
    store.append(ME, [mint(3)])
    store.restore(batch)
    assert store.in_flight(ME) == []
    assert take_all(store).envelopes == (mint(1), mint(2), mint(3))


def test_partial_restore_keeps_the_rest_in_flight(store: Any) -> None:
    store.append(ME, [mint(1), mint(2), mint(3)])
    batch = take_all(store)
    store.restore(batch, [mint(3).id, mint(1).id])
    assert ids(take_all(store).envelopes) == ids([mint(1), mint(3)])
    flying = [b for b in store.in_flight(ME) if b.batch_id == batch.batch_id]
    assert [ids(b.envelopes) for b in flying] == [[mint(2).id]]
    store.restore(batch, ["no-such-id"])
    assert [ids(b.envelopes) for b in store.in_flight(ME) if b.batch_id == batch.batch_id] == [[mint(2).id]]
    store.restore(batch)
    assert ids(take_all(store).envelopes) == [mint(2).id]


def test_restore_after_settle_is_a_no_op(store: Any) -> None:
    store.append(ME, [mint(1)])
    batch = take_all(store)
    store.settle(batch)
    store.restore(batch)
    assert store.depth(ME) == 0


def test_recover_restores_only_dead_holders(store: Any) -> None:
    store.append(ME, [mint(1)])
    mine = store.take(ME, lambda es: [0], ALIVE)
    store.append(ME, [mint(2)])
    store.take(ME, lambda es: [0], DEAD)
    store.append(ME, [mint(3)])
    store.take(ME, lambda es: [0], DEAD)
    store.append(ME, [mint(4)])
    assert store.recover(ME, lambda h: h == ALIVE) == 2
    # the dead holders' batches come back in the order they were taken, ahead of newer mail
    assert ids(take_all(store, holder=Holder(9)).envelopes) == ids([mint(2), mint(3), mint(4)])
    assert [b.batch_id for b in store.in_flight(ME) if b.holder == ALIVE] == [mine.batch_id]
    assert store.recover(OTHER, lambda h: False) == 0


def test_merge_moves_everything_once(store: Any) -> None:
    store.append(PROC, [mint(1), mint(2)])
    store.append(ME, [mint(0)])
    assert store.merge(PROC, ME) == 2
    assert store.depth(PROC) == 0
    assert store.merge(PROC, ME) == 0
    assert store.merge(ME, ME) == 0
    assert take_all(store).envelopes == (mint(0), mint(1), mint(2))


def test_merge_into_a_new_inbox(store: Any) -> None:
    store.append(PROC, [mint(1)])
    assert store.merge(PROC, OTHER) == 1
    assert ids(take_all(store, OTHER).envelopes) == [mint(1).id]


def test_change_token_moves_on_append_restore_and_merge(store: Any) -> None:
    t0 = store.change_token([ME])
    store.append(ME, [mint(1)])
    t1 = store.change_token([ME])
    assert t1 != t0
    assert store.change_token([ME]) == t1
    batch = take_all(store)
    t2 = store.change_token([ME])
    store.restore(batch)
    assert store.change_token([ME]) != t2
    t3 = store.change_token([ME, OTHER])
    store.append(PROC, [mint(2)])
    store.merge(PROC, OTHER)
    assert store.change_token([ME, OTHER]) != t3


def test_wait_for_change(store: Any) -> None:
    token = store.change_token([ME])
    started = time.monotonic()
    assert store.wait_for_change([ME], token, 0.1) is False
    assert time.monotonic() - started >= 0.09
    store.append(ME, [mint(1)])
    assert store.wait_for_change([ME], token, 5.0) is True
    assert store.wait_for_change([ME], store.change_token([ME]), 0) is False


def test_wait_wakes_on_append_from_another_thread(store: Any) -> None:
    token = store.change_token([ME, OTHER])
    timer = threading.Timer(0.05, lambda: store.append(OTHER, [mint(1)]))
    timer.start()
    started = time.monotonic()
    assert store.wait_for_change([ME, OTHER], token, 5.0) is True
    assert time.monotonic() - started < 1.0
    timer.join()


# Contract: ledger, pending asks, wake bookkeeping, activity, registry ---------------------------------
def test_ledger_keeps_newest(store: Any) -> None:
    assert store.ledger_lookup("me", mint(1).id) is None
    assert store.ledger_record("me", mint(1), 3) == 0
    assert store.ledger_record("me", mint(2), 3) == 0
    assert store.ledger_record("me", mint(1, "newer"), 3) == 0
    assert store.ledger_lookup("me", mint(1).id) == mint(1, "newer")
    assert store.ledger_record("me", mint(3), 3) == 1
    assert store.ledger_record("me", mint(4), 2) == 2
    assert store.ledger_lookup("me", mint(2).id) is None
    assert store.ledger_lookup("me", mint(4).id) == mint(4)
    assert store.ledger_lookup("someone-else", mint(4).id) is None
    assert store.ledger_record("me", mint(5), 0) == 3
    assert store.ledger_lookup("me", mint(5).id) is None


def test_pending_list_shows_every_open_ask_and_none_taken_or_collected(store: Any) -> None:
    assert store.pending_list() == []
    first = PendingAsk(requester="req", request_id="r1", at_ms=100, peer="bob")
    second = PendingAsk(requester="other", request_id="r2", at_ms=200)
    store.pending_put(first)
    store.pending_put(second)
    store.pending_put(PendingAsk(requester="req", request_id="r1", at_ms=999))  # the first record stays
    assert sorted(store.pending_list(), key=lambda a: a.at_ms) == [first, second]
    store.pending_take("req", "r1", "bob")
    assert store.pending_list() == [second]
    store.pending_gc(200)
    assert store.pending_list() == []


def test_pending_asks(store: Any) -> None:
    ask = PendingAsk(requester="req", request_id="r1", at_ms=100, peer="bob")
    assert store.pending_put(ask) is True
    assert store.pending_put(PendingAsk(requester="req", request_id="r1", at_ms=999)) is True
    assert store.pending_take("req", "r1", "mallory") is None
    assert store.pending_take("req", "r1", "bob") == ask
    assert store.pending_take("req", "r1", "bob") is None
    store.pending_put(PendingAsk(requester="req", request_id="r2", at_ms=200, peer="bob"))
    assert store.pending_take("req", "r2", None) is not None
    store.pending_put(PendingAsk(requester="req", request_id="r3", at_ms=300))
    assert store.pending_take("req", "r3", "anyone") is not None
    store.pending_put(PendingAsk(requester="a", request_id="x", at_ms=10))
    store.pending_put(PendingAsk(requester="b", request_id="x", at_ms=20))
    store.pending_put(PendingAsk(requester="c", request_id="x", at_ms=30))
    assert store.pending_gc(20) == 2
    assert store.pending_take("c", "x", None) == PendingAsk(requester="c", request_id="x", at_ms=30)


def test_dedupe_and_rate(store: Any) -> None:
    assert store.dedupe_get("t", "q") is None
    assert store.dedupe_claim("t", "q", 100, 0) is True
    assert store.dedupe_get("t", "q") == 100
    assert store.dedupe_claim("t", "q", 150, 50) is False
    assert store.dedupe_claim("t", "q", 200, 100) is True  # 100 <= stale_before: reclaimed
    store.dedupe_release("t", "q", 100)
    assert store.dedupe_get("t", "q") == 200
    store.dedupe_release("t", "q", 200)
    assert store.dedupe_get("t", "q") is None
    assert store.rate_get("t") is None
    store.rate_put("t", 300)
    store.rate_put("t", 400)
    assert store.rate_get("t") == 400
    store.dedupe_claim("u", "q", 50, 0)
    store.dedupe_claim("v", "q", 500, 0)
    assert store.wake_gc(400) == 2
    assert store.rate_get("t") is None and store.dedupe_get("u", "q") is None
    assert store.dedupe_get("v", "q") == 500


def test_activity(store: Any) -> None:
    assert store.activity_get("s") is None
    store.activity_put("s", ActivityMarker(status="busy", at_ms=5))
    store.activity_put("s", ActivityMarker(status="idle", at_ms=6))
    assert store.activity_get("s") == ActivityMarker(status="idle", at_ms=6)


def test_registry(store: Any) -> None:
    assert store.registry_entries() == []
    store.registry_put(entry(12))
    store.registry_put(entry(3, sid=None, capabilities=None, tmux_pane="%1"))
    store.registry_put(entry(12, sid="renamed"))
    assert sorted(store.registry_entries(), key=lambda e: e.server_pid) == [
        entry(3, sid=None, capabilities=None, tmux_pane="%1"),
        entry(12, sid="renamed"),
    ]
    store.registry_remove(3)
    store.registry_remove(3)
    store.registry_remove(77)
    assert store.registry_entries() == [entry(12, sid="renamed")]


# Filesystem only: inbox files ---------------------------------------------------------------------------
def test_torn_tail_then_append_r10(fs: FsStore) -> None:
    fs.append(ME, [mint(1)])
    path = inbox_file(fs)
    with open(path, "ab") as fh:
        fh.write(envelope_to_line(mint(2)).encode()[:25])  # a writer died mid-line (no lock mark)
    fs.append(ME, [mint(3)])
    assert fs.depth(ME) == 2
    assert ids(take_all(fs).envelopes) == ids([mint(1), mint(3)])
    quarantined = path.with_name(path.name + ".quarantine").read_bytes()
    assert quarantined == envelope_to_line(mint(2)).encode()[:25] + b"\n"


def test_bad_lines_are_quarantined_and_neighbours_served_r12(fs: FsStore) -> None:
    path = inbox_file(fs)
    fs.append(ME, [mint(1)])
    bad = [b"not json\n", b'{"schema_version":2,"id":"x","body":"y"}\n', b'{"id":"\xff\xfe"}\n']
    with open(path, "ab") as fh:
        fh.writelines(bad)
    fs.append(ME, [mint(2)])
    assert fs.depth(ME) == 2
    assert take_all(fs).envelopes == (mint(1), mint(2))
    assert path.with_name(path.name + ".quarantine").read_bytes() == b"".join(bad)
    assert path.read_bytes() == b""


def test_selective_take_leaves_others_byte_exact_r13(fs: FsStore) -> None:
    fs.append(ME, [mint(1), mint(2, "é ☃ \u2028"), mint(3)])
    before = inbox_file(fs).read_bytes().split(b"\n")
    fs.take(ME, lambda es: [1], ALIVE)
    assert inbox_file(fs).read_bytes().split(b"\n") == [before[0], before[2], b""]


def test_no_selection_means_no_write_r15(fs: FsStore) -> None:
    fs.append(ME, [mint(1), mint(2)])
    path = inbox_file(fs)
    with open(path, "ab") as fh:
        fh.write(b"garbage\n")
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    before = (path.read_bytes(), os.stat(path).st_mtime_ns, os.stat(path).st_ino)
    assert fs.take(ME, lambda es: [], ALIVE) is None
    assert (path.read_bytes(), os.stat(path).st_mtime_ns, os.stat(path).st_ino) == before


def test_permissions(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    (home / "inboxes").mkdir(mode=0o777)
    os.chmod(home / "inboxes", 0o777)
    fs = FsStore(home)
    fs.append(ME, [mint(1)])
    take_all(fs)
    fs.ledger_record("me", mint(1), 10)
    fs.pending_put(PendingAsk(requester="r", request_id="q", at_ms=1))
    fs.dedupe_claim("t", "q", 1, 0)
    fs.rate_put("t", 1)
    fs.activity_put("s", ActivityMarker(status="busy", at_ms=1))
    fs.registry_put(entry(5))
    modes = {p: stat.S_IMODE(os.lstat(p).st_mode) for p in [home, *home.rglob("*")]}
    assert all(m == (0o700 if p.is_dir() else 0o600) for p, m in modes.items()), modes
    assert len(modes) > 15


@pytest.mark.parametrize(
    "hostile", ["../x", "a/b", "\x00", "é" * 300, "x" * 10_000, "/etc/passwd", ".lock", "\ud800", ""]
)
def test_hostile_names_stay_inside_home(tmp_path: Path, hostile: str) -> None:
    home = tmp_path / "home"
    fs = FsStore(home)
    inbox = InboxId.for_session(hostile)
    fs.append(inbox, [mint(1)])
    fs.append(InboxId("process", hostile), [mint(2)])
    assert fs.merge(InboxId("process", hostile), inbox) == 1
    batch = take_all(fs, inbox)
    fs.restore(batch)
    fs.ledger_record(hostile, mint(1, reply_to=hostile), 5)
    assert fs.ledger_lookup(hostile, mint(1).id) == mint(1, reply_to=hostile)
    fs.pending_put(PendingAsk(requester=hostile or "r", request_id=hostile or "q", at_ms=1, peer=hostile))
    fs.dedupe_claim(hostile, hostile, 1, 0)
    fs.rate_put(hostile, 1)
    fs.activity_put(hostile, ActivityMarker(status="busy", at_ms=1))
    assert fs.activity_get(hostile) == ActivityMarker(status="busy", at_ms=1)
    assert ids(take_all(fs, inbox).envelopes) == ids([mint(1), mint(2)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]
    for path in home.rglob("*"):
        assert path.resolve().is_relative_to(home.resolve())
        assert len(path.name) < 100 and path.name.isascii() and "\x00" not in path.name


def test_registry_skips_bad_files(fs: FsStore) -> None:
    fs.registry_put(entry(10))
    sessions = fs.home / "sessions"
    good = json.loads((sessions / "10.json").read_text())
    assert (sessions / "10.json").read_text().startswith('{\n  "server_pid": 10,')
    (sessions / "11.json").write_text(json.dumps(dict(good, server_pid=10)))  # forged: name says 11
    (sessions / "12.json").write_text("{not json")
    (sessions / "13.json").write_text(json.dumps({k: v for k, v in good.items() if k != "client"}))
    (sessions / "14.json").write_bytes(b" " * (2 << 20) + json.dumps(dict(good, server_pid=14)).encode())
    (sessions / "15.json").write_bytes(b"\xff\xfe")
    (sessions / "16.json").write_text("[]")
    (sessions / "017.json").write_text(json.dumps(dict(good, server_pid=17)))
    (sessions / "18.json.tmp").write_text(json.dumps(dict(good, server_pid=18)))
    (sessions / "-1.json").write_text(json.dumps(dict(good, server_pid=-1)))
    (sessions / "19.json").mkdir()
    (sessions / "20.json").symlink_to(sessions / "10.json")
    (sessions / "21.json").write_text(json.dumps(dict(good, server_pid=21, started_at="soon")))
    (sessions / "22.json").write_text(json.dumps(dict(good, server_pid=22)))
    assert [e.server_pid for e in fs.registry_entries()] == [10, 22]


def test_unreadable_activity_is_unknown(fs: FsStore) -> None:
    path = fs._layout.activity("s")
    path.write_text("busy")
    assert fs.activity_get("s") is None
    path.write_text(json.dumps({"status": "idle"}))
    assert fs.activity_get("s") is None
    path.unlink()
    path.mkdir()
    assert fs.activity_get("s") is None


def test_malformed_small_records_are_absent_not_fatal(fs: FsStore) -> None:
    fs._layout.dedupe("t", "q").write_text("{broken")
    assert fs.dedupe_get("t", "q") is None
    assert fs.dedupe_claim("t", "q", 10, 0) is True
    fs._layout.rate("t").write_text("soon")
    assert fs.rate_get("t") is None
    fs._layout.pending("r", "q").write_text("{broken")
    assert fs.pending_take("r", "q", None) is None
    assert fs.pending_gc(10**15) == 0
    assert fs._layout.pending("r", "q").exists()
    ledger = fs._layout.ledger("me")
    ledger.write_bytes(b"garbage " + mint(1).id.encode() + b"\n")
    fs.ledger_record("me", mint(2), 5)
    assert fs.ledger_lookup("me", mint(1).id) is None
    assert fs.ledger_lookup("me", mint(2).id) == mint(2)


def test_store_failures_are_store_errors(fs: FsStore) -> None:
    autowake = fs.home / "autowake"
    for child in autowake.iterdir():
        child.unlink()
    autowake.rmdir()
    autowake.write_text("I am a file")
    with pytest.raises(StoreError):
        fs.dedupe_claim("t", "q", 1, 0)
    with pytest.raises(StoreError):
        fs.rate_put("t", 1)
    with pytest.raises(StoreError):
        fs.wake_gc(1)
    inboxes = fs.home / "inboxes"
    inboxes.rename(fs.home / "elsewhere")
    inboxes.write_text("I am a file too")
    with pytest.raises(StoreError):
        fs.append(ME, [mint(1)])
    with pytest.raises(StoreError):
        fs.depth(ME)


def test_bad_home_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError):
        FsStore(tmp_path / "file")


def test_held_lock_makes_others_busy_within_the_bound(fs: FsStore) -> None:
    fs.append(ME, [mint(1)])
    with hold(lock_path(inbox_file(fs)), 1.0, 0.01):
        started = time.monotonic()
        with pytest.raises(StoreBusy) as caught:
            fs.append(ME, [mint(2)])
        assert 0.45 <= time.monotonic() - started < 1.5
        assert caught.value.resource.endswith(".jsonl.lock")
        with pytest.raises(StoreBusy):
            take_all(fs)
    assert ids(take_all(fs).envelopes) == [mint(1).id]


def test_invalid_batch_ids_never_name_files(fs: FsStore) -> None:
    fs.append(ME, [mint(1)])
    batch = take_all(fs)
    forged = type(batch)(inbox=ME, batch_id="../../x", holder=ALIVE, envelopes=batch.envelopes)
    fs.settle(forged)
    fs.restore(forged)
    assert [b.batch_id for b in fs.in_flight(ME)] == [batch.batch_id]


# Filesystem only: waits across processes ------------------------------------------------------------------
def _append_later(home: str, delay: float, stamp: Any) -> None:
    store = FsStore(Path(home))
    time.sleep(delay)
    stamp.value = time.monotonic()
    store.append(OTHER, [mint(1)])


def test_wait_wakes_fast_on_append_from_another_process(fs: FsStore) -> None:
    ctx = multiprocessing.get_context("fork")
    latencies = []
    for _ in range(5):
        stamp = ctx.Value("d", 0.0)
        token = fs.change_token([ME, OTHER])
        child = ctx.Process(target=_append_later, args=(str(fs.home), 0.1, stamp))
        child.start()
        assert fs.wait_for_change([ME, OTHER], token, 5.0) is True
        woke = time.monotonic()
        child.join()
        latencies.append(woke - stamp.value)
    assert sorted(latencies)[2] < 0.05, latencies


def test_wait_returns_false_on_timeout_despite_noise_elsewhere(fs: FsStore) -> None:
    token = fs.change_token([ME])
    noise = threading.Timer(0.05, lambda: fs.append(OTHER, [mint(1)]))
    noise.start()
    assert fs.wait_for_change([ME], token, 0.3) is False
    noise.join()


# Filesystem only: crash points resolved by the next operation (in-process "crash" = exception) ------------
class Crash(BaseException):
    pass


def crashing_at(point: str) -> Callable[[str], None]:
    def hook(name: str) -> None:
        if name == point:
            raise Crash(name)

    return hook


def crashed(home: Path, point: str, action: Callable[[FsStore], object]) -> None:
    with pytest.raises(Crash):
        action(FsStore(home, crash_hook=crashing_at(point)))


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "home"


@pytest.mark.parametrize(
    "point", ["take:after-batch-write", "take:before-inbox-rewrite", "take:after-inbox-rewrite"]
)
def test_crashed_take_neither_loses_nor_duplicates(home: Path, point: str) -> None:
    store = FsStore(home)
    store.append(ME, [mint(1), mint(2), mint(3)])
    crashed(home, point, lambda s: s.take(ME, lambda es: [0, 2], DEAD))
    store.recover(ME, lambda h: h != DEAD)
    assert sorted(ids(take_all(store).envelopes)) == ids([mint(1), mint(2), mint(3)])
    assert store.in_flight(ME)[0].envelopes != ()
    assert list((home / "journal").iterdir()) == []


@pytest.mark.parametrize("point", ["restore:after-journal", "restore:after-inbox-rewrite"])
def test_crashed_restore_neither_loses_nor_duplicates(home: Path, point: str) -> None:
    store = FsStore(home)
    store.append(ME, [mint(1), mint(2), mint(3)])
    batch = take_all(store, holder=DEAD)
    crashed(home, point, lambda s: s.restore(batch, [mint(2).id]))
    again = take_all(store)  # resolves the journal first
    flying = [e for b in store.in_flight(ME) if b.batch_id == batch.batch_id for e in b.envelopes]
    got = ids(again.envelopes if again else [])
    assert sorted(got + ids(flying)) == ids([mint(1), mint(2), mint(3)])
    assert got == ([mint(2).id] if point == "restore:after-inbox-rewrite" else [])


@pytest.mark.parametrize(
    "point", ["merge:after-journal", "merge:after-dest-append", "merge:after-source-rewrite"]
)
def test_crashed_merge_is_exactly_once(home: Path, point: str) -> None:
    store = FsStore(home)
    store.append(PROC, [mint(1), mint(2)])
    store.append(ME, [mint(0)])
    crashed(home, point, lambda s: s.merge(PROC, ME))
    store.append(PROC, [mint(3)])  # appends need no resolution and must survive it
    store.append(ME, [mint(4)])
    moved = store.merge(PROC, ME)
    got = ids(take_all(store).envelopes)
    assert sorted(got) == ids([mint(0), mint(1), mint(2), mint(3), mint(4)])
    assert moved == (3 if point == "merge:after-journal" else 1)
    assert store.depth(PROC) == 0


def test_crashed_merge_is_resolved_from_the_source_side(home: Path) -> None:
    store = FsStore(home)
    store.append(PROC, [mint(1)])
    crashed(home, "merge:after-dest-append", lambda s: s.merge(PROC, ME))
    assert take_all(store, PROC) is None  # resolution cut the moved message off the source
    assert ids(take_all(store).envelopes) == [mint(1).id]


def test_crashed_append_is_all_or_none(home: Path) -> None:
    store = FsStore(home)
    store.append(ME, [mint(1)])
    crashed(home, "append:mid-write", lambda s: s.append(ME, [mint(2), mint(3)]))
    assert inbox_file(store).read_bytes() != envelope_to_line(mint(1)).encode()  # half is on disk
    store.append(ME, [mint(4)])
    assert ids(take_all(store).envelopes) == ids([mint(1), mint(4)])
    assert not inbox_file(store).with_name(inbox_file(store).name + ".quarantine").exists()


def test_crashed_ledger_rewrite_keeps_old_content(home: Path) -> None:
    store = FsStore(home)
    store.ledger_record("me", mint(1), 1)
    crashed(home, "ledger:after-temp-write", lambda s: s.ledger_record("me", mint(2), 1))
    assert store.ledger_lookup("me", mint(2).id) == mint(2)  # appended before the rewrite
    assert store.ledger_record("me", mint(3), 1) == 2
    assert store.ledger_lookup("me", mint(3).id) == mint(3)
    assert store.ledger_lookup("me", mint(1).id) is None


def test_corrupt_journal_and_batch_are_set_aside(home: Path) -> None:
    store = FsStore(home)
    store.append(ME, [mint(1)])
    batch = take_all(store, holder=DEAD)
    stem = inbox_file(store).name[: -len(".jsonl")]
    (home / "journal" / f"{stem}.json").write_text("{torn")
    batch_file = home / "inflight" / stem / f"{batch.batch_id}.json"
    batch_file.write_text("[]")
    assert store.recover(ME, lambda h: False) == 0
    assert (home / "journal" / f"{stem}.json.corrupt").exists()
    assert batch_file.with_name(batch_file.name + ".corrupt").exists()


def test_to_wire_round_trip_of_pending_record(fs: FsStore) -> None:
    ask = PendingAsk(requester="r", request_id="q", at_ms=7, peer="p")
    fs.pending_put(ask)
    assert json.loads(fs._layout.pending("r", "q").read_text()) == to_wire(ask)


# Filesystem only: single winners across processes ----------------------------------------------------------
def _race(home: str, go: Any, results: Any, slot: int) -> None:
    store = FsStore(Path(home))
    go.wait()
    won_claim = store.dedupe_claim("t", "q", 1000 + slot, 500)
    took = store.pending_take("req", "r1", "bob")
    results[slot] = int(won_claim) * 2 + int(took is not None)


def test_dedupe_claim_and_pending_take_have_one_winner_among_processes(fs: FsStore) -> None:
    fs.pending_put(PendingAsk(requester="req", request_id="r1", at_ms=1, peer="bob"))
    fs.dedupe_claim("t", "q", 100, 0)  # stale for everyone below: exactly one may reclaim it
    ctx = multiprocessing.get_context("fork")
    go = ctx.Event()
    results = ctx.Array("i", [-1] * 8)
    procs = [ctx.Process(target=_race, args=(str(fs.home), go, results, i)) for i in range(8)]
    for p in procs:
        p.start()
    go.set()
    for p in procs:
        p.join(30)
    outcomes = list(results)
    assert sum(r // 2 for r in outcomes) == 1, outcomes
    assert sum(r % 2 for r in outcomes) == 1, outcomes
    winner = next(i for i, r in enumerate(outcomes) if r // 2)
    assert fs.dedupe_get("t", "q") == 1000 + winner


def test_wait_falls_back_to_polling_without_inotify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import oxtail_fs.inotify

    monkeypatch.setattr(oxtail_fs.inotify, "_LIBC", None)
    store = FsStore(tmp_path / "home")
    token = store.change_token([ME])
    assert store.wait_for_change([ME], token, 0.12) is False
    timer = threading.Timer(0.05, lambda: store.append(ME, [mint(1)]))
    timer.start()
    started = time.monotonic()
    assert store.wait_for_change([ME], token, 5.0) is True
    assert time.monotonic() - started < 0.5
    timer.join()


def test_recovered_batches_come_back_in_arrival_order(store: Any) -> None:
    inbox = InboxId.for_session("order")
    store.append(inbox, [Envelope(id=f"{i:016x}", body=str(i), enqueued_at=1) for i in range(1, 6)])
    reader = Holder(pid=77)
    store.take(inbox, lambda ms: [0, 1], reader)
    store.take(inbox, lambda ms: [0, 1], reader)
    assert store.recover(inbox, lambda holder: False) == 4
    batch = store.take(inbox, lambda ms: list(range(len(ms))), reader)
    assert [e.body for e in batch.envelopes] == ["1", "2", "3", "4", "5"]


def test_a_marker_written_by_the_reference_hooks_is_read(tmp_path: Path) -> None:
    store = FsStore(tmp_path)
    sid = "aaaaaaaa-0000-4000-8000-00000000000a"
    legacy = tmp_path / "activity" / sid  # the bash hooks' name: the id, sanitized
    legacy.write_text("busy")
    os.utime(legacy, ns=(1_800_000_000_000_000_000, 1_800_000_000_000_000_000))
    assert store.activity_get(sid) == ActivityMarker(status="busy", at_ms=1_800_000_000_000)
    store.activity_put(sid, ActivityMarker(status="idle", at_ms=1_800_000_000_500))
    assert store.activity_get(sid) == ActivityMarker(status="idle", at_ms=1_800_000_000_500)  # ours is newer
    legacy.write_text("gibberish")
    os.utime(legacy, ns=(1_900_000_000_000_000_000, 1_900_000_000_000_000_000))
    assert store.activity_get(sid) == ActivityMarker(status="idle", at_ms=1_800_000_000_500)
    assert store.activity_get("../../etc/passwd") is None  # sanitized to a name inside activity/
