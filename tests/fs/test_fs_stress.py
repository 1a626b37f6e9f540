"""Many processes on one inbox: 16 senders append while 3 drainers take and settle.

Every message must be seen exactly once, and each sender's messages in the
order it sent them (batches are put in global order by a monotonic stamp taken
inside the selector, which runs under the inbox lock).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

import pytest

from oxtail_core.model import Envelope
from oxtail_core.protocols import Holder, InboxId
from oxtail_fs.store.fs_store import FsStore

INBOX = InboxId.for_session("stress")
SENDERS = 16
PER_SENDER = 500
DRAINERS = 3


def _send(home: str, sender: int) -> None:
    store = FsStore(Path(home), lock_timeout_s=10.0)
    for seq in range(PER_SENDER):
        store.append(INBOX, [Envelope(id=f"{sender:04x}{seq:012x}", body=f"{sender}:{seq}", body_bytes=0)])


def _drain(home: str, out: str, stop: Any) -> None:
    store = FsStore(Path(home), lock_timeout_s=10.0)
    holder = Holder(pid=os.getpid())
    with open(out, "w") as log:
        while True:
            stamp: list[int] = []

            def select(envelopes: Any, stamp: list[int] = stamp) -> range:
                stamp.append(time.monotonic_ns())
                return range(len(envelopes))

            batch = store.take(INBOX, select, holder)
            if batch is None:
                if stop.is_set():
                    return
                store.wait_for_change([INBOX], store.change_token([INBOX]), 0.05)
                continue
            log.write(json.dumps([stamp[0], [e.id for e in batch.envelopes]]) + "\n")
            log.flush()
            store.settle(batch)


@pytest.mark.slow
def test_sixteen_senders_three_drainers_exactly_once_in_order(tmp_path: Path) -> None:
    home = tmp_path / "home"
    FsStore(home)
    ctx = multiprocessing.get_context("fork")
    stop = ctx.Event()
    outs = [tmp_path / f"drained-{i}.jsonl" for i in range(DRAINERS)]
    drainers = [ctx.Process(target=_drain, args=(str(home), str(o), stop)) for o in outs]
    senders = [ctx.Process(target=_send, args=(str(home), s)) for s in range(SENDERS)]
    for p in drainers + senders:
        p.start()
    for p in senders:
        p.join(60)
        assert p.exitcode == 0
    stop.set()
    for p in drainers:
        p.join(60)
        assert p.exitcode == 0

    batches = sorted(json.loads(line) for o in outs for line in o.read_text().splitlines())
    seen = [mid for _, batch in batches for mid in batch]
    assert len(seen) == len(set(seen)) == SENDERS * PER_SENDER
    for sender in range(SENDERS):
        order = [int(mid[4:], 16) for mid in seen if int(mid[:4], 16) == sender]
        assert order == list(range(PER_SENDER))
    assert len(batches) > DRAINERS  # the drainers really interleaved with the senders
    store = FsStore(home)
    assert store.depth(INBOX) == 0
    assert store.in_flight(INBOX) == []
