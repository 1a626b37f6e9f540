"""``oxtail-mcp relay``: this host's wake relay alone, for hosts whose panes hold peers but no MCP
server (redis-store.md §6.1). Runs until SIGINT or SIGTERM; needs a shared (Redis) store."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import cast

NOTHING_TO_RELAY = "the store is this machine's files: there is nothing to relay"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options: the store is chosen as for every command (``OXTAIL_STORE``, ``store.json``)."""


def run(args: argparse.Namespace) -> int:
    from oxtail_core.errors import StoreError
    from oxtail_core.protocols import WakeRelay
    from oxtail_core.settings import Settings
    from oxtail_mcp import storage

    try:
        store = storage.open_store(os.environ)
    except StoreError as exc:
        print(f"oxtail-mcp relay: cannot start: {exc}", file=sys.stderr)
        return 1
    if not isinstance(store, WakeRelay):
        print(f"oxtail-mcp relay: {NOTHING_TO_RELAY}", file=sys.stderr)
        return 1
    from oxtail_fs.host.project import LocalHost
    from oxtail_fs.tmux.client import Tmux
    from oxtail_fs.tmux.waker import TmuxWaker
    from oxtail_redis.relay import serve
    from oxtail_redis.store import RedisStore  # installed: only a Redis store is a WakeRelay here

    shared = cast(RedisStore, store)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    host = shared.cluster_host(LocalHost())
    print(f"oxtail-mcp relay: relaying wakes for host {host.host_id} on {shared.where}", file=sys.stderr)
    serve(shared, TmuxWaker(Tmux()), host, stop, settings=Settings.from_env(os.environ))
    return 0
