"""The relay loop of one host (redis-store.md §6.1, §6.2): read this host's wake requests, handle
each with :func:`oxtail_core.relay.handle`, until told to stop.

Every MCP server on a Redis store runs it in a daemon thread, as one more consumer of its host's
group (``oxtail-mcp relay`` runs it alone). The loop holds no decision: what to type, when, and
what to report are the core's (:data:`oxtail_core.gates.RELAY_SIDE`). It takes the Waker and the
Host as parameters, so this package needs no tmux or process-tree code: ``oxtail_mcp`` passes
``TmuxWaker(Tmux())`` and the local process tree.

Each pass renews the host's lease and reads with a short block (:data:`POLL_S`), so a relay both
takes over a dead one's requests (they sit idle two seconds) and notices ``stop`` within that
time. A Redis that goes away is waited out with a capped backoff; the lease then lapses by
itself (15 s), and senders report ``skipped_no_target`` (no relay) instead of waiting.
"""

from __future__ import annotations

import contextlib
import os
import threading

from oxtail_core.clock import SystemClock
from oxtail_core.context import Context
from oxtail_core.effects import run
from oxtail_core.ids import new_id
from oxtail_core.protocols import Clock, Host, Waker
from oxtail_core.relay import handle
from oxtail_core.settings import Settings
from oxtail_core.trace import NullTracer, Tracer, safe_emit
from oxtail_redis.store import RedisStore

POLL_S = 0.5
"""How long one read blocks: takeovers are looked for twice a second (§6.2), ``stop`` noticed."""
BACKOFF_S = (0.1, 5.0)
"""The first and the longest pause after a failed pass."""
PRUNE_EVERY = 120
"""Passes between two prunes of the host's group (about a minute)."""
PRUNE_IDLE_MS = 10 * 60 * 1000
"""A consumer that has not read for this long, with nothing pending, is a relay that is gone."""


def consumer_name() -> str:
    """This relay's name in its host's group: unique per process and start, never reused."""
    return f"{os.getpid()}-{new_id()}"


def serve(
    store: RedisStore,
    waker: Waker,
    host: Host,
    stop: threading.Event,
    *,
    clock: Clock | None = None,
    tracer: Tracer | None = None,
    settings: Settings | None = None,
) -> None:
    """Relay wakes for ``host.host_id`` until ``stop`` is set (a host without an id has no relay)."""
    host_id = host.host_id
    if host_id is None:
        raise ValueError("a relay needs this host's id (a store shared by several machines)")
    ctx = Context(
        store=store,
        waker=waker,
        clock=clock or SystemClock(),
        host=host,
        settings=settings or Settings(),
        tracer=tracer or NullTracer(),
    )
    consumer = consumer_name()
    pause = BACKOFF_S[0]
    passes = 0
    while not stop.is_set():
        try:
            if passes % PRUNE_EVERY == 0:
                store.wake_prune(host_id, PRUNE_IDLE_MS)  # names left by relays that stopped or died
            passes += 1
            for delivery in store.wake_next(host_id, consumer, POLL_S):
                run(handle(ctx, host_id, consumer, delivery), store, ctx.clock)
            pause = BACKOFF_S[0]
        except Exception as exc:  # noqa: BLE001 - the relay outlives a Redis outage or a bad request
            safe_emit(ctx.tracer, "relay_error", error=f"{type(exc).__name__}: {exc}")
            stop.wait(pause)
            pause = min(pause * 2, BACKOFF_S[1])
    with contextlib.suppress(Exception):  # leaving is tidiness: a name left behind is pruned later
        store.wake_prune(host_id, 0, only=consumer)
