"""Leases: how a process on one machine is judged alive by the others.

Each process that publishes an entry or holds a batch keeps
``lease:<host>:<pid>:<start ms>`` (a STRING with a TTL that Redis times, ``PX``: no client
clock is trusted) and lists it in ``leases:<host>`` (a SET: the janitor's index, no SCAN).

====================================  =========================================================
moment                                what is written
====================================  =========================================================
``registry_put`` (before the entry)   ``SET lease PX ttl`` + ``SADD``: an entry is never
                                      visible without its lease (it would be reaped at once)
a take by a holder without a beat     ``SET lease NX PX holder_ttl`` + ``SADD`` before the
(a hook)                              commit: its batch is recovered after it, not at once
every beat (a daemon thread, started  ``SET lease XX PX ttl`` for every lease this store
by the store's first publish)         keeps; a refresh that finds it gone recreates it
                                      (``NX``), republishes, and traces ``lease_lost``
every beat, the janitor               ``SMEMBERS leases:<ours>``; the members whose process
                                      is dead in the local tree: ``DEL`` + ``SREM``
====================================  =========================================================

A lease that expired while its process lives (stalled past the TTL, cut off from Redis) means
other hosts recovered its batches and reaped its entry: a duplicate, never a loss.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from oxtail_core.model import HOST_ID, RegistryEntry
from oxtail_core.trace import NullTracer, Tracer, safe_emit
from oxtail_redis.connection import Connection, reading, writing
from oxtail_redis.keys import Keys

LEASE_TTL_MS = 15_000
HOLDER_TTL_MS = 30_000
HEARTBEAT_S = 5.0
CACHE_S = 1.0
NO_START = "x"
"""The start part of a lease of a process whose start time is unknown."""

LocalAlive = Callable[[int, float | None], bool]


def start_ms(process_start: float | None) -> str:
    return NO_START if process_start is None else str(round(process_start * 1000))


def member(pid: int, process_start: float | None) -> str:
    """How a lease is listed in its host's set: ``<pid>:<start ms>``."""
    return f"{pid}:{start_ms(process_start)}"


def parse_member(raw: bytes) -> tuple[int, float | None] | None:
    """``(pid, process_start)`` of a set member, or None for one that is not ours."""
    pid, _, start = raw.decode("ascii", errors="replace").partition(":")
    if not pid.isdigit() or not (start == NO_START or start.isdigit()):
        return None
    return int(pid), None if start == NO_START else int(start) / 1000


class Leases:
    """The leases of one team, as seen from the host ``host_id``; judging remote ones is cached."""

    def __init__(
        self,
        conn: Connection,
        keys: Keys,
        host_id: str,
        *,
        ttl_ms: int = LEASE_TTL_MS,
        holder_ttl_ms: int = HOLDER_TTL_MS,
        cache_s: float = CACHE_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._conn = conn
        self._keys = keys
        self.host_id = host_id
        self.ttl_ms = ttl_ms
        self.holder_ttl_ms = holder_ttl_ms
        self._cache_s = cache_s
        self._monotonic = monotonic
        self._cache: dict[str, tuple[bool, float]] = {}
        self._cache_lock = threading.Lock()
        self.local_alive: LocalAlive | None = None
        """This host's process tree (set by :class:`~oxtail_redis.host.ClusterHost`): the janitor's
        judge. Without it the janitor does nothing."""

    def key(self, host: str, pid: int, process_start: float | None) -> str | None:
        """The lease's key, or None for a host id that cannot name one (it holds no lease)."""
        if not HOST_ID.match(host) or isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
            return None
        return self._keys.key(f"lease:{host}:{member(pid, process_start)}")

    def index(self, host: str) -> str:
        return self._keys.key(f"leases:{host}")

    def _write(self, host: str, pid: int, process_start: float | None, ttl_ms: int, only_new: bool) -> bool:
        key = self.key(host, pid, process_start)
        if key is None:
            return False
        pipe = self._conn.client.pipeline(transaction=True)
        pipe.set(key, str(pid), px=ttl_ms, nx=only_new)
        pipe.sadd(self.index(host), member(pid, process_start))
        created, _ = pipe.execute()
        self._forget(key)
        return bool(created)

    @writing
    def put(self, host: str, pid: int, process_start: float | None) -> None:
        """Write (or renew) a publishing process's lease; called before its entry is written."""
        self._write(host, pid, process_start, self.ttl_ms, only_new=False)

    @writing
    def hold(self, host: str, pid: int, process_start: float | None) -> None:
        """Make sure a holder has a lease (kept if it has one): a process without a heartbeat gets
        ``holder_ttl_ms``, time enough to hand its batch on."""
        self._write(host, pid, process_start, self.holder_ttl_ms, only_new=True)

    @writing
    def refresh(self, host: str, pid: int, process_start: float | None) -> bool:
        """Extend a lease that still exists (``SET XX``); False if it was gone (and is now recreated)."""
        key = self.key(host, pid, process_start)
        if key is None:
            return True
        if self._conn.client.set(key, str(pid), px=self.ttl_ms, xx=True):
            return True
        self._write(host, pid, process_start, self.ttl_ms, only_new=True)
        return False

    @reading
    def alive(self, host: str, pid: int, process_start: float | None) -> bool:
        """Whether the lease of that process on ``host`` exists (an answer at most ``cache_s`` old)."""
        key = self.key(host, pid, process_start)
        if key is None:
            return False
        now = self._monotonic()
        with self._cache_lock:
            cached = self._cache.get(key)
        if cached is not None and now - cached[1] <= self._cache_s:
            return cached[0]
        found = bool(self._conn.client.exists(key))
        with self._cache_lock:
            self._cache[key] = (found, now)
        return found

    @reading
    def prime(self, entries: Iterable[RegistryEntry]) -> None:
        """Look up the leases of every entry of another host in one ``MGET`` (the registry read
        that lists them is followed by liveness questions about each)."""
        keys = sorted(
            {
                key
                for e in entries
                if e.host_id is not None and e.host_id != self.host_id
                for key in [self.key(e.host_id, e.server_pid, e.process_start)]
                if key is not None
            }
        )
        if not keys:
            return
        found = self._conn.client.mget(keys)
        now = self._monotonic()
        with self._cache_lock:
            for key, value in zip(keys, found, strict=True):
                self._cache[key] = (value is not None, now)

    def _forget(self, key: str) -> None:
        with self._cache_lock:
            self._cache.pop(key, None)

    @writing
    def janitor(self) -> int:
        """Drop the leases of this host's processes that the local tree says are dead; how many.

        A dead process never comes back, and its key names exactly it (pid and start time), so
        nothing can renew a lease between the tree's verdict and the ``DEL``."""
        check = self.local_alive
        if check is None:
            return 0
        index = self.index(self.host_id)
        dropped = 0
        for raw in self._conn.client.smembers(index):
            parsed = parse_member(raw)
            if parsed is not None and check(*parsed):
                continue
            pipe = self._conn.client.pipeline(transaction=True)
            if parsed is not None:
                key = self.key(self.host_id, *parsed)
                if key is not None:
                    pipe.delete(key)
                    self._forget(key)
            pipe.srem(index, raw)
            pipe.execute()
            dropped += 1
        return dropped


class Heartbeat:
    """Keeps this store's leases alive, republishes an entry whose lease was lost, runs the janitor.

    ``beat`` is one round of it; ``start`` runs it every ``period_s`` in a daemon thread (tests
    call ``beat`` themselves). A failing beat (Redis away) is retried on the next one.
    """

    def __init__(
        self,
        leases: Leases,
        republish: Callable[[RegistryEntry], None],
        *,
        period_s: float | None = HEARTBEAT_S,
        tracer: Tracer | None = None,
    ) -> None:
        self._leases = leases
        self.republish = republish
        self.tracer: Tracer = tracer if tracer is not None else NullTracer()
        self._period_s = period_s
        self._lock = threading.Lock()
        self._kept: dict[tuple[str, int, float | None], RegistryEntry | None] = {}
        """Every lease this store keeps, with the entry it published under it (None: none now)."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def keep(self, host: str, pid: int, process_start: float | None, entry: RegistryEntry | None) -> None:
        """Keep that lease from now on, and republish ``entry`` (when given) if it is ever lost."""
        with self._lock:
            self._kept[(host, pid, process_start)] = entry
            start = self._thread is None and self._period_s is not None and not self._stop.is_set()
            if start:
                self._thread = threading.Thread(target=self._run, name="oxtail-lease-heartbeat", daemon=True)
        if start and self._thread is not None:
            self._thread.start()

    def keeps(self, host: str, pid: int, process_start: float | None) -> bool:
        with self._lock:
            return (host, pid, process_start) in self._kept

    def unpublish(self, host: str | None, pid: int) -> None:
        """The entry of ``pid`` was removed: keep its lease (the process lives), republish nothing."""
        with self._lock:
            for ident in self._kept:
                if ident[1] == pid and (host is None or ident[0] == host):
                    self._kept[ident] = None

    def unpublish_incarnation(self, entry: RegistryEntry) -> None:
        """That entry (that incarnation) was removed: as :meth:`unpublish`, for it alone."""
        if entry.host_id is None:
            return
        with self._lock:
            ident = (entry.host_id, entry.server_pid, entry.process_start)
            current = self._kept.get(ident)
            if current is not None and current.started_at == entry.started_at:
                self._kept[ident] = None

    def beat(self) -> None:
        with self._lock:
            kept = list(self._kept.items())
        for (host, pid, start), entry in kept:
            if self._leases.refresh(host, pid, start):
                continue
            safe_emit(self.tracer, "lease_lost", host_id=host, server_pid=pid, republished=entry is not None)
            if entry is not None:
                self.republish(entry)
        self._leases.janitor()

    def _run(self) -> None:
        assert self._period_s is not None
        while not self._stop.wait(self._period_s):
            try:
                self.beat()
            except Exception:  # noqa: BLE001 - a daemon must outlive a Redis outage: the next beat retries
                continue

    def stop(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=1.0)
