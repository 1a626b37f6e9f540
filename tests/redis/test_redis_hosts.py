"""Two hosts on one Redis: processes of the other host are judged by their leases, a dead remote
holder's batch comes back with the same ids (after its lease, or at once when its own host's
janitor drops it), an entry is never visible without its lease, and a lost lease is recreated
and the entry republished. Two RedisStores with different host ids stand for the two machines;
each one's local process tree is a MemoryHost (pids are names, dead once killed)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from oxtail_core.clock import FakeClock, SystemClock
from oxtail_core.context import Context
from oxtail_core.errors import StoreError
from oxtail_core.memory import MemoryHost, RecordingWaker
from oxtail_core.messaging import holder_of, read_messages
from oxtail_core.model import ClientInfo, RegistryEntry
from oxtail_core.peer import Peer
from oxtail_core.protocols import Holder, InboxId
from oxtail_core.routing import is_holder_alive, live_entries, process_inbox, session_inbox
from oxtail_core.testing.contract import ids, mint
from oxtail_core.trace import ListTracer, NullTracer
from oxtail_fs.host.project import LocalHost
from oxtail_fs.store.fs_store import FsStore
from oxtail_mcp.storage import machine_of
from oxtail_redis.clock import RedisClock, measure_offset_ms
from oxtail_redis.host import ClusterHost, host_id
from oxtail_redis.lease import parse_member
from oxtail_redis.store import RedisStore

SESSION = "aaaaaaaa-0000-0000-0000-00000000000a"
INBOX = session_inbox(SESSION)
SHORT_TTL_MS = 300


@attrs.define
class Machine:
    """One "host": its store, its process tree and the Context its processes run with."""

    store: RedisStore
    tree: MemoryHost
    host: ClusterHost
    ctx: Context


@pytest.fixture
def team() -> str:
    return "h" + uuid.uuid4().hex[:12]


@pytest.fixture
def machines(redis_url: str, team: str) -> Iterator[Callable[..., Machine]]:
    made: list[RedisStore] = []

    def machine(name: str, store_cls: type[RedisStore] = RedisStore, **timing: Any) -> Machine:
        timing = {"lease_ttl_ms": 60_000, "heartbeat_s": None, "lease_cache_s": 0.0, **timing}
        store = store_cls(redis_url, team, prefix="oxt", host_id=name, **timing)
        made.append(store)
        tree = MemoryHost()
        host = store.cluster_host(tree)
        return Machine(store, tree, host, Context(store, RecordingWaker(), FakeClock(1_000_000), host))

    yield machine
    if made:
        made[0].drop_namespace()
    for store in made:
        store.close()


def server(host: str | None, pid: int, session_id: str | None = SESSION) -> RegistryEntry:
    return RegistryEntry(
        server_pid=pid,
        started_at=1_700_000_000,
        client=ClientInfo(type="claude-code", session_id=session_id, cwd="/work"),
        process_start=1_700_000_000.25,
        host_id=host,
    )


def eventually(check: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    """Poll until ``check`` holds (Redis expires a key within ~100 ms of its TTL)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def lease_exists(m: Machine, host: str, pid: int, start: float | None) -> bool:
    key = m.store.leases.key(host, pid, start)
    assert key is not None
    return bool(m.store._conn.client.exists(key))


# Recovery of a remote holder's batch --------------------------------------------------------------


def test_a_remote_batch_stays_in_flight_while_its_lease_lives_and_comes_back_with_its_ids_after(
    machines: Callable[..., Machine],
) -> None:
    a, b = machines("host-a"), machines("host-b", lease_ttl_ms=SHORT_TTL_MS)
    reader_b = server("host-b", 500)
    b.store.registry_put(reader_b)
    sent = [mint(1), mint(2), mint(3)]
    a.store.append(INBOX, sent)
    batch = b.store.take(INBOX, lambda es: range(len(es)), holder_of(reader_b))
    assert batch is not None and batch.holder.host == "host-b"
    assert b.store.in_flight(INBOX)[0].holder == Holder(500, 1_700_000_000.25, "host-b")

    assert a.store.recover(INBOX, is_holder_alive(a.ctx)) == 0  # host-b's reader lives, per its lease
    assert b.store.recover(INBOX, is_holder_alive(b.ctx)) == 0  # and per host-b's own process tree
    assert a.store.depth(INBOX) == 0

    # host-b stalls: no heartbeat renews the lease, so it runs out
    assert eventually(lambda: not lease_exists(a, "host-b", 500, 1_700_000_000.25))
    reader_a = server("host-a", 600)
    a.store.registry_put(reader_a)
    read = read_messages(a.ctx, reader_a)  # recovers through ClusterHost, then takes
    assert ids(read.messages) == ids(sent)
    assert read.batch is not None and read.batch.holder == Holder(600, 1_700_000_000.25, "host-a")


def test_a_dead_holder_is_recovered_at_once_after_its_own_hosts_janitor_drops_its_lease(
    machines: Callable[..., Machine],
) -> None:
    a, b = machines("host-a"), machines("host-b", holder_ttl_ms=600_000)
    hook = Holder(700, 1_700_000_100.5, "host-b")  # a hook: no entry, no heartbeat
    sent = [mint(1), mint(2)]
    a.store.append(INBOX, sent)
    assert b.store.take(INBOX, lambda es: range(len(es)), hook) is not None
    assert lease_exists(a, "host-b", 700, 1_700_000_100.5)  # taken under a lease, before the commit
    assert a.store.recover(INBOX, is_holder_alive(a.ctx)) == 0

    assert b.store.leases.janitor() == 0  # the hook still runs: its lease stays
    b.tree.kill(700)
    assert a.store.recover(INBOX, is_holder_alive(a.ctx)) == 0  # host-a cannot see host-b's tree
    assert b.store.leases.janitor() == 1
    assert a.store.recover(INBOX, is_holder_alive(a.ctx)) == 2  # at once, not after the 600 s
    assert ids(a.store.take(INBOX, lambda es: range(len(es)), Holder(1, None, "host-a")).envelopes) == ids(
        sent
    )


def test_a_remote_server_whose_process_died_is_reaped_once_its_janitor_ran(
    machines: Callable[..., Machine],
) -> None:
    a, b = machines("host-a"), machines("host-b")
    unclaimed = server("host-b", 800, session_id=None)
    b.store.registry_put(unclaimed)
    assert unclaimed in live_entries(a.ctx)
    b.tree.kill(800)
    b.store.heartbeat.beat()  # refreshes nothing it should not, and runs the janitor
    assert live_entries(a.ctx) == []
    assert unclaimed not in a.store.registry_entries()  # reaped by host-a: its inbox was empty


# Lease before publish ---------------------------------------------------------------------------


class EntryBeforeLease(RedisStore):
    """The planted bug: the entry is written first, its lease after."""

    def registry_put(self, entry: RegistryEntry) -> None:
        self._write_entry(entry)
        self._lease_for(entry)


def _publish_while_another_host_reads(publisher: Machine, reader: Machine, entry: RegistryEntry) -> None:
    """Publish ``entry``, with a full registry read by ``reader`` (which reaps the dead) after each
    of the publisher's steps: the moment a real reader on another host may come."""
    for step in ("_lease_for", "_write_entry"):
        real = getattr(publisher.store, step)

        def then_read(e: RegistryEntry, real: Callable[[RegistryEntry], None] = real) -> None:
            real(e)
            live_entries(reader.ctx)

        setattr(publisher.store, step, then_read)
    publisher.store.registry_put(entry)


def test_an_entry_is_never_visible_without_its_lease(machines: Callable[..., Machine]) -> None:
    a, b = machines("host-a"), machines("host-b")
    entry = server("host-b", 900, session_id=None)
    _publish_while_another_host_reads(b, a, entry)
    assert entry in a.store.registry_entries()
    assert entry in live_entries(a.ctx)


def test_with_the_order_swapped_the_new_entry_is_reaped_by_the_other_host(
    machines: Callable[..., Machine],
) -> None:
    """The test above catches the wrong order: the same interleaving loses the entry."""
    a, b = machines("host-a"), machines("host-b", store_cls=EntryBeforeLease)
    entry = server("host-b", 900, session_id=None)
    _publish_while_another_host_reads(b, a, entry)
    assert entry not in a.store.registry_entries()


# Keys that name the host ------------------------------------------------------------------------


def test_the_process_inbox_and_the_registry_field_name_the_host(machines: Callable[..., Machine]) -> None:
    a, b = machines("host-a"), machines("host-b")
    here, there = server("host-a", 42, session_id=None), server("host-b", 42, session_id=None)
    assert process_inbox(there) == InboxId("process", "host-b/42-1700000000")
    assert a.store._keys.inbox(process_inbox(here)).lines != a.store._keys.inbox(process_inbox(there)).lines
    a.store.registry_put(here)
    b.store.registry_put(there)
    assert {(e.host_id, e.server_pid) for e in a.store.registry_entries()} == {("host-a", 42), ("host-b", 42)}
    a.store.append(process_inbox(there), [mint(1)], only_if_registered=there)
    assert (a.store.depth(process_inbox(there)), a.store.depth(process_inbox(here))) == (1, 0)
    b.store.registry_remove(42)  # "pid 42 on this store's host": host-a's pid 42 stays
    assert [(e.host_id, e.server_pid) for e in a.store.registry_entries()] == [("host-a", 42)]


# A lost lease -------------------------------------------------------------------------------------


def test_a_lost_lease_is_recreated_and_the_entry_republished(machines: Callable[..., Machine]) -> None:
    a, b = machines("host-a"), machines("host-b")
    tracer = ListTracer()
    b.store.cluster_host(b.tree, tracer=tracer)
    entry = server("host-b", 950, session_id=None)
    b.store.registry_put(entry)
    b.store.heartbeat.beat()
    assert tracer.named("lease_lost") == []

    key = b.store.leases.key("host-b", 950, entry.process_start)
    assert key is not None
    b.store._conn.client.delete(key)  # as if host-b had been cut off longer than the TTL
    assert live_entries(a.ctx) == [] and entry not in a.store.registry_entries()  # host-a reaped it

    b.store.heartbeat.beat()
    assert lease_exists(a, "host-b", 950, entry.process_start)
    assert entry in a.store.registry_entries() and entry in live_entries(a.ctx)
    assert tracer.named("lease_lost") == [{"host_id": "host-b", "server_pid": 950, "republished": True}]


def test_a_lost_lease_republishes_through_the_callback_given(machines: Callable[..., Machine]) -> None:
    b = machines("host-b")
    republished: list[RegistryEntry] = []
    b.store.when_lease_lost(republished.append)
    entry = server("host-b", 951)
    b.store.registry_put(entry)
    newer = attrs.evolve(entry, tmux_session="renamed")
    b.store.registry_put(newer)
    key = b.store.leases.key("host-b", 951, entry.process_start)
    assert key is not None
    b.store._conn.client.delete(key)
    b.store.heartbeat.beat()
    assert republished == [newer]  # the entry last published, once


def test_a_removed_entry_keeps_its_lease_but_is_not_republished(machines: Callable[..., Machine]) -> None:
    b = machines("host-b")
    republished: list[RegistryEntry] = []
    b.store.when_lease_lost(republished.append)
    entry = server("host-b", 952, session_id=None)
    b.store.registry_put(entry)
    assert b.store.registry_remove_if_drained(entry, process_inbox(entry))
    key = b.store.leases.key("host-b", 952, entry.process_start)
    assert key is not None
    b.store._conn.client.delete(key)
    b.store.heartbeat.beat()
    assert republished == [] and lease_exists(b, "host-b", 952, entry.process_start)


def test_the_heartbeat_thread_starts_on_the_first_publish_and_keeps_a_short_lease_alive(
    machines: Callable[..., Machine],
) -> None:
    b = machines("host-b", lease_ttl_ms=SHORT_TTL_MS, heartbeat_s=0.05)
    assert b.store.heartbeat._thread is None
    entry = server("host-b", 960)
    b.store.registry_put(entry)
    assert b.store.heartbeat._thread is not None and b.store.heartbeat._thread.daemon
    deadline = time.monotonic() + 4 * SHORT_TTL_MS / 1000  # four TTLs: it would be gone without beats
    while time.monotonic() < deadline:
        assert lease_exists(b, "host-b", 960, entry.process_start)
        time.sleep(0.05)
    b.store.heartbeat.stop()
    assert not b.store.heartbeat._thread.is_alive()


# Cached remote liveness ---------------------------------------------------------------------------


def test_remote_liveness_is_cached_for_at_most_the_window_and_primed_by_registry_reads(
    redis_url: str, team: str
) -> None:
    now = [100.0]
    store = RedisStore(redis_url, team, prefix="oxt", host_id="host-a", heartbeat_s=None, lease_cache_s=1.0)
    other = RedisStore(redis_url, team, prefix="oxt", host_id="host-b", heartbeat_s=None)
    try:
        store.leases._monotonic = lambda: now[0]
        entry = server("host-b", 970)
        other.registry_put(entry)
        host = store.cluster_host(MemoryHost())
        calls: list[str] = []
        client = store._conn.client
        real_exists = client.exists
        client.exists = lambda *keys: calls.append("EXISTS") or real_exists(*keys)
        assert entry in store.registry_entries()  # one MGET primes the cache
        key = store.leases.key("host-b", 970, entry.process_start)
        assert key is not None
        other._conn.client.delete(key)
        assert host.is_alive(970, entry.process_start, "host-b")  # the primed answer, 0 s old
        now[0] += 0.9
        assert host.is_alive(970, entry.process_start, "host-b") and calls == []
        now[0] += 0.2
        assert not host.is_alive(970, entry.process_start, "host-b") and calls == ["EXISTS"]
        assert host.is_alive(970, entry.process_start, "host-a")  # our own host: the process tree
    finally:
        store.drop_namespace()
        store.close()
        other.close()


def test_a_holder_named_by_a_host_id_that_cannot_hold_a_lease_is_dead(
    machines: Callable[..., Machine],
) -> None:
    a = machines("host-a")
    assert not a.host.is_alive(5, None, "Not A Host")
    assert a.store.leases.key("bad:host", 5, None) is None


# The janitor ------------------------------------------------------------------------------------


def test_the_janitor_drops_only_this_hosts_dead_and_unreadable_members(
    machines: Callable[..., Machine],
) -> None:
    a, b = machines("host-a"), machines("host-b")
    for pid in (11, 12):
        a.store.leases.put("host-a", pid, 5.0)
    b.store.leases.put("host-b", 11, 5.0)
    a.store._conn.client.sadd(a.store.leases.index("host-a"), "junk")
    a.tree.kill(11)
    b.tree.kill(11)  # host-b's pid 11 is dead too, but host-a's janitor does not judge host-b
    assert a.store.leases.janitor() == 2
    assert sorted(a.store._conn.client.smembers(a.store.leases.index("host-a"))) == [b"12:5000"]
    assert not lease_exists(a, "host-a", 11, 5.0) and lease_exists(a, "host-a", 12, 5.0)
    assert lease_exists(a, "host-b", 11, 5.0)
    assert parse_member(b"12:x") == (12, None) and parse_member(b"x:1") is None


# Host ids and the clock ---------------------------------------------------------------------------


def test_the_host_id_is_computed_once_unless_overridden_and_an_override_is_validated() -> None:
    computed = host_id({})
    assert computed == host_id({}) and len(computed) == 16 and int(computed, 16) >= 0
    assert host_id({"OXTAIL_HOST_ID": "box-2"}) == "box-2"
    for bad in ("Box", "a:b", "{x}", "-a", "a" * 64):
        with pytest.raises(StoreError, match="OXTAIL_HOST_ID"):
            host_id({"OXTAIL_HOST_ID": bad})


def test_a_store_takes_its_host_id_from_the_environment_or_refuses_a_bad_one(
    redis_url: str, team: str
) -> None:
    store = RedisStore(redis_url, team, environ={"OXTAIL_HOST_ID": "from-env"}, heartbeat_s=None)
    try:
        assert store.host_id == "from-env"
    finally:
        store.close()
    with pytest.raises(StoreError):
        RedisStore(redis_url, team, host_id="No Good")


def test_the_clock_offset_comes_from_the_sample_with_the_smallest_round_trip() -> None:
    wall = iter([0.0, 0.5, 10.0, 10.002, 20.0, 20.3])  # round trips 0.5 s, 2 ms, 0.3 s
    readings = iter([(105, 0), (1010, 500_000), (125, 0)])
    offset = measure_offset_ms(lambda: next(readings), lambda: next(wall), samples=3)
    assert offset == pytest.approx((1010.5 - 10.001) * 1000)


def test_the_clock_is_remeasured_after_its_period_and_keeps_its_offset_when_redis_fails() -> None:
    mono, answers = [0.0], [(2000, 0)]

    def redis_time() -> tuple[int, int]:
        if not answers:
            raise StoreError("away")
        return answers[0]

    clock = RedisClock(redis_time, remeasure_s=60, wall=lambda: 1000.0, monotonic=lambda: mono[0])
    assert clock.now_ms() == 2_000_000
    answers[0] = (3000, 0)
    mono[0] = 59.0
    assert clock.now_ms() == 2_000_000  # not yet due
    mono[0] = 61.0
    assert clock.now_ms() == 3_000_000
    answers.clear()
    mono[0] = 130.0
    assert clock.now_ms() == 3_000_000  # a failed measurement keeps the last offset


def test_the_redis_clock_agrees_with_this_machines_clock_on_loopback(
    machines: Callable[..., Machine],
) -> None:
    a = machines("host-a")
    clock = a.store.cluster_clock()
    assert abs(clock.now_ms() - time.time() * 1000) < 250
    assert abs(clock.offset_ms) < 250


# How a server wires it ------------------------------------------------------------------------------


def test_a_server_on_a_redis_store_judges_by_leases_and_keeps_redis_time(
    redis_url: str, team: str, tmp_path: Path
) -> None:

    store = RedisStore(redis_url, team, host_id="host-a", heartbeat_s=None)
    try:
        host, clock = machine_of(store, NullTracer())
        assert isinstance(host, ClusterHost) and host.host_id == "host-a"
        assert isinstance(clock, RedisClock)
        assert store.leases.local_alive is not None  # the heartbeat is this host's janitor now
    finally:
        store.close()
    local, system = machine_of(FsStore(tmp_path), NullTracer())
    assert isinstance(local, LocalHost) and local.host_id is None
    assert type(system) is SystemClock


def test_a_peer_joining_through_a_cluster_host_publishes_its_host_and_project(
    machines: Callable[..., Machine],
) -> None:

    a = machines("host-a")
    peer = Peer.join(a.ctx, 4321, session_id=SESSION, host_name="laptop", project_id="p" * 32)
    assert (peer.me.host_id, peer.me.host_name, peer.me.project_id) == ("host-a", "laptop", "p" * 32)
    assert peer.me in a.store.registry_entries()
    assert lease_exists(a, "host-a", 4321, None)
    one_machine = Context(a.store, RecordingWaker(), FakeClock(1_000_000), MemoryHost())
    plain = Peer.join(one_machine, 4322, session_id=None, host_name="laptop", project_id="p" * 32)
    assert (plain.me.host_id, plain.me.host_name, plain.me.project_id) == (None, None, None)


# Real processes ---------------------------------------------------------------------------------

CHILD = r"""
import os, sys, time
from oxtail_core.messaging import holder_of
from oxtail_core.model import ClientInfo, RegistryEntry
from oxtail_core.protocols import Holder
from oxtail_core.routing import session_inbox
from oxtail_fs.host import proctree
from oxtail_redis.store import RedisStore

url, team, mode = sys.argv[1:4]
store = RedisStore(url, team, prefix="oxt", host_id="host-b", lease_ttl_ms=500, heartbeat_s=0.05,
                   holder_ttl_ms=600_000)
pid, start = os.getpid(), proctree.process_start(os.getpid())
if mode == "server":
    me = RegistryEntry(server_pid=pid, started_at=int(time.time()), client=ClientInfo(type="codex"),
                       process_start=start, host_id="host-b")
    store.registry_put(me)
    holder = holder_of(me)
else:
    holder = Holder(pid, start, "host-b")
batch = store.take(session_inbox(sys.argv[4]), lambda es: range(len(es)), holder)
print("taken", len(batch.envelopes) if batch else 0, flush=True)
time.sleep(600)
"""


@pytest.fixture
def child(redis_url: str, team: str) -> Iterator[Callable[[str], subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []

    def spawn(mode: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, redis_url, team, mode, SESSION],
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(proc)
        assert proc.stdout is not None
        assert proc.stdout.readline().split() == ["taken", "2"]
        return proc

    yield spawn
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def test_a_killed_hook_process_on_another_host_is_recovered_once_its_hosts_janitor_sees_it_dead(
    machines: Callable[..., Machine], child: Callable[[str], subprocess.Popen[str]]
) -> None:
    a = machines("host-a")
    b_store = machines("host-b").store
    b_host = b_store.cluster_host(LocalHost())  # host-b's janitor reads the real process table
    a.store.append(INBOX, [mint(1), mint(2)])
    hook = child("hook")
    assert a.store.recover(INBOX, is_holder_alive(a.ctx)) == 0
    assert b_store.leases.janitor() == 0  # it runs: the real start time matches the lease's
    hook.send_signal(signal.SIGKILL)
    hook.wait(timeout=10)
    assert b_host.is_alive(hook.pid, None) is False
    assert a.store.recover(INBOX, is_holder_alive(a.ctx)) == 0  # its 600 s lease still stands
    assert b_store.leases.janitor() == 1
    assert a.store.recover(INBOX, is_holder_alive(a.ctx)) == 2


def test_a_stalled_server_on_another_host_loses_its_batch_then_republishes_when_it_resumes(
    machines: Callable[..., Machine], child: Callable[[str], subprocess.Popen[str]]
) -> None:
    """§5.5: a stall past the lease is a duplicate, never a loss; the entry comes back by itself."""
    a = machines("host-a")
    a.store.append(INBOX, [mint(1), mint(2)])
    server_b = child("server")
    mine = [e for e in a.store.registry_entries() if e.server_pid == server_b.pid]
    assert len(mine) == 1 and mine[0].host_id == "host-b"
    time.sleep(1.2)  # over two lease TTLs: only its heartbeat thread keeps it
    assert a.store.recover(INBOX, is_holder_alive(a.ctx)) == 0
    assert mine[0] in live_entries(a.ctx)

    server_b.send_signal(signal.SIGSTOP)
    try:
        assert eventually(lambda: a.store.recover(INBOX, is_holder_alive(a.ctx)) == 2)
        assert live_entries(a.ctx) == [] and mine[0] not in a.store.registry_entries()
    finally:
        server_b.send_signal(signal.SIGCONT)
    assert eventually(lambda: mine[0] in a.store.registry_entries())  # its heartbeat republished
    assert mine[0] in live_entries(a.ctx)
    assert a.store.depth(INBOX) == 2  # the batch is back for any reader: delivered again, not lost
