"""FsStore: the Store contract (``oxtail_core.testing.StoreContract``; the MemoryStore runs it in
tests/core/test_memory_store.py, so both behave alike) and the filesystem-only promises: torn
tails, quarantine, no needless rewrites, permissions, hostile names, malformed registry files,
event-driven waits, error mapping, journal recovery."""

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
from oxtail_core.model import ActivityMarker, Ancestor, PendingAsk, claim_key
from oxtail_core.protocols import InboxId
from oxtail_core.testing import StoreContract, StoreFactory
from oxtail_core.testing.contract import ALIVE, DEAD, ME, OTHER, PROC, claim, entry, ids, mint, take_all
from oxtail_core.testing.reservations import ReservationContract
from oxtail_fs.store.fs_store import FsStore
from oxtail_fs.store.layout import lock_path
from oxtail_fs.store.locks import hold


class TestFsStoreContract(StoreContract, ReservationContract):
    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        return lambda: (FsStore(tmp_path / "home"), lambda: None)


@pytest.fixture
def fs(tmp_path: Path) -> FsStore:
    return FsStore(tmp_path / "home", lock_timeout_s=0.5)


def inbox_file(store: FsStore, inbox: InboxId = ME) -> Path:
    return store._layout.inbox(inbox)


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
    sessions = fs.home / "registry"
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
    import oxtail_fs.store.inotify

    monkeypatch.setattr(oxtail_fs.store.inotify, "_LIBC", None)
    store = FsStore(tmp_path / "home")
    token = store.change_token([ME])
    assert store.wait_for_change([ME], token, 0.12) is False
    timer = threading.Timer(0.05, lambda: store.append(ME, [mint(1)]))
    timer.start()
    started = time.monotonic()
    assert store.wait_for_change([ME], token, 5.0) is True
    assert time.monotonic() - started < 0.5
    timer.join()


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


# Filesystem only: sticky claims ---------------------------------------------------------------------------
OLD_CLAIM = """{
  "schema_version": 1,
  "client_type": "codex",
  "cwd": "/w/prøj 漢",
  "ancestors": [
    {
      "pid": 100,
      "sig": "Wed Nov 25 10:00:00 2026"
    }
  ],
  "session_id": "sid-a",
  "transcript_path": "/t/sid-a.jsonl",
  "claimed_at": 2000,
  "server_pid": 4242
}"""


def test_a_claim_is_written_byte_for_byte_as_before_at_its_hashed_name(fs: FsStore) -> None:
    record = claim("sid-a", cwd="/w/prøj 漢", ancestors=(Ancestor(100, "Wed Nov 25 10:00:00 2026"),))
    fs.claim_put(record)
    path = fs.home / "claims" / f"{claim_key('codex', '/w/prøj 漢', 'sid-a')}.json"
    assert path.read_bytes() == OLD_CLAIM.encode("utf-8")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((fs.home / "claims").stat().st_mode) == 0o700
    assert sorted(p.name for p in (fs.home / "claims").iterdir()) == [path.name]


def test_claims_left_by_older_writers_are_read_leniently_and_junk_is_skipped(fs: FsStore) -> None:
    claims = fs.home / "claims"
    old = json.loads(OLD_CLAIM)
    del old["server_pid"]
    old["claimed_at"] = 1999.5
    old["ancestors"] += [{"pid": "x", "sig": "s"}, "junk", {"pid": 7.0, "sig": "seven"}]
    (claims / "old.json").write_text(json.dumps(old))
    (claims / "bad.json").write_text(json.dumps(old | {"claimed_at": True}))
    (claims / "torn.json").write_bytes(b'{"client_type": "co')
    (claims / "huge.json").write_bytes(b" " * (70 << 10))
    (claims / "notes.txt").write_text(OLD_CLAIM)
    os.mkfifo(claims / ("0" * 32 + ".json"))
    (claims / "link.json").symlink_to(claims / "old.json")
    assert fs.claim_list() == [
        claim(
            "sid-a",
            cwd="/w/prøj 漢",
            ancestors=(Ancestor(100, "Wed Nov 25 10:00:00 2026"), Ancestor(7, "seven")),
            claimed_at=1999.5,
            server_pid=0,
        )
    ]


def test_claim_gc_collects_a_transcriptless_fragment_and_leaves_unparseable_files(fs: FsStore) -> None:
    claims = fs.home / "claims"
    (claims / "fragment.json").write_text(json.dumps({"transcript_path": None}))
    (claims / "torn.json").write_bytes(b'{"transcript_path": nu')
    (claims / "list.json").write_text("[1, 2]")
    assert fs.claim_gc(0, lambda path: True) == 1
    assert sorted(p.name for p in claims.iterdir()) == ["list.json", "torn.json"]


def test_a_symlinked_claims_dir_is_refused_by_every_claim_method_and_never_touched(
    fs: FsStore, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "package.json").write_text(json.dumps({"transcript_path": None}))
    (fs.home / "claims").rmdir()
    (fs.home / "claims").symlink_to(outside, target_is_directory=True)
    for call in (fs.claim_list, lambda: fs.claim_gc(0, lambda path: False), lambda: fs.claim_put(claim("s"))):
        with pytest.raises(StoreError):
            call()
    assert sorted(p.name for p in outside.iterdir()) == ["package.json"]
