"""Relays leave their host's consumer group tidy: a stopped relay's name goes, a dead one's is pruned
once it is idle, and a consumer that still holds a request is never dropped (a takeover needs it)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from oxtail_core.memory import MemoryHost, RecordingWaker
from oxtail_core.protocols import WakeRequest
from oxtail_core.trace import ListTracer
from oxtail_redis.relay import serve
from oxtail_redis.store import RedisStore
from oxtail_redis.wakes import GROUP
from tests.support.tmux import wait_for

HOST = "hprune"


@pytest.fixture
def store(redis_url: str) -> Iterator[RedisStore]:
    opened = RedisStore(redis_url, "p" + uuid.uuid4().hex[:12], host_id=HOST)
    yield opened
    opened.drop_namespace()
    opened.close()


def consumers(store: RedisStore) -> dict[str, int]:
    stream = store._wakes._stream(HOST)
    try:
        rows: list[dict[str, Any]] = store._conn.client.xinfo_consumers(stream, GROUP)
    except redis.ResponseError:
        return {}  # no stream yet
    return {row["name"].decode(): int(row["pending"]) for row in rows}


def request(pid: int) -> WakeRequest:
    return WakeRequest(req=uuid.uuid4().hex[:16], pid=pid, started_at=1, process_start=None)


def test_a_relay_that_stops_takes_its_name_out_of_the_group(store: RedisStore) -> None:
    stop, tracer = threading.Event(), ListTracer()
    here = store.cluster_host(MemoryHost())
    relay = threading.Thread(
        target=serve, args=(store, RecordingWaker(), here, stop), kwargs={"tracer": tracer}
    )
    relay.start()
    try:
        assert wait_for(lambda: store.wake_enqueue(HOST, request(4343)), timeout_s=10)  # once its lease is up
        assert wait_for(lambda: len(consumers(store)) == 1, timeout_s=10), tracer.events
    finally:
        stop.set()
        relay.join(10)
    assert consumers(store) == {}


def test_pruning_drops_idle_consumers_that_hold_nothing_and_keeps_one_that_holds_a_request(
    store: RedisStore,
) -> None:
    store.wake_next(HOST, "warm-up", 0)  # makes the group; then a relay that served one request and died:
    assert store.wake_enqueue(HOST, request(4141))
    (served,) = store.wake_next(HOST, "gone-1", 0)
    store.wake_ack(HOST, served.entry_id)
    assert store.wake_enqueue(HOST, request(4242))
    (held,) = store.wake_next(HOST, "busy-2", 0)  # read, never acknowledged: pending
    assert consumers(store) == {"gone-1": 0, "busy-2": 1}
    assert store.wake_prune(HOST, 60_000) == 0  # neither idle for a minute yet
    assert store.wake_prune(HOST, 0) == 1
    assert consumers(store) == {"busy-2": 1}
    assert store.wake_prune(HOST, 0, only="busy-2") == 0  # its request waits for a takeover
    store.wake_ack(HOST, held.entry_id)
    assert store.wake_prune(HOST, 0, only="busy-2") == 1
    assert consumers(store) == {}
