"""RedisStore: the whole :class:`~oxtail_core.protocols.Store` protocol on one Redis server.

Behaves like :class:`oxtail_core.memory.MemoryStore` (the reference semantics; the unchanged
contract tests and race machines run on it). Every method is one atomic server-side step: one
command, one MULTI of reads, or one Lua script; where a decision needs Python (a selector, a
liveness callable, a reservation step) it is read, decide, then a script that compares what was
read before it writes. There are no journals: Redis applies a script whole or not at all, also
in its append-only file. Callers only ever see :class:`StoreError` / :class:`StoreBusy`
(:mod:`oxtail_redis.connection` maps them).

Across machines (docs/redis.md "Across machines"): the store has a host id
(:func:`oxtail_redis.host.host_id`); an entry that names a host is published after its lease
(:mod:`oxtail_redis.lease`), which a heartbeat thread keeps alive from the first publish on;
:meth:`RedisStore.cluster_host` is the Host that judges processes of other machines by it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from oxtail_core.errors import StoreError
from oxtail_core.ids import new_id
from oxtail_core.model import (
    HOST_ID,
    ActivityMarker,
    ClaimRecord,
    CloseOutcome,
    Envelope,
    LedgerRecord,
    Obligation,
    OutboxRecord,
    PendingAsk,
    PendingWake,
    Receipt,
    RegistryEntry,
)
from oxtail_core.protocols import (
    Batch,
    ClaimResult,
    Holder,
    Host,
    InboxId,
    ReservationStep,
    Selector,
    SweepReport,
    T,
    WakeDelivery,
    WakeReport,
    WakeRequest,
)
from oxtail_core.reservations import Reservation
from oxtail_core.trace import Tracer
from oxtail_core.wire import dumps
from oxtail_redis import registry
from oxtail_redis.clock import RedisClock
from oxtail_redis.connection import Connection, reading, writing
from oxtail_redis.host import ClusterHost
from oxtail_redis.host import host_id as own_host_id
from oxtail_redis.inbox import Inboxes
from oxtail_redis.keys import Keys, prefix_from_env
from oxtail_redis.lease import CACHE_S, HEARTBEAT_S, HOLDER_TTL_MS, LEASE_TTL_MS, Heartbeat, Leases
from oxtail_redis.ledger import Ledgers
from oxtail_redis.records import Records
from oxtail_redis.url import parse_url
from oxtail_redis.wakes import Wakes


class RedisStore:
    """A complete Store for one team (``team``: ``^[a-z0-9][a-z0-9_-]{0,62}$``) on the Redis at ``url``.

    Keys are ``<prefix>:{<team>}:...`` (``prefix``: ``OXTAIL_REDIS_PREFIX`` in ``environ``, else
    ``oxt``), one cluster slot per team. ``timeout_s`` bounds every command (blocking waits are
    sliced separately); after it, plus three replay-safe retries, a read is StoreBusy and a
    write a StoreError whose outcome is unknown.

    ``host_id`` is this machine's (default: ``OXTAIL_HOST_ID`` in ``environ``, else computed).
    The lease timings (``lease_ttl_ms``, ``holder_ttl_ms``, ``heartbeat_s``: None runs no thread,
    a caller then beats itself; ``lease_cache_s``) are the design's unless a test shortens them.
    """

    def __init__(
        self,
        url: str,
        team: str,
        *,
        prefix: str | None = None,
        timeout_s: float = 2.0,
        environ: Mapping[str, str] | None = None,
        host_id: str | None = None,
        lease_ttl_ms: int = LEASE_TTL_MS,
        holder_ttl_ms: int = HOLDER_TTL_MS,
        heartbeat_s: float | None = HEARTBEAT_S,
        lease_cache_s: float = CACHE_S,
    ) -> None:
        env = os.environ if environ is None else environ
        chosen = prefix if prefix is not None else prefix_from_env(env)
        self._keys = Keys(team, chosen)
        self.host_id = _checked_host_id(host_id) if host_id is not None else own_host_id(env)
        self._conn = Connection(parse_url(url), timeout_s)
        self._inboxes = Inboxes(self._conn, self._keys)
        self._ledgers = Ledgers(self._conn, self._keys)
        self._records = Records(self._conn, self._keys)
        self._wakes = Wakes(self._conn, self._keys)
        self.leases = Leases(
            self._conn,
            self._keys,
            self.host_id,
            ttl_ms=lease_ttl_ms,
            holder_ttl_ms=holder_ttl_ms,
            cache_s=lease_cache_s,
        )
        self.heartbeat = Heartbeat(self.leases, self._republish, period_s=heartbeat_s)

    # Across machines ------------------------------------------------------------------------------
    def cluster_host(self, local: Host, *, tracer: Tracer | None = None) -> ClusterHost:
        """The Host for a process on this store: ``local`` judges this machine's processes, leases
        the others'; this store's heartbeat becomes this host's janitor (and traces to ``tracer``)."""
        if tracer is not None:
            self.heartbeat.tracer = tracer
        return ClusterHost(self.leases, local)

    def cluster_clock(self) -> RedisClock:
        """A clock on Redis's time (:mod:`oxtail_redis.clock`): what every process on this store uses."""
        return RedisClock(self.redis_time)

    @reading
    def redis_time(self) -> tuple[int, int]:
        seconds, micros = self._conn.client.time()
        return int(seconds), int(micros)

    def when_lease_lost(self, republish: Callable[[RegistryEntry], None]) -> None:
        """Republish with ``republish`` (e.g. ``routing.publish``) instead of re-putting the entry
        when a heartbeat finds an entry's lease gone (other hosts have judged it dead)."""
        self.heartbeat.republish = republish

    def _republish(self, entry: RegistryEntry) -> None:
        self.registry_put(entry)

    @property
    def where(self) -> str:
        """The server (password masked) and the team's key prefix, for messages and status."""
        return f"{self._conn.where} {self._keys.base}"

    def close(self) -> None:
        self.heartbeat.stop()
        self._conn.close()

    @writing
    def drop_namespace(self) -> int:
        """Delete every key of this team (SCAN + UNLINK; never FLUSHDB); returns how many went."""
        gone = 0
        for chunk in _chunks(self._conn.client.scan_iter(match=self._keys.pattern, count=500), 500):
            gone += int(self._conn.client.unlink(*chunk))
        return gone

    # Inboxes --------------------------------------------------------------------------------------
    @writing
    def append(
        self,
        inbox: InboxId,
        envelopes: Sequence[Envelope],
        *,
        only_if_registered: RegistryEntry | None = None,
    ) -> bool:
        return self._inboxes.append(inbox, envelopes, only_if_registered)

    @reading
    def admit(self, inbox: InboxId, envelopes: Sequence[Envelope]) -> None:
        self._inboxes.admit(inbox, envelopes)

    @writing
    def take(self, inbox: InboxId, select: Selector, holder: Holder) -> Batch | None:
        """A holder on a named host gets a lease first (unless this store keeps one for it): a
        batch is never visible under a holder that other hosts would judge dead at once."""
        if holder.host is not None and not self.heartbeat.keeps(
            holder.host, holder.pid, holder.process_start
        ):
            self.leases.hold(holder.host, holder.pid, holder.process_start)
        return self._inboxes.take(inbox, select, holder)

    @writing
    def settle(self, batch: Batch) -> None:
        self._inboxes.settle(batch)

    def prepare_settle(self, batch: Batch) -> Callable[[], None]:
        """Nothing to prepare: the commit is one ``HDEL``, the only step inside the duplicate window."""
        return functools.partial(self.settle, batch)

    @writing
    def restore(self, batch: Batch, ids: Sequence[str] | None = None) -> None:
        self._inboxes.restore(batch, ids)

    @writing
    def recover(self, inbox: InboxId, is_alive: Callable[[Holder], bool]) -> int:
        return self._inboxes.recover(inbox, is_alive)

    @writing
    def merge(self, source: InboxId, dest: InboxId) -> int:
        return self._inboxes.merge(source, dest)

    @reading
    def depth(self, inbox: InboxId) -> int:
        return self._inboxes.depth(inbox)

    @reading
    def in_flight(self, inbox: InboxId) -> list[Batch]:
        """Batches taken from ``inbox`` and not yet settled, oldest first (tests and status)."""
        return self._inboxes.in_flight(inbox)

    def peek(self, inbox: InboxId, message_id: str) -> bool:
        """Never raises (A12): an error reads as "not there"."""
        try:
            return self._inboxes.peek(inbox, message_id)
        except Exception:  # noqa: BLE001 - the protocol's promise: errors read as "not there"
            return False

    @reading
    def change_token(self, inboxes: Sequence[InboxId]) -> Hashable:
        return self._inboxes.change_token(inboxes)

    @reading
    def wait_for_change(self, inboxes: Sequence[InboxId], token: Hashable, timeout_s: float) -> bool:
        return self._inboxes.wait_for_change(inboxes, token, timeout_s)

    # Ledger ---------------------------------------------------------------------------------------
    @writing
    def ledger_record(self, session_id: str, envelope: Envelope, keep: int) -> int:
        return self._ledgers.record(session_id, envelope, keep)

    @reading
    def ledger_lookup(self, session_id: str, message_id: str) -> Envelope | None:
        record = self._ledgers.entry(session_id, message_id)
        return record.envelope if record is not None else None

    @reading
    def ledger_entry(self, session_id: str, message_id: str) -> LedgerRecord | None:
        return self._ledgers.entry(session_id, message_id)

    @writing
    def ledger_close(self, session_id: str, message_id: str, outcome: Obligation) -> CloseOutcome:
        return self._ledgers.close(session_id, message_id, outcome)

    @reading
    def ledger_open(self, session_id: str) -> list[Envelope]:
        return self._ledgers.open(session_id)

    @reading
    def ledger_records(self, session_id: str) -> list[LedgerRecord]:
        return self._ledgers.records(session_id)

    @reading
    def ledger_reply_tos(self, session_id: str) -> set[str]:
        return self._ledgers.reply_tos(session_id)

    # Receipts and outbox --------------------------------------------------------------------------
    @writing
    def receipt_put(self, receipt: Receipt) -> bool:
        return self._records.receipt_put(receipt)

    @reading
    def receipt_get(self, message_id: str) -> Receipt | None:
        return self._records.receipt_get(message_id)

    @writing
    def outbox_put(self, record: OutboxRecord) -> bool:
        return self._records.outbox_put(record)

    @reading
    def outbox_get(self, message_id: str) -> OutboxRecord | None:
        return self._records.outbox_get(message_id)

    @writing
    def receipts_gc(self, cutoff_ms: int) -> int:
        return self._records.receipts_gc(cutoff_ms)

    # Pending asks ---------------------------------------------------------------------------------
    @writing
    def pending_put(self, ask: PendingAsk) -> bool:
        return self._records.pending_put(ask)

    @writing
    def pending_take(self, requester: str, request_id: str, replier: str | None) -> PendingAsk | None:
        return self._records.pending_take(requester, request_id, replier)

    @writing
    def pending_gc(self, cutoff_ms: int) -> int:
        return self._records.pending_gc(cutoff_ms)

    @reading
    def pending_list(self) -> list[PendingAsk]:
        return self._records.pending_list()

    @writing
    def pending_bump(self, requester: str, request_id: str, at_ms: int) -> bool:
        return self._records.pending_bump(requester, request_id, at_ms)

    # Self-heal ------------------------------------------------------------------------------------
    @writing
    def wake_intent_put(self, record: PendingWake) -> bool:
        return self._records.wake_intent_put(record)

    @reading
    def wake_intent_list(self, recipient: str) -> list[PendingWake]:
        return self._records.wake_intent_list(recipient)

    @writing
    def wake_intent_bump(self, recipient: str, message_id: str, at_ms: int) -> bool:
        return self._records.wake_intent_bump(recipient, message_id, at_ms)

    @writing
    def wake_intent_take(self, recipient: str, message_id: str) -> bool:
        return self._records.wake_intent_take(recipient, message_id)

    @writing
    def wake_intent_gc(self, cutoff_ms: int) -> int:
        return self._records.wake_intent_gc(cutoff_ms)

    @reading
    def self_wake_get(self, session_id: str) -> int | None:
        return self._records.stamp_get("sw", session_id)

    @writing
    def self_wake_put(self, session_id: str, at_ms: int) -> None:
        self._records.stamp_put("sw", session_id, at_ms)

    @writing
    def waiter_claim(self, target: str, at_ms: int, stale_before_ms: int) -> bool:
        return self._records.stamp_claim("wc", target, at_ms, stale_before_ms)

    # Wake bookkeeping -----------------------------------------------------------------------------
    @reading
    def dedupe_get(self, target: str, reply_to: str) -> int | None:
        return self._records.stamp_get("dd", dumps([target, reply_to]))

    @writing
    def dedupe_claim(self, target: str, reply_to: str, at_ms: int, stale_before_ms: int) -> bool:
        return self._records.stamp_claim("dd", dumps([target, reply_to]), at_ms, stale_before_ms)

    @writing
    def dedupe_release(self, target: str, reply_to: str, at_ms: int) -> None:
        self._records.stamp_release("dd", dumps([target, reply_to]), at_ms)

    @reading
    def rate_get(self, target: str) -> int | None:
        return self._records.stamp_get("rt", target)

    @writing
    def rate_put(self, target: str, at_ms: int) -> None:
        self._records.stamp_put("rt", target, at_ms)

    @writing
    def wake_gc(self, cutoff_ms: int) -> int:
        return self._records.wake_gc(cutoff_ms)

    def sweep(self, now_ms: int) -> SweepReport:
        """Nothing to sweep: no temp files, lock sidecars or journals exist, and an empty inbox's
        list is gone by itself. Its head version and event stream stay (a few bytes): dropping the
        version could let a take's stale snapshot match again (an ABA that would lose a message)."""
        return SweepReport()

    # Activity -------------------------------------------------------------------------------------
    @reading
    def activity_get(self, session_id: str) -> ActivityMarker | None:
        return self._records.activity_get(session_id)

    @writing
    def activity_put(self, session_id: str, marker: ActivityMarker) -> None:
        self._records.activity_put(session_id, marker)

    # Sticky claims --------------------------------------------------------------------------------
    @writing
    def claim_put(self, record: ClaimRecord) -> None:
        self._records.claim_put(record)

    @reading
    def claim_list(self) -> list[ClaimRecord]:
        return self._records.claim_list()

    @writing
    def claim_gc(self, cutoff_ms: int, transcript_exists: Callable[[str], bool]) -> int:
        return self._records.claim_gc(cutoff_ms, transcript_exists)

    # Registry -------------------------------------------------------------------------------------
    @writing
    def registry_put(self, entry: RegistryEntry) -> None:
        """Lease first, then the entry: an entry visible without its lease would be judged dead by
        other hosts and reaped at once. The heartbeat keeps the lease from now on."""
        if not registry.is_registry_pid(entry.server_pid):
            raise StoreError(f"not a registrable pid: {entry.server_pid!r}")
        self._lease_for(entry)
        self._write_entry(entry)

    def _lease_for(self, entry: RegistryEntry) -> None:
        if entry.host_id is not None:
            self.leases.put(entry.host_id, entry.server_pid, entry.process_start)
            self.heartbeat.keep(entry.host_id, entry.server_pid, entry.process_start, entry)

    def _write_entry(self, entry: RegistryEntry) -> None:
        pipe = self._conn.client.pipeline(transaction=True)
        pipe.hset(self._keys.key(registry.ENTRIES), registry.field(entry), registry.encode(entry))
        pipe.hset(self._keys.key(registry.INCARNATIONS), registry.field(entry), registry.incarnation(entry))
        pipe.execute()

    @writing
    def registry_remove(self, pid: int) -> None:
        """That pid on this store's host (and an entry of that pid that names no host)."""
        if registry.is_registry_pid(pid):
            fields = (str(pid), registry.field_of(self.host_id, pid))
            pipe = self._conn.client.pipeline(transaction=True)
            pipe.hdel(self._keys.key(registry.ENTRIES), *fields)
            pipe.hdel(self._keys.key(registry.INCARNATIONS), *fields)
            pipe.execute()
            self.heartbeat.unpublish(self.host_id, pid)

    @writing
    def registry_remove_if_drained(self, entry: RegistryEntry, inbox: InboxId) -> bool:
        k = self._keys.inbox(inbox)
        keys = [
            k.lines,
            k.flights,
            self._keys.key(registry.ENTRIES),
            self._keys.key(registry.INCARNATIONS),
            self._keys.op(new_id()),
        ]
        args = [registry.field(entry), registry.incarnation(entry)]
        removed = bool(self._conn.run("remove_if_drained", keys, args) == 1)
        if removed and entry.host_id is not None:
            self.heartbeat.unpublish_incarnation(entry)
        return removed

    @reading
    def registry_entries(self) -> list[RegistryEntry]:
        """Every entry; the leases of those on other hosts are read right after (one ``MGET``), so
        the liveness questions that follow cost nothing more."""
        raw = self._conn.client.hgetall(self._keys.key(registry.ENTRIES))
        entries = [e for e in (registry.decode(name, value) for name, value in raw.items()) if e is not None]
        self.leases.prime(entries)
        return sorted(entries, key=lambda e: (e.server_pid, e.host_id or ""))

    # Reservations ---------------------------------------------------------------------------------
    @writing
    def reservations_update(self, project: str, step: ReservationStep[T]) -> T:
        return self._records.reservations_update(project, step)

    @reading
    def reservations_list(self, project: str) -> list[Reservation]:
        return self._records.reservations_list(project)

    # The wake relay (WakeRelay, oxtail_redis.wakes) ----------------------------------------------
    @writing
    def wake_enqueue(self, host: str, request: WakeRequest) -> bool:
        return self._wakes.enqueue(host, request)

    @reading
    def wake_outcome(self, req: str) -> WakeReport | None:
        return self._wakes.outcome(req)

    def wait_for_wake(self, req: str, timeout_s: float) -> bool:
        """Never raises: an unreachable Redis reads as "no report yet" (the sender's bounds decide)."""
        return self._wakes.wait(req, timeout_s)

    @writing
    def wake_withdraw(self, req: str) -> bool:
        return self._wakes.withdraw(req)

    @writing
    def wake_next(self, host: str, consumer: str, timeout_s: float) -> list[WakeDelivery]:
        return self._wakes.next(host, consumer, timeout_s)

    @writing
    def wake_claim(self, req: str, consumer: str) -> ClaimResult:
        return self._wakes.claim(req, consumer)

    @writing
    def wake_report(self, req: str, report: WakeReport) -> None:
        self._wakes.report(req, report)

    @writing
    def wake_ack(self, host: str, entry_id: str) -> None:
        self._wakes.ack(host, entry_id)

    @writing
    def wake_prune(self, host: str, idle_ms: int, *, only: str | None = None) -> int:
        """Redis only: drop relays that left nothing pending from the host's group (see Wakes.prune)."""
        return self._wakes.prune(host, idle_ms, only=only)


def _checked_host_id(chosen: str) -> str:
    if not HOST_ID.match(chosen):
        raise StoreError(f"invalid host id {chosen!r}: want {HOST_ID.pattern}")
    return chosen


def _chunks(items: Any, size: int) -> Any:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
