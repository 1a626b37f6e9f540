"""What a read costs with 10 and with 10,000 messages waiting, and with a garbage inbox (issue 15 item 12).

    .venv/bin/python benchmarks/bench_inbox_read.py [--quick]

A standalone script, not a test. On a scratch state directory, each sample is one
``read_my_messages``-sized take (the core's read budget: 50 messages, 64 KiB of bodies) from a
``FsStore`` and its settle, with the inbox topped up again afterwards so every read sees the same
number waiting. Prints the median and p95 per read and their ratio (target: a read at 10,000
waiting costs within 2x one at 10). Then a read of an inbox holding only garbage (one line of
200 MiB, 20 with ``--quick``): its time and peak Python memory (target: ≤ 8 MiB), and a second read
(the garbage was set aside once).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

from oxtail_core.messaging import _Budget  # the read's own selector: what is measured is a real read
from oxtail_core.model import Envelope
from oxtail_core.protocols import Holder, InboxId
from oxtail_core.settings import Settings
from oxtail_fs.store.fs_store import FsStore

INBOX = InboxId.for_session("bench")
HOLDER = Holder(os.getpid())
BODY = "x" * 1000


def envelope(n: int) -> Envelope:
    return Envelope(id=f"{n:016x}", body=BODY, enqueued_at=1_800_000_000, body_bytes=len(BODY))


def read_cost(waiting: int, reads: int) -> list[float]:
    """Seconds per read (take + settle) with ``waiting`` messages in the inbox before each."""
    settings = Settings()
    with tempfile.TemporaryDirectory() as tmp:
        store = FsStore(Path(tmp) / "home")
        for start in range(0, waiting, 1000):
            store.append(INBOX, [envelope(i) for i in range(start, min(waiting, start + 1000))])
        store = FsStore(Path(tmp) / "home")  # a fresh process: nothing parsed yet
        samples: list[float] = []
        n = waiting
        for _ in range(reads):
            started = time.perf_counter()
            batch = store.take(
                INBOX, _Budget(settings.read_max_messages, settings.read_max_body_bytes), HOLDER
            )
            assert batch is not None
            store.settle(batch)
            samples.append(time.perf_counter() - started)
            store.append(INBOX, [envelope(n + i) for i in range(len(batch.envelopes))])
            n += len(batch.envelopes)
        return samples


def garbage_read(mib: int) -> tuple[float, int, float]:
    """(seconds, peak bytes) of a read of one ``mib`` MiB garbage line, then the next read's seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        store = FsStore(Path(tmp) / "home")
        path = store._layout.inbox(INBOX)
        block = os.urandom(1 << 20).replace(b"\n", b"x")
        with open(path, "wb") as fh:
            for _ in range(mib):
                fh.write(block)
        os.chmod(path, 0o600)
        budget = _Budget(50, 65536)
        tracemalloc.start()
        started = time.perf_counter()
        store.take(INBOX, budget, HOLDER)
        first = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        started = time.perf_counter()
        store.take(INBOX, budget, HOLDER)
        return first, peak, time.perf_counter() - started


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"median {statistics.median(ordered) * 1e3:7.2f} ms   p95 {p95 * 1e3:7.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer reads, a 20 MiB garbage inbox")
    args = parser.parse_args()
    reads = 20 if args.quick else 100
    small, large = read_cost(10, reads), read_cost(10_000, reads)
    print(f"read, 10 waiting:      {_ms(small)}")
    print(f"read, 10,000 waiting:  {_ms(large)}")
    print(f"ratio (medians):       {statistics.median(large) / statistics.median(small):.2f}x (target <= 2x)")
    mib = 20 if args.quick else 200
    first, peak, second = garbage_read(mib)
    print(
        f"garbage inbox {mib} MiB: first read {first * 1e3:.0f} ms, peak {peak / (1 << 20):.1f} MiB "
        f"(target <= 8 MiB); next read {second * 1e3:.2f} ms"
    )


if __name__ == "__main__":
    main()
