"""Benchmark of the filesystem store (a standalone script, not a test).

    .venv/bin/python benchmarks/bench_fs_store.py [--quick]

Measures, on a scratch state directory:
* append throughput with 1, 4 and 16 sender processes into one inbox
  (exactly-once verified by draining at the end);
* append-to-noticed latency of a reader blocked in ``wait_for_change`` in
  another process (p50, p99);
* lock acquire+release cost; ``registry_entries`` with 10 and 200 entries.
Prints medians over repeats.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from oxtail_core.model import ClientInfo, Envelope, RegistryEntry
from oxtail_core.protocols import Holder, InboxId
from oxtail_fs.store.fs_store import FsStore
from oxtail_fs.store.layout import lock_path
from oxtail_fs.store.locks import hold

INBOX = InboxId.for_session("bench")
CTX = multiprocessing.get_context("fork")


def _sender(home: str, sender: int, count: int, go: Any) -> None:
    store = FsStore(Path(home), lock_timeout_s=30.0)
    go.wait()
    for seq in range(count):
        store.append(INBOX, [Envelope(id=f"{sender:04x}{seq:012x}", body="x" * 100, body_bytes=100)])


def throughput(senders: int, total: int) -> float:
    """Messages per second, all senders together; raises unless every message arrives exactly once."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        FsStore(home)
        go = CTX.Event()
        per = total // senders
        procs = [CTX.Process(target=_sender, args=(str(home), s, per, go)) for s in range(senders)]
        for p in procs:
            p.start()
        time.sleep(0.2)
        started = time.perf_counter()
        go.set()
        for p in procs:
            p.join()
        elapsed = time.perf_counter() - started
        batch = FsStore(home).take(INBOX, lambda es: range(len(es)), Holder(os.getpid()))
        got = [e.id for e in batch.envelopes] if batch else []
        assert len(got) == len(set(got)) == per * senders, "not exactly once"
        return per * senders / elapsed


def _waiter(home: str, count: int, out: Any) -> None:
    store = FsStore(Path(home))
    holder = Holder(os.getpid())
    seen = 0
    latencies: list[float] = []
    while seen < count:
        token = store.change_token([INBOX])
        batch = store.take(INBOX, lambda es: range(len(es)), holder)
        if batch is None:
            store.wait_for_change([INBOX], token, 5.0)
            noticed = time.monotonic_ns()
            batch = store.take(INBOX, lambda es: range(len(es)), holder)
            if batch is None:
                continue
            latencies += [(noticed - int(e.body)) / 1e6 for e in batch.envelopes]
        store.settle(batch)
        seen += len(batch.envelopes)
    out.send(latencies)


def notice_latency(count: int) -> list[float]:
    """Milliseconds from the start of ``append`` to ``wait_for_change`` returning in another process."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        store = FsStore(home)
        mine, theirs = CTX.Pipe()
        proc = CTX.Process(target=_waiter, args=(str(home), count, theirs))
        proc.start()
        time.sleep(0.2)
        for seq in range(count):
            time.sleep(0.005)
            store.append(INBOX, [Envelope(id=f"{seq:016x}", body=str(time.monotonic_ns()), body_bytes=1)])
        latencies: list[float] = mine.recv()
        proc.join()
        return latencies


def per_call_us(fn: Callable[[], object], n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - started) / n * 1e6


def lock_cost(n: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        path = lock_path(Path(tmp) / "x")

        def once() -> None:
            with hold(path, 1.0, 0.005):
                pass

        return per_call_us(once, n)


def registry_cost_on(store: Any, entries: int, n: int) -> float:
    """µs per ``registry_entries`` of ``store`` once it holds ``entries`` entries (any Store)."""
    for pid in range(1, entries + 1):
        store.registry_put(
            RegistryEntry(
                server_pid=pid,
                started_at=1,
                client=ClientInfo(type="claude-code", session_id=f"s{pid}", cwd="/w"),
            )
        )
    assert len(store.registry_entries()) == entries
    return per_call_us(store.registry_entries, n)


def registry_cost(entries: int, n: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        return registry_cost_on(FsStore(Path(tmp) / "home"), entries, n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages and repeats")
    args = parser.parse_args()
    repeats, total, notices = (1, 2000, 100) if args.quick else (3, 16000, 400)
    print(f"cores: {os.cpu_count()}  repeats: {repeats}  messages per throughput run: {total}")
    print(f"{'measure':<44}{'median':>14}")
    for senders in (1, 4, 16):
        rate = statistics.median(throughput(senders, total) for _ in range(repeats))
        print(f"{f'throughput, {senders} sender process(es)':<44}{rate:>10.0f} msg/s")
    lat = sorted(notice_latency(notices))
    p50, p99 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    print(f"{'append-to-noticed latency p50':<44}{p50:>11.2f} ms")
    print(f"{'append-to-noticed latency p99':<44}{p99:>11.2f} ms")
    cost = statistics.median(lock_cost(5000) for _ in range(repeats))
    print(f"{'lock acquire+release':<44}{cost:>11.1f} µs")
    for entries in (10, 200):
        cost = statistics.median(registry_cost(entries, 50) for _ in range(repeats))
        print(f"{f'registry_entries, {entries} entries':<44}{cost / 1000:>11.2f} ms")


if __name__ == "__main__":
    main()
