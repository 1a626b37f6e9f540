"""Real concurrency the stepped race machines cannot show: a race *inside* one take.

``take`` reads a snapshot, selects in Python, and commits only if the inbox's head version is
unchanged. Here sender and reader processes share one inbox; readers take random subsets while
other readers take too, and the run checks every message was delivered exactly once. The same
run with the head-version check planted away (the commit is told the version it finds, so it
never refuses) must fail: that is what shows the test can see the race at all.
"""

from __future__ import annotations

import multiprocessing
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

from oxtail_core.errors import StoreBusy, StoreError
from oxtail_core.model import Envelope
from oxtail_core.protocols import Holder, InboxId
from oxtail_redis.inbox import Inboxes
from oxtail_redis.keys import InboxKeys
from oxtail_redis.store import RedisStore

INBOX = InboxId.for_session("stress")
SENDERS, READERS, PER_SENDER = 2, 3, 200


def _plant_no_head_check() -> None:
    """The planted bug: every commit is handed the head version it is about to compare with."""
    original = Inboxes._commit

    def unchecked(self: Inboxes, k: InboxKeys, seen: str, *rest: Any) -> bool:
        current = self._conn.client.get(k.head)
        return original(self, k, current.decode() if current is not None else "0", *rest)

    Inboxes._commit = unchecked  # type: ignore[method-assign]


def _send(url: str, team: str, sender: int) -> None:
    store = RedisStore(url, team, prefix="oxt")
    for n in range(PER_SENDER):
        mid = f"{sender:02x}{n:014x}"
        store.append(INBOX, [Envelope(id=mid, body=f"m{n}", enqueued_at=1, body_bytes=len(f"m{n}"))])
    store.close()


def _read(url: str, team: str, planted: bool, done: Any, out: Any) -> None:
    if planted:
        _plant_no_head_check()
    store = RedisStore(url, team, prefix="oxt")
    rng = random.Random()
    got: list[str] = []
    errors = 0

    def select(envelopes: Any) -> list[int]:
        if not envelopes:
            return []
        picks = rng.sample(range(min(len(envelopes), 8)), k=min(len(envelopes), rng.randint(1, 4)))
        time.sleep(rng.random() * 0.002)  # widen the window between the snapshot and the commit
        return picks

    idle = 0
    while idle < 3:
        try:
            batch = store.take(INBOX, select, Holder(pid=multiprocessing.current_process().pid or 0))
        except StoreBusy:
            batch = None  # the inbox kept changing under the other readers: retryable, nothing taken
        except StoreError:
            errors += 1  # the planted bug also makes commits fail half-way (indices out of range)
            batch = None
        if batch is None:
            idle = idle + 1 if done.is_set() else 0
            time.sleep(0.005)
            continue
        idle = 0
        got.extend(e.id for e in batch.envelopes)
        store.settle(batch)
    out.put((got, errors))
    store.close()


@attrs.frozen
class Outcome:
    sent: int
    duplicates: int
    lost: int
    reader_errors: int


def _run(url: str, team: str, planted: bool) -> Outcome:
    ctx = multiprocessing.get_context("fork")
    done, out = ctx.Event(), ctx.Queue()
    readers = [ctx.Process(target=_read, args=(url, team, planted, done, out)) for _ in range(READERS)]
    senders = [ctx.Process(target=_send, args=(url, team, s)) for s in range(SENDERS)]
    for p in readers + senders:
        p.start()
    for p in senders:
        p.join(60)
    done.set()
    results = [out.get(timeout=60) for _ in readers]
    for p in readers:
        p.join(10)
    delivered = Counter(mid for got, _ in results for mid in got)
    sent = {f"{s:02x}{n:014x}" for s in range(SENDERS) for n in range(PER_SENDER)}
    return Outcome(
        sent=len(sent),
        duplicates=sum(c - 1 for c in delivered.values() if c > 1),
        lost=len(sent - set(delivered)),
        reader_errors=sum(errors for _, errors in results),
    )


@pytest.fixture
def team(redis_url: str) -> Iterator[str]:
    """A fresh team namespace on the session's server, dropped after the test."""
    name = "t" + uuid.uuid4().hex[:12]
    yield name
    store = RedisStore(redis_url, name, prefix="oxt")
    store.drop_namespace()
    store.close()


def test_concurrent_readers_of_one_inbox_deliver_every_message_exactly_once(
    redis_url: str, team: str
) -> None:
    outcome = _run(redis_url, team, planted=False)
    assert outcome == Outcome(sent=SENDERS * PER_SENDER, duplicates=0, lost=0, reader_errors=0)
    store = RedisStore(redis_url, team, prefix="oxt")
    assert store.depth(INBOX) == 0 and store.in_flight(INBOX) == []
    store.close()


def test_the_same_run_without_the_head_version_check_loses_or_duplicates_messages(
    redis_url: str, team: str
) -> None:
    outcome = _run(redis_url, team, planted=True)
    assert outcome.duplicates + outcome.lost > 0, outcome
