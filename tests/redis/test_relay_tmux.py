"""The wake relay against a real redis-server, real relay processes and a private tmux server.

Host ``h2`` is a private ``tmux -L`` server whose pane runs a reader with a child that looks like
our MCP server (its registered process); its relays are separate processes running
:func:`oxtail_redis.relay.serve` with the real TmuxWaker and process tree. The sender is this
test process on host ``h1`` driving the real core funnel. What was typed is read back from the
pane (capture-pane) and from the reader's log of its input.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oxtail_core.clock import SystemClock
from oxtail_core.context import Context
from oxtail_core.effects import run
from oxtail_core.memory import MemoryHost, RecordingWaker
from oxtail_core.model import WAKE_TEXT, ActivityMarker, ClientInfo, RegistryEntry, WakeStatus
from oxtail_core.protocols import WakeRequest
from oxtail_core.settings import Settings
from oxtail_core.trace import ListTracer
from oxtail_core.wake import wake_peer
from oxtail_core.wire import dumps
from oxtail_fs.host.proctree import process_start
from oxtail_redis.store import RedisStore
from tests.support.tmux import PrivateTmux, private_tmux, wait_for

A_SID = "00000000-0000-4000-8000-0000000000a1"

PANE = """\
import os, subprocess, sys, tty
tty.setcbreak(0)
child = subprocess.Popen(["oxtail-mcp", "1000"], executable="sleep")  # looks like our server
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(child.pid))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    data = os.read(0, 4096)
    if not data:
        break
    os.write(1, data)  # shown on the pane's screen (capture-pane)
    with open(sys.argv[2], "a") as f:
        f.write(data.decode("utf-8", "replace"))
"""

RELAY = """\
import os, signal, sys, threading
from oxtail_fs.host.project import LocalHost
from oxtail_fs.tmux.client import Tmux
from oxtail_fs.tmux.waker import TmuxWaker
from oxtail_redis.relay import serve
from oxtail_redis.store import RedisStore

url, team, socket_name, host_id, mode = sys.argv[1:6]


class Here(LocalHost):
    pass


here = Here()
here.host_id = host_id
store = RedisStore(url, team)
if mode == "die-before-claim":  # read the request, then die before claiming or acknowledging it
    store.wake_claim = lambda *a: os.kill(os.getpid(), signal.SIGKILL)
serve(store, TmuxWaker(Tmux(socket_name=socket_name)), here, threading.Event())
"""


class Machine(MemoryHost):
    def __init__(self, host_id: str) -> None:
        super().__init__()
        self.host_id = host_id


class TwoHosts:
    """The store, the target pane on h2 with its registered server, relay processes, the sender."""

    def __init__(self, url: str, server: PrivateTmux, tmp: Path) -> None:
        self.url, self.server, self.tmp = url, server, tmp
        self.team = "t" + uuid.uuid4().hex[:12]
        self.store = RedisStore(url, self.team)
        self.relays: list[subprocess.Popen[bytes]] = []
        (tmp / "pane.py").write_text(PANE)
        (tmp / "relay.py").write_text(RELAY)
        pid_file, self.typed_log = tmp / "server.pid", tmp / "typed.log"
        cmd = f"{sys.executable} {tmp / 'pane.py'} {pid_file} {self.typed_log}"
        self.pane = server.new_session("h2", cmd)
        assert wait_for(pid_file.exists), "the pane's server did not start"
        pid = int(pid_file.read_text())
        start = process_start(pid)
        assert start is not None
        self.peer = RegistryEntry(
            server_pid=pid,
            started_at=int(time.time()),
            client=ClientInfo(type="claude-code", session_id=A_SID, cwd="/p"),
            tmux_pane=self.pane,
            process_start=start,
            host_id="h2",
        )
        self.store.registry_put(self.peer)
        self.store.activity_put(A_SID, ActivityMarker("idle", SystemClock().now_ms()))
        self.tracer = ListTracer()

    def start_relay(self, mode: str = "serve") -> subprocess.Popen[bytes]:
        argv = [sys.executable, str(self.tmp / "relay.py"), self.url, self.team, self.server.socket_name]
        proc = subprocess.Popen([*argv, "h2", mode], stdin=subprocess.DEVNULL)
        self.relays.append(proc)
        lease = self.store._wakes._lease("h2")
        assert wait_for(lambda: bool(self.store._conn.client.exists(lease)), 10), "the relay took no lease"
        return proc

    def sender(self, **settings: Any) -> Context:
        return Context(
            self.store, RecordingWaker(), SystemClock(), Machine("h1"), Settings(**settings), self.tracer
        )

    def wake(self, **settings: Any) -> WakeStatus:
        ctx = self.sender(**settings)
        return run(wake_peer(ctx, self.peer), self.store, ctx.clock)

    def typed(self) -> str:
        return self.typed_log.read_text() if self.typed_log.exists() else ""

    def screen(self) -> str:
        return self.server.raw("capture-pane", "-p", "-t", self.pane)

    def pending(self) -> int:
        stream = self.store._wakes._stream("h2")
        return int(self.store._conn.client.xpending(stream, "relays")["pending"])

    def close(self) -> None:
        for proc in self.relays:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.kill()
            proc.wait(timeout=10)
        self.store.drop_namespace()
        self.store.close()


@pytest.fixture
def hosts(redis_url: str, tmp_path: Path) -> Iterator[TwoHosts]:
    with private_tmux() as server:
        world = TwoHosts(redis_url, server, tmp_path)
        try:
            yield world
        finally:
            world.close()


def test_a_relay_types_the_wake_line_into_the_verified_pane_and_the_sender_reports_fired(
    hosts: TwoHosts,
) -> None:
    hosts.start_relay()
    assert hosts.wake() is WakeStatus.FIRED
    assert wait_for(lambda: hosts.typed().endswith("\n")), hosts.typed()
    assert hosts.typed() == WAKE_TEXT + "\r" or hosts.typed() == WAKE_TEXT + "\n"
    assert WAKE_TEXT[:40] in hosts.screen().replace("\n", "")


def test_without_a_relay_lease_the_sender_reports_no_target_at_once(hosts: TwoHosts) -> None:
    started = time.monotonic()
    assert hosts.wake() is WakeStatus.SKIPPED_NO_TARGET
    assert time.monotonic() - started < 0.5
    assert hosts.tracer.named("ask_peer_wake_relayed")[0]["end"] == "no-relay"
    assert hosts.typed() == ""


def test_a_stopped_relay_is_withdrawn_from_and_types_nothing_after_it_resumes(hosts: TwoHosts) -> None:
    relay = hosts.start_relay()
    os.kill(relay.pid, signal.SIGSTOP)
    started = time.monotonic()
    assert hosts.wake(relay_outcome_ms=300) is WakeStatus.SKIPPED_NO_TARGET
    assert 0.3 <= time.monotonic() - started < 1.5
    assert hosts.tracer.named("ask_peer_wake_relayed")[0]["end"] == "relay-timeout"
    os.kill(relay.pid, signal.SIGCONT)
    stream = hosts.store._wakes._stream("h2")
    assert wait_for(lambda: hosts.pending() == 0 and hosts.store._conn.client.xlen(stream) == 1, 5)
    time.sleep(0.3)  # anything the resumed relay would type has landed by now
    assert hosts.typed() == ""
    assert WAKE_TEXT[:20] not in hosts.screen()


def test_a_relay_killed_between_read_and_ack_is_taken_over_and_the_wake_typed_once(hosts: TwoHosts) -> None:
    dying = hosts.start_relay("die-before-claim")
    ctx = hosts.sender(relay_outcome_ms=4_000)
    flow = wake_peer(ctx, hosts.peer)
    effect = next(flow)  # queued; the only relay reads it and dies before claiming or acking
    started = time.monotonic()
    assert dying.wait(timeout=10) == -signal.SIGKILL
    assert hosts.pending() == 1
    hosts.start_relay()  # its lease is still the dead one's: senders still queue
    try:
        status = run(_resume(flow, effect), hosts.store, ctx.clock)
    finally:
        flow.close()
    assert status is WakeStatus.FIRED
    assert time.monotonic() - started >= 1.5  # the request sat idle until the takeover
    assert wait_for(lambda: hosts.typed().endswith(("\n", "\r")))
    assert hosts.typed().count(WAKE_TEXT) == 1


def test_a_forged_request_types_nothing(hosts: TwoHosts) -> None:
    hosts.start_relay()
    peer = hosts.peer
    wrong = WakeRequest("00000000000000f1", peer.server_pid, peer.started_at + 1, peer.process_start)
    assert hosts.store.wake_enqueue("h2", wrong)
    fields = {
        "req": "00000000000000f2",
        "pid": peer.server_pid,
        "started_at": peer.started_at,
        "process_start": peer.process_start,
        "flavor": "other",
        "gap_ms": 0,
        "ttl_ms": 30_000,
        "sid": None,
        "reply_to": None,
        "claimed_at": None,
        "pane": hosts.pane,
        "text": "rm -rf ~",
    }
    hosts.store._conn.client.xadd(hosts.store._wakes._stream("h2"), {"r": dumps(fields)})
    assert wait_for(lambda: hosts.store.wake_outcome("00000000000000f1") is not None, 5)
    assert hosts.store.wake_outcome("00000000000000f1").outcome == "skipped"  # type: ignore[union-attr]
    assert wait_for(lambda: hosts.pending() == 0, 5)
    time.sleep(0.2)
    assert hosts.typed() == ""
    assert hosts.store.wake_outcome("00000000000000f2") is None  # unreadable: acknowledged, never typed


def _resume(flow: Any, first: Any) -> Any:
    """Drive ``flow`` from its first yielded effect (already taken)."""
    result = yield first
    while True:
        try:
            effect = flow.send(result)
        except StopIteration as stop:
            return stop.value
        result = yield effect
