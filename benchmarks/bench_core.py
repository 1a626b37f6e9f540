"""oxtail-core on a MemoryStore: send+read throughput and ask round-trip overhead.

Run: ``.venv/bin/python benchmarks/bench_core.py``. Prints medians and p99; the
numbers in docs/benchmarks.md come from this script.
"""

from __future__ import annotations

import statistics
import threading
import time

from oxtail_core import Asked, Context, MemoryHost, MemoryStore, Peer, RecordingWaker, SystemClock
from oxtail_core.routing import session_inbox

A = "aaaaaaaa-0000-4000-8000-000000000001"
B = "bbbbbbbb-0000-4000-8000-000000000002"


def world() -> tuple[Context, Peer, Peer]:
    ctx = Context(MemoryStore(), RecordingWaker(), SystemClock(), MemoryHost())
    return ctx, Peer.join(ctx, 1, session_id=A), Peer.join(ctx, 2, session_id=B)


def throughput(n: int = 20_000) -> float:
    _, a, b = world()
    start = time.perf_counter()
    for i in range(n):
        a.send(B, f"message {i}")
    got = 0
    while got < n:
        got += len(b.read_messages().messages)
    elapsed = time.perf_counter() - start
    assert got == n
    return n / elapsed


def ask_round_trips(n: int = 2_000) -> list[float]:
    ctx, a, b = world()
    stop = threading.Event()

    def responder() -> None:
        inbox = [session_inbox(B)]
        while not stop.is_set():
            token = ctx.store.change_token(inbox)
            for m in b.read_messages().messages:
                if m.request_id:
                    b.reply(m.id, "ok")
            ctx.store.wait_for_change(inbox, token, 0.05)

    thread = threading.Thread(target=responder, daemon=True)
    thread.start()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        out = a.ask(B, "ping", timeout_ms=5000)
        samples.append((time.perf_counter() - t0) * 1000)
        assert isinstance(out, Asked) and out.reply is not None
    stop.set()
    thread.join()
    return samples


def main() -> None:
    rates = [throughput() for _ in range(5)]
    print(f"MemoryStore send+read: median {statistics.median(rates):,.0f} messages/s over 5 runs of 20,000")
    samples = ask_round_trips()
    samples.sort()
    p99 = samples[int(len(samples) * 0.99) - 1]
    print(
        f"ask round trip (peer answers from another thread): median {statistics.median(samples):.3f} ms, "
        f"p99 {p99:.3f} ms over {len(samples)} asks"
    )


if __name__ == "__main__":
    main()
