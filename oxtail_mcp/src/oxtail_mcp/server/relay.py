"""This host's wake relay inside an MCP server (redis-store.md §6.1): a daemon thread, on a shared
store only.

Wherever a wake can land there is an MCP server (the target *is* a server's pane), so every server
on a Redis store is one more consumer of its host's relay group: no daemon to install, no election.
The loop is ``oxtail_redis.relay.serve``; this module only wires it to this machine: the ambient
tmux server (``$TMUX``: the one the agent's pane is on) and the local process tree judged through
the store's ``ClusterHost``. A filesystem store has one machine and no relay: nothing starts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from oxtail_core.protocols import Store, WakeRelay
from oxtail_core.settings import Settings
from oxtail_core.trace import NullTracer, Tracer

JOIN_S = 2.0
"""How long stopping waits for the loop (it notices ``stop`` within one short read)."""


def start_relay(
    store: Store, *, tracer: Tracer | None = None, settings: Settings | None = None
) -> Callable[[], None]:
    """Run the relay loop for this host in a daemon thread when ``store`` is shared by machines;
    returns the function that stops it (a no-op when nothing was started)."""
    if not isinstance(store, WakeRelay):  # the files: one machine, nothing to relay
        return lambda: None
    from oxtail_redis.store import RedisStore  # installed: only a Redis store gets this far

    if not isinstance(store, RedisStore):  # an in-process store (tests): no other host
        return lambda: None
    from oxtail_fs.host.project import LocalHost
    from oxtail_fs.tmux.client import Tmux
    from oxtail_fs.tmux.waker import TmuxWaker
    from oxtail_redis.relay import serve

    stop = threading.Event()
    host = store.cluster_host(LocalHost(), tracer=tracer)
    thread = threading.Thread(
        target=serve,
        args=(store, TmuxWaker(Tmux()), host, stop),
        kwargs={"tracer": tracer or NullTracer(), "settings": settings},
        name="oxtail-relay",
        daemon=True,
    )
    thread.start()

    def stop_relay() -> None:
        stop.set()
        thread.join(timeout=JOIN_S)

    return stop_relay
