"""Real faults on a real redis-server: what survives them, measured.

Each test runs its own redis-server (its own loopback port and directory, always stopped), so it
can kill it. Three kinds of fault:

* **The server is killed** (``kill -9``) mid-run and started again on the same directory, while
  senders retry the *same* envelope until it is acknowledged. With an append-only file
  (``everysec`` or ``always``) no acknowledged message is lost and none is delivered twice; without
  persistence (the control) mail is lost, which shows the check can fail.
* **Client processes are killed** (SIGKILL, senders and readers, at random moments) and started
  again; dead readers' batches are recovered by pid and start time. Nothing acknowledged is lost,
  and every duplicate is of the one documented kind: a batch a reader recorded but did not settle
  before it died (docs/redis.md, "Guarantees, plainly").
* **A reply is lost after the server executed the command** (a proxy that goes dark, or a
  server asleep past the client's timeout). The append is a StoreError that says the outcome is
  unknown, never "nothing changed", and sending the same envelope again applies it once.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import redis

from oxtail_core import Context, FakeClock, MemoryHost, Peer, RecordingWaker
from oxtail_core.errors import OutcomeUnknown, StoreBusy, StoreError
from oxtail_core.model import Envelope
from oxtail_core.protocols import Holder, InboxId
from oxtail_core.routing import session_inbox
from oxtail_core.testing.contract import take_all
from oxtail_fs.host import proctree
from oxtail_redis.keys import Keys
from oxtail_redis.store import RedisStore
from tests.fs.test_fs_crash import fork, log_line, read_log, reap
from tests.redis.server import RedisServer, start_server
from tests.support.e2e import sid, world

pytestmark = pytest.mark.slow

INBOX = InboxId.for_session("faults")
SENDERS, READERS, PER_SENDER = 3, 2, 1000
TAKE_AT_MOST = 4
"""Readers take at most this many messages per batch: the bound on duplicates one kill can cause."""


def first(count: int) -> Any:
    return lambda envelopes: range(min(count, len(envelopes)))


def envelope(tag: str, seq: int) -> Envelope:
    return Envelope(id=f"{tag}{seq:012x}", body=f"{tag}/{seq}", enqueued_at=1, body_bytes=0)


def me_holder() -> Holder:
    return Holder(pid=os.getpid(), process_start=proctree.process_start(os.getpid()))


def is_alive(holder: Holder) -> bool:
    return proctree.is_alive(holder.pid, holder.process_start)


@attrs.frozen
class Logs:
    """Where a run's processes record what they did, one O_APPEND write per record (a kill lands
    before or after a record, never inside one that counts)."""

    root: Path

    def acks(self, tag: str) -> Path:
        """The ids of ``tag``'s sender that ``append`` acknowledged, in order."""
        return self.root / f"acks-{tag}"

    @property
    def delivered(self) -> Path:
        """``[batch id, [ids]]`` per batch a reader took, written before it settles."""
        return self.root / "delivered"

    @property
    def settled(self) -> Path:
        """The batch ids whose settle was acknowledged."""
        return self.root / "settled"

    @property
    def stop(self) -> Path:
        """Exists once the senders are done: readers leave when they find the inbox empty."""
        return self.root / "stop"


def until_acknowledged(call: Any) -> Any:
    """What a careful caller does with an outcome it cannot know: the same call again (replay-safe)."""
    while True:
        try:
            return call()
        except StoreError:
            time.sleep(0.02)


def sender(url: str, team: str, tag: str, logs: Logs, count: int = PER_SENDER) -> None:
    """Send ``tag``'s envelopes in order, resuming after the last one acknowledged in its log.

    A restarted sender sends again the envelope whose outcome its predecessor never learned: the
    store's replay guard must make that a no-op if it had landed."""
    store = RedisStore(url, team, prefix="oxt", timeout_s=0.5)
    acks = logs.acks(tag)
    start = len(read_log(acks))
    for seq in range(start, count):
        env = envelope(tag, seq)
        assert until_acknowledged(lambda env=env: store.append(INBOX, [env]))
        log_line(acks, env.id)


def reader(url: str, team: str, logs: Logs, pace_s: float) -> None:
    """Recover dead readers' batches, take, record the delivery (one write), settle, record that.

    Exits once ``logs.stop`` exists and a take finds nothing (the inbox is drained)."""
    store = RedisStore(url, team, prefix="oxt", timeout_s=0.5)
    holder = me_holder()
    while True:
        try:
            store.recover(INBOX, is_alive)
            batch = store.take(INBOX, first(TAKE_AT_MOST), holder)
        except StoreError:
            time.sleep(0.02)
            continue
        if batch is None:
            if logs.stop.exists():
                return
            time.sleep(0.005)
            continue
        log_line(logs.delivered, [batch.batch_id, [e.id for e in batch.envelopes]])
        until_acknowledged(lambda batch=batch: store.settle(batch))
        log_line(logs.settled, batch.batch_id)
        time.sleep(pace_s)  # slower than the senders, so mail is waiting when the server dies


@attrs.frozen
class Tally:
    acked: int
    delivered: int
    lost: int
    duplicates: int
    unacked_delivered: int


def tally(logs: Logs, tags: list[str]) -> tuple[Tally, Counter[str]]:
    acked = {mid for tag in tags for mid in read_log(logs.acks(tag))}
    counts = Counter(mid for _, ids in read_log(logs.delivered) for mid in ids)
    return (
        Tally(
            acked=len(acked),
            delivered=len(counts),
            lost=len(acked - set(counts)),
            duplicates=sum(n - 1 for n in counts.values()),
            unacked_delivered=len(set(counts) - acked),
        ),
        counts,
    )


def drained(url: str, team: str) -> tuple[int, int]:
    store = RedisStore(url, team, prefix="oxt")
    try:
        return store.depth(INBOX), len(store.in_flight(INBOX))
    finally:
        store.close()


@pytest.fixture
def server_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "redis"
    directory.mkdir()
    return directory


@pytest.fixture
def servers() -> Iterator[list[RedisServer]]:
    """Every server a test starts (restarts included), all stopped at the end whatever happens."""
    started: list[RedisServer] = []
    try:
        yield started
    finally:
        for server in started:
            server.stop()


def depth_of(client: Any, team: str) -> int:
    """The inbox's depth read on a plain client (no store, no retries: the probe of a killer)."""
    return int(client.llen(Keys(team, "oxt").inbox(INBOX).lines))


def server_kill_run(tmp: Path, server_dir: Path, servers: list[RedisServer], persistence: str) -> Tally:
    """Senders and readers on one inbox; ``kill -9`` of the server once mail waits; restart; drain."""
    server = start_server(server_dir, persistence=persistence)
    servers.append(server)
    team = "t" + uuid.uuid4().hex[:12]
    tags = [f"{s:04x}" for s in range(SENDERS)]
    logs = Logs(tmp)
    readers = [fork(lambda: reader(server.url, team, logs, 0.004)) for _ in range(READERS)]
    senders = [fork(lambda tag=tag: sender(server.url, team, tag, logs)) for tag in tags]
    probe = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=1)
    deadline = time.monotonic() + 30
    acked = waiting = 0
    while time.monotonic() < deadline:  # kill mid-run: a third sent, and mail waiting to be read
        acked = sum(len(read_log(logs.acks(tag))) for tag in tags)
        waiting = depth_of(probe, team)
        if acked >= SENDERS * PER_SENDER // 3 and waiting >= 20:
            break
        time.sleep(0.005)
    probe.close()
    server.kill()
    time.sleep(0.3)
    server = server.restart()
    servers.append(server)
    for pid in senders:
        reap(pid)
    logs.stop.touch()
    for pid in readers:
        reap(pid)
    result, _ = tally(logs, tags)
    print(f"{persistence}: killed at {acked} acknowledged, {waiting} waiting; {result}")
    assert acked < SENDERS * PER_SENDER and waiting > 0, "the kill did not land mid-run"
    assert result.acked == SENDERS * PER_SENDER  # every sender retried until it was acknowledged
    assert drained(server.url, team) == (0, 0)
    return result


@pytest.mark.parametrize("fsync", ["everysec", "always"])
def test_a_killed_redis_server_with_an_append_only_file_loses_and_duplicates_no_acknowledged_message(
    tmp_path: Path, server_dir: Path, servers: list[RedisServer], fsync: str
) -> None:
    result = server_kill_run(tmp_path, server_dir, servers, fsync)
    assert result.lost == 0 and result.duplicates == 0, result


def test_a_killed_redis_server_without_persistence_loses_acknowledged_mail(
    tmp_path: Path, server_dir: Path, servers: list[RedisServer]
) -> None:
    """The control: the same run must be able to fail."""
    result = server_kill_run(tmp_path, server_dir, servers, "none")
    assert result.lost > 0, result


def test_sigkilled_senders_and_readers_lose_nothing_and_duplicate_only_unsettled_batches(
    tmp_path: Path, server_dir: Path, servers: list[RedisServer]
) -> None:
    server = start_server(server_dir, persistence="everysec")
    servers.append(server)
    team = "t" + uuid.uuid4().hex[:12]
    rng = random.Random(11)
    tags = [f"{s:04x}" for s in range(2)]
    logs = Logs(tmp_path)  # readers are killed, never stopped; senders never finish
    reader_kills = sender_kills = 0
    for _ in range(40):
        pids = [fork(lambda tag=tag: sender(server.url, team, tag, logs, 1 << 20)) for tag in tags]
        readers = [fork(lambda: reader(server.url, team, logs, 0)) for _ in range(2)]
        time.sleep(rng.uniform(0.03, 0.15))
        for pid in rng.sample(pids + readers, len(pids + readers)):
            os.kill(pid, signal.SIGKILL)
            time.sleep(rng.uniform(0, 0.003))
        for pid in pids + readers:
            reap(pid)
        reader_kills += len(readers)
        sender_kills += len(pids)
    store = RedisStore(server.url, team, prefix="oxt")
    store.recover(INBOX, is_alive)  # every reader is dead: all their batches come back
    final = store.take(INBOX, first(1 << 30), me_holder())
    rest = [e.id for e in final.envelopes] if final else []
    assert store.depth(INBOX) == 0
    store.close()
    _, counts = tally(logs, tags)
    counts.update(rest)
    acked = {mid for tag in tags for mid in read_log(logs.acks(tag))}
    lost = acked - set(counts)
    duplicated = {mid for mid, n in counts.items() if n > 1}
    settled = set(read_log(logs.settled))
    unsettled = {mid for bid, ids in read_log(logs.delivered) if bid not in settled for mid in ids}
    dups = sum(n - 1 for n in counts.values())
    print(
        f"{reader_kills} reader and {sender_kills} sender kills; {len(acked)} acknowledged, "
        f"{len(counts)} delivered ({len(set(counts) - acked)} never acknowledged), {len(lost)} lost, "
        f"{dups} duplicates "
        f"({len(unsettled)} ids in recorded but unsettled batches)"
    )
    assert len(acked) > 500
    assert lost == set(), "an acknowledged message was lost"
    assert duplicated <= unsettled, "a duplicate outside the settle window (a replayed append?)"
    assert dups <= TAKE_AT_MOST * reader_kills
    assert all(mid[:4] in tags for mid in counts)  # only whole messages of ours, ever


class DarkProxy:
    """Loopback TCP forwarding to a real server that can go dark just after it forwards a command.

    Once a client chunk containing ``marker`` is seen, the proxy stops forwarding anything in
    either direction, on every connection, old or new, until :meth:`heal`: the server executes the
    command, and the client never hears back. That is a reply lost on the network."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.marker: bytes | None = None
        self.dark = threading.Event()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def go_dark_after(self, marker: bytes) -> None:
        self.marker = marker

    def heal(self) -> None:
        self.marker = None
        self.dark.clear()

    def close(self) -> None:
        self.listener.close()
        for s in self.sockets:
            s.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            self.sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, from_client: bool) -> None:
        try:
            while data := src.recv(65536):
                if self.dark.is_set():
                    continue
                if from_client and self.marker is not None and self.marker in data:
                    self.dark.set()  # before forwarding: the reply can never slip through
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


def append_sha(store: RedisStore) -> bytes:
    """The append script's SHA, which marks its EVALSHA on the wire. The script is loaded first
    (an append elsewhere): an unknown SHA is answered NOSCRIPT, not run, and there is no fault."""
    store.append(InboxId.for_session("warm-up"), [envelope("ffff", 0)])
    return str(store._conn._scripts["append"].sha).encode()


@pytest.fixture
def plain_server(server_dir: Path, servers: list[RedisServer]) -> RedisServer:
    server = start_server(server_dir, "--enable-debug-command", "local", persistence="everysec")
    servers.append(server)
    return server


@pytest.fixture
def proxy(plain_server: RedisServer) -> Iterator[DarkProxy]:
    made = DarkProxy(plain_server.port)
    try:
        yield made
    finally:
        made.close()


def test_an_append_whose_reply_is_lost_is_reported_as_outcome_unknown_and_a_resend_applies_it_once(
    plain_server: RedisServer, proxy: DarkProxy
) -> None:
    team = "t" + uuid.uuid4().hex[:12]
    store = RedisStore(proxy.url, team, prefix="oxt", timeout_s=0.3)
    direct = RedisStore(plain_server.url, team, prefix="oxt")
    try:
        env = envelope("abcd", 1)
        proxy.go_dark_after(append_sha(store))
        started = time.monotonic()
        with pytest.raises(StoreError, match="append: outcome unknown") as caught:
            store.append(INBOX, [env])
        assert not isinstance(caught.value, StoreBusy)  # StoreBusy would mean "nothing changed"
        assert time.monotonic() - started < 5  # the retry budget is bounded
        assert direct.depth(INBOX) == 1  # ... and it had in fact landed
        proxy.heal()
        assert store.append(INBOX, [env])  # the same envelope again: acknowledged, applied once
        assert direct.depth(INBOX) == 1
        batch = direct.take(INBOX, first(10), me_holder())
        assert batch is not None and [e.id for e in batch.envelopes] == [env.id]
    finally:
        store.close()
        direct.close()


def test_an_append_to_a_server_asleep_past_the_timeout_runs_once_though_the_caller_gave_up(
    plain_server: RedisServer,
) -> None:
    """The server executes the timed-out command when it wakes; the caller's resend is a replay."""
    team = "t" + uuid.uuid4().hex[:12]
    store = RedisStore(plain_server.url, team, prefix="oxt", timeout_s=0.3)
    direct = RedisStore(plain_server.url, team, prefix="oxt")
    admin = redis.Redis(host="127.0.0.1", port=plain_server.port, socket_timeout=10)
    try:
        store.append(INBOX, [envelope("abcd", 0)])  # the script is loaded; the connection is open
        sleeper = threading.Thread(target=admin.execute_command, args=("DEBUG", "SLEEP", "3"))
        sleeper.start()
        time.sleep(0.2)
        env = envelope("abcd", 1)
        with pytest.raises(StoreError, match="append: outcome unknown") as caught:
            store.append(INBOX, [env])
        assert not isinstance(caught.value, StoreBusy)
        sleeper.join(10)
        deadline = time.monotonic() + 3
        while direct.depth(INBOX) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert direct.depth(INBOX) == 2  # the abandoned command ran after all
        assert store.append(INBOX, [env])
        batch = direct.take(INBOX, first(10), me_holder())
        assert batch is not None and [e.id for e in batch.envelopes] == [envelope("abcd", 0).id, env.id]
    finally:
        admin.close()
        store.close()
        direct.close()


SENDER_SID = "aaaaaaaa-0000-0000-0000-00000000000a"
RECEIVER_SID = "bbbbbbbb-0000-0000-0000-00000000000b"


def test_send_message_whose_append_reply_is_lost_raises_outcome_unknown_while_the_message_arrived(
    plain_server: RedisServer, proxy: DarkProxy
) -> None:
    """The core's send path does not turn an unknown outcome into "not sent" or into ``ok:true``:
    the StoreError reaches the caller (the MCP server answers it as an ``isError`` result)."""
    team = "t" + uuid.uuid4().hex[:12]
    store = RedisStore(proxy.url, team, prefix="oxt", timeout_s=0.3)
    direct = RedisStore(plain_server.url, team, prefix="oxt")
    try:
        ctx = Context(store, RecordingWaker(), FakeClock(1_700_000_000_000), MemoryHost())
        alice = Peer.join(ctx, 10, session_id=SENDER_SID, cwd="/p")
        Peer.join(ctx, 11, session_id=RECEIVER_SID, cwd="/p")
        proxy.go_dark_after(append_sha(store))
        with pytest.raises(StoreError, match="outcome unknown") as caught:
            alice.send(RECEIVER_SID, "did this arrive?", wake="off")
        assert not isinstance(caught.value, StoreBusy)
        assert isinstance(caught.value, OutcomeUnknown) and caught.value.code == "store-outcome-unknown"
        assert direct.depth(session_inbox(RECEIVER_SID)) == 1  # it did
        taken = take_all(direct, session_inbox(RECEIVER_SID), Holder(1))
        assert taken is not None
        (arrived,) = taken.envelopes
        assert caught.value.message_id == arrived.id  # the id the caller can ask message_status of
    finally:
        proxy.heal()
        store.close()
        direct.close()


def test_send_message_over_mcp_whose_append_reply_is_lost_is_an_error_result_not_ok_and_it_arrived(
    tmp_path: Path, plain_server: RedisServer, proxy: DarkProxy
) -> None:
    """Two real ``oxtail-mcp`` servers on one Redis; the sender reaches it through the proxy, which
    goes dark once it has forwarded the sender's append. The tool answers an ``isError`` result
    that says the outcome is unknown (never ``ok:true``), and the message did arrive."""
    team = "t" + uuid.uuid4().hex[:12]
    direct = RedisStore(plain_server.url, team, prefix="oxt")
    shared = {"OXTAIL_REDIS_TEAM": team}
    try:
        with world(tmp_path) as w:
            proj = w.project("proj")
            a, b = w.directs(
                [
                    ("a", proj, {**shared, "OXTAIL_STORE": proxy.url, "OXTAIL_HOME": str(tmp_path / "a")}),
                    (
                        "b",
                        proj,
                        {**shared, "OXTAIL_STORE": plain_server.url, "OXTAIL_HOME": str(tmp_path / "b")},
                    ),
                ]
            )
            a.claim(sid(1))
            b.claim(sid(2))
            proxy.go_dark_after(append_sha(direct))
            sent = a.call("send_message", {"target": sid(2), "body": "did this arrive?", "wake": "off"})
            proxy.heal()
            print(f"send_message answered: {sent}")
            assert sent.is_error and sent.text.startswith("append: outcome unknown, "), sent
            assert '"ok"' not in sent.text and "nothing" not in sent.text
            got = b.read()
            assert [(m["body"], m["from_session_id"]) for m in got["messages"]] == [
                ("did this arrive?", sid(1))
            ]
            (message_id,) = [m["id"] for m in got["messages"]]
            assert f"message {message_id} may have been delivered: message_status tells" in sent.text
            assert a.ok("message_status", {"message_id": message_id})["status"] == "delivered"
    finally:
        direct.drop_namespace()
        direct.close()


def test_a_reader_during_a_redis_outage_is_told_it_could_not_look_never_outcome_unknown(
    plain_server: RedisServer,
) -> None:
    """With redis-server gone, a take or a recover wrote nothing (their read phase failed): that is
    StoreBusy, which the core's read path reports as a skipped look, as on the filesystem store."""
    team = "t" + uuid.uuid4().hex[:12]
    store = RedisStore(plain_server.url, team, prefix="oxt", timeout_s=0.3)
    try:
        ctx = Context(store, RecordingWaker(), FakeClock(1_700_000_000_000), MemoryHost())
        bob = Peer.join(ctx, 11, session_id=RECEIVER_SID, cwd="/p")
        store.append(session_inbox(RECEIVER_SID), [envelope("abcd", 1)])
        plain_server.kill()
        with pytest.raises(StoreBusy):
            store.take(INBOX, first(1), me_holder())
        with pytest.raises(StoreBusy):
            store.recover(INBOX, is_alive)
        read = bob.read_messages()
        assert read.messages == () and read.skipped >= 1
    finally:
        store.close()
