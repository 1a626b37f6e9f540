"""Benchmark of the Redis store beside the filesystem store, in one run (a standalone script, not a test).

    .venv/bin/python benchmarks/bench_redis_store.py [--quick]

Starts its own redis-server for each durability setting (no persistence, AOF ``everysec``, AOF
``always``; tests/redis/server.py, a free loopback port, stopped at the end) and measures, as
benchmarks/bench_fs_store.py does for the FsStore:

* append throughput with 1, 4 and 16 sender processes into one inbox (exactly-once verified by
  draining at the end);
* append-to-noticed latency of a reader blocked in ``wait_for_change`` in another process (p50, p99);
* ``registry_entries`` with 10 and 200 entries.

The FsStore rows come from bench_fs_store's own functions, called in the same run, so the two
stores are compared under the same load. Prints medians over repeats, as a Markdown table, and
the load average before and after.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.redis.server import start_server

from bench_fs_store import notice_latency as fs_notice_latency
from bench_fs_store import registry_cost as fs_registry_cost
from bench_fs_store import registry_cost_on
from bench_fs_store import throughput as fs_throughput
from oxtail_core.model import Envelope
from oxtail_core.protocols import Holder, InboxId
from oxtail_redis.store import RedisStore

INBOX = InboxId.for_session("bench")
CTX = multiprocessing.get_context("fork")
SETTINGS = ("none", "everysec", "always")
ALL: Callable[[Any], range] = lambda es: range(len(es))  # noqa: E731


def _store(url: str, team: str) -> RedisStore:
    return RedisStore(url, team, prefix="oxt", timeout_s=30.0)


def _sender(url: str, team: str, sender: int, count: int, go: Any) -> None:
    store = _store(url, team)
    go.wait()
    for seq in range(count):
        store.append(INBOX, [Envelope(id=f"{sender:04x}{seq:012x}", body="x" * 100, body_bytes=100)])


def throughput(url: str, senders: int, total: int) -> float:
    """Messages per second, all senders together; raises unless every message arrives exactly once."""
    team = "b" + uuid.uuid4().hex[:12]
    go = CTX.Event()
    per = total // senders
    procs = [CTX.Process(target=_sender, args=(url, team, s, per, go)) for s in range(senders)]
    for p in procs:
        p.start()
    time.sleep(0.2)
    started = time.perf_counter()
    go.set()
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - started
    store = _store(url, team)
    try:
        batch = store.take(INBOX, ALL, Holder(os.getpid()))
        got = [e.id for e in batch.envelopes] if batch else []
        assert len(got) == len(set(got)) == per * senders, "not exactly once"
        assert store.depth(INBOX) == 0
    finally:
        store.drop_namespace()
        store.close()
    return per * senders / elapsed


def _waiter(url: str, team: str, count: int, out: Any) -> None:
    store = _store(url, team)
    holder = Holder(os.getpid())
    seen = 0
    latencies: list[float] = []
    while seen < count:
        token = store.change_token([INBOX])
        batch = store.take(INBOX, ALL, holder)
        if batch is None:
            store.wait_for_change([INBOX], token, 5.0)
            noticed = time.monotonic_ns()
            batch = store.take(INBOX, ALL, holder)
            if batch is None:
                continue
            latencies += [(noticed - int(e.body)) / 1e6 for e in batch.envelopes]
        store.settle(batch)
        seen += len(batch.envelopes)
    out.send(latencies)


def notice_latency(url: str, count: int) -> list[float]:
    """Milliseconds from the start of ``append`` to ``wait_for_change`` returning in another process."""
    team = "b" + uuid.uuid4().hex[:12]
    store = _store(url, team)
    mine, theirs = CTX.Pipe()
    proc = CTX.Process(target=_waiter, args=(url, team, count, theirs))
    proc.start()
    time.sleep(0.2)
    for seq in range(count):
        time.sleep(0.005)
        store.append(INBOX, [Envelope(id=f"{seq:016x}", body=str(time.monotonic_ns()), body_bytes=1)])
    latencies: list[float] = mine.recv()
    proc.join()
    store.drop_namespace()
    store.close()
    return latencies


def registry_cost(url: str, entries: int, n: int) -> float:
    store = _store(url, "b" + uuid.uuid4().hex[:12])
    try:
        return registry_cost_on(store, entries, n)
    finally:
        store.drop_namespace()
        store.close()


def percentiles(latencies: list[float]) -> tuple[float, float]:
    lat = sorted(latencies)
    return lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]


Row = dict[str, float]


def measure(run: Callable[..., Any], repeats: int, total: int, notices: int, *where: str) -> Row:
    """One column of the table: ``run`` is this module (Redis, ``where`` = url) or bench_fs_store."""
    row: Row = {}
    for senders in (1, 4, 16):
        row[f"tp{senders}"] = statistics.median(
            run["throughput"](*where, senders, total) for _ in range(repeats)
        )
    row["p50"], row["p99"] = percentiles(run["notice_latency"](*where, notices))
    for entries in (10, 200):
        row[f"reg{entries}"] = (
            statistics.median(run["registry_cost"](*where, entries, 50) for _ in range(repeats)) / 1000
        )
    return row


REDIS = {"throughput": throughput, "notice_latency": notice_latency, "registry_cost": registry_cost}
FS = {"throughput": fs_throughput, "notice_latency": fs_notice_latency, "registry_cost": fs_registry_cost}
LINES = [
    ("append throughput, 1 sender process", "tp1", "{:,.0f} msg/s"),
    ("append throughput, 4 sender processes into one inbox", "tp4", "{:,.0f} msg/s"),
    ("append throughput, 16 sender processes into one inbox", "tp16", "{:,.0f} msg/s"),
    ("append-to-noticed latency, p50", "p50", "{:.2f} ms"),
    ("append-to-noticed latency, p99", "p99", "{:.2f} ms"),
    ("`registry_entries`, 10 entries", "reg10", "{:.2f} ms"),
    ("`registry_entries`, 200 entries", "reg200", "{:.2f} ms"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages and repeats")
    args = parser.parse_args()
    repeats, total, notices = (1, 2000, 100) if args.quick else (3, 16000, 400)
    before = os.getloadavg()
    print(f"cores: {os.cpu_count()}  repeats: {repeats}  messages per throughput run: {total}")
    columns: dict[str, Row] = {}
    for setting in SETTINGS:
        with tempfile.TemporaryDirectory() as tmp:
            server = start_server(Path(tmp), persistence=setting)
            try:
                columns[f"Redis, {setting}"] = measure(REDIS, repeats, total, notices, server.url)
            finally:
                server.stop()
        print(f"done: Redis, {setting}", file=sys.stderr)
    columns["FsStore"] = measure(FS, repeats, total, notices)
    after = os.getloadavg()
    print(f"\n| what | {' | '.join(columns)} |")
    print(f"|---|{'---|' * len(columns)}")
    for label, key, fmt in LINES:
        print(f"| {label} | {' | '.join(fmt.format(col[key]) for col in columns.values())} |")
    print(f"\nload average (1, 5, 15 min): before {before}, after {after}")


if __name__ == "__main__":
    main()
