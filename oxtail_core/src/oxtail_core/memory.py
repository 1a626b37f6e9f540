"""An in-memory Store for orchestrators that run every agent in one process, and for tests.

One mutex makes every method atomic; a condition variable wakes waiters the
moment an inbox they watch changes.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Hashable, Sequence

import attrs

from oxtail_core.convert import line_size
from oxtail_core.errors import InboxFull
from oxtail_core.ids import HEX16, new_id
from oxtail_core.limits import INBOX_MAX_BYTES
from oxtail_core.model import (
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
    claim_is_stale,
    one_per_message,
    same_incarnation,
)
from oxtail_core.protocols import (
    RELAY_LEASE_MS,
    TAKEOVER_IDLE_MS,
    Batch,
    ClaimResult,
    Holder,
    InboxId,
    Offered,
    ReservationStep,
    Selector,
    SweepReport,
    T,
    WakeDelivery,
    WakeReport,
    WakeRequest,
    window_of,
)
from oxtail_core.reservations import Reservation


class MemoryStore:
    """A complete, thread-safe :class:`~oxtail_core.protocols.Store` held in memory."""

    def __init__(self, *, inbox_max_bytes: int = INBOX_MAX_BYTES) -> None:
        self._inbox_max = inbox_max_bytes
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._inboxes: dict[InboxId, list[Envelope]] = {}
        self._waiting: dict[InboxId, int] = {}
        """Bytes of unread mail per inbox, as stored lines (what the cap counts)."""
        self._versions: dict[InboxId, int] = {}
        self._in_flight: dict[InboxId, dict[str, Batch]] = {}
        self._ledgers: dict[str, list[LedgerRecord]] = {}
        self._receipts: dict[str, Receipt] = {}
        self._outbox: dict[str, OutboxRecord] = {}
        self._pending: dict[tuple[str, str], PendingAsk] = {}
        self._dedupe: dict[tuple[str, str], int] = {}
        self._rate: dict[str, int] = {}
        self._wakes: dict[tuple[str, str], PendingWake] = {}
        self._self_wake: dict[str, int] = {}
        self._waiter_claims: dict[str, int] = {}
        self._activity: dict[str, ActivityMarker] = {}
        self._registry: dict[tuple[str | None, int], RegistryEntry] = {}
        """By host and pid (two machines may run one pid); this store's own host is None."""
        self._claims: dict[str, ClaimRecord] = {}
        self._reservations: dict[str, tuple[Reservation, ...]] = {}
        self.relay = _Relays()
        """The wake relay's state (its ``now_ms`` times leases and takeovers: a test may swap it)."""

    # Inboxes ---------------------------------------------------------------------
    def _bump(self, inbox: InboxId) -> None:
        self._versions[inbox] = self._versions.get(inbox, 0) + 1
        self._changed.notify_all()

    def _count(self, inbox: InboxId, envelopes: Sequence[Envelope], sign: int) -> None:
        self._waiting[inbox] = self._waiting.get(inbox, 0) + sign * sum(line_size(e) for e in envelopes)

    def admit(self, inbox: InboxId, envelopes: Sequence[Envelope]) -> None:
        with self._lock:
            self._admit(inbox, envelopes)

    def _admit(self, inbox: InboxId, envelopes: Sequence[Envelope]) -> None:
        waiting = self._waiting.get(inbox, 0)
        if envelopes and waiting + sum(line_size(e) for e in envelopes) > self._inbox_max:
            raise InboxFull(waiting, self._inbox_max)

    def append(
        self,
        inbox: InboxId,
        envelopes: Sequence[Envelope],
        *,
        only_if_registered: RegistryEntry | None = None,
    ) -> bool:
        with self._lock:
            if only_if_registered is not None and not self._registered(only_if_registered):
                return False
            if envelopes:
                self._admit(inbox, envelopes)
                self._inboxes.setdefault(inbox, []).extend(envelopes)
                self._count(inbox, envelopes, 1)
                self._bump(inbox)
            return True

    def _registered(self, entry: RegistryEntry) -> bool:
        current = self._registry.get((entry.host_id, entry.server_pid))
        return current is not None and same_incarnation(current, entry)

    def take(self, inbox: InboxId, select: Selector, holder: Holder) -> Batch | None:
        with self._lock:
            messages = self._inboxes.get(inbox, [])
            window = window_of(select)
            shown = messages if window is None else messages[:window]
            chosen = sorted(set(select(Offered(shown, len(messages) - len(shown)))))
            if not chosen:
                return None
            taken = tuple(messages[i] for i in chosen)
            keep = set(chosen)
            self._inboxes[inbox] = [m for i, m in enumerate(messages) if i not in keep]
            self._count(inbox, taken, -1)
            batch = Batch(inbox=inbox, batch_id=new_id(), holder=holder, envelopes=taken)
            self._in_flight.setdefault(inbox, {})[batch.batch_id] = batch
            return batch

    def settle(self, batch: Batch) -> None:
        with self._lock:
            self._in_flight.get(batch.inbox, {}).pop(batch.batch_id, None)

    def prepare_settle(self, batch: Batch) -> Callable[[], None]:
        return functools.partial(self.settle, batch)

    def restore(self, batch: Batch, ids: Sequence[str] | None = None) -> None:
        with self._lock:
            self._restore_locked(batch, ids)

    def _restore_locked(self, batch: Batch, ids: Sequence[str] | None) -> int:
        flights = self._in_flight.get(batch.inbox, {})
        current = flights.get(batch.batch_id)
        if current is None:
            return 0
        wanted = set(ids) if ids is not None else {e.id for e in current.envelopes}
        back = [e for e in current.envelopes if e.id in wanted]
        rest = tuple(e for e in current.envelopes if e.id not in wanted)
        if rest:
            flights[batch.batch_id] = attrs.evolve(current, envelopes=rest)
        else:
            del flights[batch.batch_id]
        if back:
            self._inboxes[batch.inbox] = back + self._inboxes.get(batch.inbox, [])
            self._count(batch.inbox, back, 1)
            self._bump(batch.inbox)
        return len(back)

    def recover(self, inbox: InboxId, is_alive: Callable[[Holder], bool]) -> int:
        with self._lock:
            dead = [b for b in self._in_flight.get(inbox, {}).values() if not is_alive(b.holder)]
            # Newest first, each to the front: the oldest batch ends up first, as the mail arrived.
            return sum(self._restore_locked(b, None) for b in reversed(dead))

    def merge(self, source: InboxId, dest: InboxId) -> int:
        if source == dest:
            return 0
        with self._lock:
            moved = self._inboxes.pop(source, [])
            if moved:
                self._inboxes.setdefault(dest, []).extend(moved)
                self._count(source, moved, -1)
                self._count(dest, moved, 1)
                self._bump(dest)
                self._bump(source)
            return len(moved)

    def depth(self, inbox: InboxId) -> int:
        with self._lock:
            return len(self._inboxes.get(inbox, []))

    def peek(self, inbox: InboxId, message_id: str) -> bool:
        with self._lock:
            if any(e.id == message_id for e in self._inboxes.get(inbox, [])):
                return True
            batches = self._in_flight.get(inbox, {}).values()
            return any(e.id == message_id for b in batches for e in b.envelopes)

    def in_flight(self, inbox: InboxId) -> list[Batch]:
        """Batches taken from ``inbox`` and not yet settled (for tests and status views)."""
        with self._lock:
            return list(self._in_flight.get(inbox, {}).values())

    def change_token(self, inboxes: Sequence[InboxId]) -> Hashable:
        with self._lock:
            return tuple(self._versions.get(i, 0) for i in inboxes)

    def wait_for_change(self, inboxes: Sequence[InboxId], token: Hashable, timeout_s: float) -> bool:
        def changed() -> bool:
            return tuple(self._versions.get(i, 0) for i in inboxes) != token

        with self._changed:
            return self._changed.wait_for(changed, timeout=max(timeout_s, 0))

    # Ledger -----------------------------------------------------------------------
    def ledger_record(self, session_id: str, envelope: Envelope, keep: int) -> int:
        with self._lock:
            lines = self._ledgers.setdefault(session_id, [])
            same = [r for r in lines if r.envelope.id == envelope.id]
            outcome = next((r.obligation for r in same if r.obligation is not None), None)
            lines[:] = [r for r in lines if r.envelope.id != envelope.id]
            lines.append(LedgerRecord(envelope, outcome))
            excess = len(lines) - max(keep, 0)
            kept: list[LedgerRecord] = []
            dropped = 0
            for record in lines:
                if dropped < excess and not record.is_open:
                    dropped += 1
                else:
                    kept.append(record)
            lines[:] = kept
            return dropped

    def ledger_lookup(self, session_id: str, message_id: str) -> Envelope | None:
        with self._lock:
            for record in reversed(self._ledgers.get(session_id, [])):
                if record.envelope.id == message_id:
                    return record.envelope
            return None

    def ledger_entry(self, session_id: str, message_id: str) -> LedgerRecord | None:
        with self._lock:
            same = [r for r in self._ledgers.get(session_id, []) if r.envelope.id == message_id]
            if not same:
                return None
            outcome = next((r.obligation for r in same if r.obligation is not None), None)
            return LedgerRecord(same[-1].envelope, outcome)

    def ledger_close(self, session_id: str, message_id: str, outcome: Obligation) -> CloseOutcome:
        with self._lock:
            lines = self._ledgers.get(session_id, [])
            for index, record in enumerate(lines):
                if record.envelope.id != message_id:
                    continue
                if not record.envelope.action_required:
                    return CloseOutcome("not-an-obligation", record)
                if record.obligation is not None:
                    return CloseOutcome("already-closed", record)
                lines[index] = LedgerRecord(record.envelope, outcome)
                return CloseOutcome("claimed", lines[index])
            return CloseOutcome("not-found")

    def ledger_open(self, session_id: str) -> list[Envelope]:
        with self._lock:
            return [r.envelope for r in reversed(self._ledgers.get(session_id, [])) if r.is_open]

    def ledger_records(self, session_id: str) -> list[LedgerRecord]:
        with self._lock:
            return one_per_message(self._ledgers.get(session_id, []))

    # Receipts and outbox ------------------------------------------------------------
    def receipt_put(self, receipt: Receipt) -> bool:
        """Only a hex16 id has a receipt (a file store names the file by it); the reference skips others."""
        if not HEX16.match(receipt.message_id):
            return False
        with self._lock:
            return self._receipts.setdefault(receipt.message_id, receipt) is receipt

    def receipt_get(self, message_id: str) -> Receipt | None:
        with self._lock:
            return self._receipts.get(message_id)

    def outbox_put(self, record: OutboxRecord) -> bool:
        if not HEX16.match(record.message_id):
            return False
        with self._lock:
            return self._outbox.setdefault(record.message_id, record) is record

    def outbox_get(self, message_id: str) -> OutboxRecord | None:
        with self._lock:
            return self._outbox.get(message_id)

    def receipts_gc(self, cutoff_ms: int) -> int:
        """Age is the record's own time (``delivered_at`` / ``enqueued_at``): memory has no mtimes."""
        with self._lock:
            old_receipts = [k for k, r in self._receipts.items() if r.delivered_at * 1000 < cutoff_ms]
            old_outbox = [k for k, o in self._outbox.items() if (o.enqueued_at or 0) * 1000 < cutoff_ms]
            for k in old_receipts:
                del self._receipts[k]
            for k in old_outbox:
                del self._outbox[k]
            return len(old_receipts) + len(old_outbox)

    # Pending asks -------------------------------------------------------------------
    def pending_put(self, ask: PendingAsk) -> bool:
        with self._lock:
            self._pending.setdefault((ask.requester, ask.request_id), ask)
            return True

    def pending_take(self, requester: str, request_id: str, replier: str | None) -> PendingAsk | None:
        with self._lock:
            record = self._pending.get((requester, request_id))
            if record is None or (replier is not None and record.peer not in (None, replier)):
                return None
            return self._pending.pop((requester, request_id))

    def pending_gc(self, cutoff_ms: int) -> int:
        with self._lock:
            old = [k for k, p in self._pending.items() if p.at_ms <= cutoff_ms]
            for k in old:
                del self._pending[k]
            return len(old)

    def pending_list(self) -> list[PendingAsk]:
        with self._lock:
            return list(self._pending.values())

    def pending_bump(self, requester: str, request_id: str, at_ms: int) -> bool:
        with self._lock:
            record = self._pending.get((requester, request_id))
            if record is None:
                return False
            self._pending[(requester, request_id)] = attrs.evolve(
                record, attempts=record.attempts + 1, last_repoke_at=at_ms
            )
            return True

    # Wake bookkeeping -----------------------------------------------------------------
    def wake_intent_put(self, record: PendingWake) -> bool:
        with self._lock:
            key = (record.recipient, record.message_id)
            if key in self._wakes:
                return False
            self._wakes[key] = record
            return True

    def wake_intent_list(self, recipient: str) -> list[PendingWake]:
        with self._lock:
            return [w for (r, _), w in self._wakes.items() if r == recipient]

    def wake_intent_bump(self, recipient: str, message_id: str, at_ms: int) -> bool:
        with self._lock:
            record = self._wakes.get((recipient, message_id))
            if record is None:
                return False
            self._wakes[(recipient, message_id)] = attrs.evolve(
                record, attempts=record.attempts + 1, last_attempt_at=at_ms
            )
            return True

    def wake_intent_take(self, recipient: str, message_id: str) -> bool:
        with self._lock:
            return self._wakes.pop((recipient, message_id), None) is not None

    def wake_intent_gc(self, cutoff_ms: int) -> int:
        with self._lock:
            old = [k for k, w in self._wakes.items() if w.sent_at_ms <= cutoff_ms]
            for k in old:
                del self._wakes[k]
            return len(old)

    def self_wake_get(self, session_id: str) -> int | None:
        with self._lock:
            return self._self_wake.get(session_id)

    def self_wake_put(self, session_id: str, at_ms: int) -> None:
        with self._lock:
            self._self_wake[session_id] = at_ms

    def waiter_claim(self, target: str, at_ms: int, stale_before_ms: int) -> bool:
        with self._lock:
            existing = self._waiter_claims.get(target)
            if existing is not None and existing > stale_before_ms:
                return False
            self._waiter_claims[target] = at_ms
            return True

    def ledger_reply_tos(self, session_id: str) -> set[str]:
        with self._lock:
            return {r.envelope.reply_to for r in self._ledgers.get(session_id, []) if r.envelope.reply_to}

    def dedupe_get(self, target: str, reply_to: str) -> int | None:
        with self._lock:
            return self._dedupe.get((target, reply_to))

    def dedupe_claim(self, target: str, reply_to: str, at_ms: int, stale_before_ms: int) -> bool:
        with self._lock:
            existing = self._dedupe.get((target, reply_to))
            if existing is not None and existing > stale_before_ms:
                return False
            self._dedupe[(target, reply_to)] = at_ms
            return True

    def dedupe_release(self, target: str, reply_to: str, at_ms: int) -> None:
        with self._lock:
            if self._dedupe.get((target, reply_to)) == at_ms:
                del self._dedupe[(target, reply_to)]

    def rate_get(self, target: str) -> int | None:
        with self._lock:
            return self._rate.get(target)

    def rate_put(self, target: str, at_ms: int) -> None:
        with self._lock:
            self._rate[target] = at_ms

    def wake_gc(self, cutoff_ms: int) -> int:
        with self._lock:
            old_d = [k for k, at in self._dedupe.items() if at <= cutoff_ms]
            removed = len(old_d)
            for k in old_d:
                del self._dedupe[k]
            for stamps in (self._rate, self._self_wake, self._waiter_claims):
                old = [t for t, at in stamps.items() if at <= cutoff_ms]
                for t in old:
                    del stamps[t]
                removed += len(old)
            return removed

    def sweep(self, now_ms: int) -> SweepReport:
        """Nothing to sweep: memory has no temp files, lock sidecars or quarantine, and an empty inbox
        is no object a reader can tell from a missing one."""
        return SweepReport()

    # Activity ---------------------------------------------------------------------------
    def activity_get(self, session_id: str) -> ActivityMarker | None:
        with self._lock:
            return self._activity.get(session_id)

    def activity_put(self, session_id: str, marker: ActivityMarker) -> None:
        with self._lock:
            self._activity[session_id] = marker

    # Sticky claims ----------------------------------------------------------------------
    def claim_put(self, record: ClaimRecord) -> None:
        with self._lock:
            self._claims[record.key] = record

    def claim_list(self) -> list[ClaimRecord]:
        with self._lock:
            return list(self._claims.values())

    def claim_gc(self, cutoff_ms: int, transcript_exists: Callable[[str], bool]) -> int:
        with self._lock:
            gone = [
                k
                for k, c in self._claims.items()
                if claim_is_stale(c.transcript_path, c.claimed_at, cutoff_ms, transcript_exists)
            ]
            for k in gone:
                del self._claims[k]
            return len(gone)

    # Registry ---------------------------------------------------------------------------
    def registry_put(self, entry: RegistryEntry) -> None:
        with self._lock:
            self._registry[(entry.host_id, entry.server_pid)] = entry

    def registry_remove(self, pid: int) -> None:
        """That pid on this store's host (an entry without a host id)."""
        with self._lock:
            self._registry.pop((None, pid), None)

    def registry_remove_if_drained(self, entry: RegistryEntry, inbox: InboxId) -> bool:
        with self._lock:
            if self._inboxes.get(inbox) or self._in_flight.get(inbox):
                return False
            if not self._registered(entry):
                return False
            del self._registry[(entry.host_id, entry.server_pid)]
            return True

    def registry_entries(self) -> list[RegistryEntry]:
        with self._lock:
            return list(self._registry.values())

    # Reservations (issue 12) ------------------------------------------------------------
    def reservations_update(self, project: str, step: ReservationStep[T]) -> T:
        with self._lock:
            kept, result = step(self._reservations.get(project, ()))
            self._reservations[project] = tuple(kept)
            return result

    def reservations_list(self, project: str) -> list[Reservation]:
        with self._lock:
            return list(self._reservations.get(project, ()))

    # The wake relay (WakeRelay, redis-store.md §6) ---------------------------------------------
    def wake_enqueue(self, host: str, request: WakeRequest) -> bool:
        with self._lock:
            r = self.relay
            if r.leases.get(host, -1) <= r.now_ms():
                return False
            if request.req not in r.queued:
                r.queued.add(request.req)
                r.seq += 1
                r.streams.setdefault(host, []).append(_Entry(f"{r.now_ms()}-{r.seq}", request, r.now_ms()))
            return True

    def wake_outcome(self, req: str) -> WakeReport | None:
        with self._lock:
            return self.relay.reports.get(req)

    def wait_for_wake(self, req: str, timeout_s: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: req in self.relay.reports, timeout=max(timeout_s, 0))

    def wake_withdraw(self, req: str) -> bool:
        with self._lock:
            return self.relay.claims.setdefault(req, "withdrawn") == "withdrawn"

    def wake_next(self, host: str, consumer: str, timeout_s: float) -> list[WakeDelivery]:
        with self._changed:
            r = self.relay
            r.leases[host] = r.now_ms() + RELAY_LEASE_MS
            self._changed.wait_for(lambda: r.due(host, consumer), timeout=max(timeout_s, 0))
            return r.deliver(host, consumer)

    def wake_claim(self, req: str, consumer: str) -> ClaimResult:
        with self._lock:
            holder = self.relay.claims.setdefault(req, f"relay:{consumer}")
            if holder == f"relay:{consumer}":
                return "won"
            return "withdrawn" if holder == "withdrawn" else "held"

    def wake_report(self, req: str, report: WakeReport) -> None:
        with self._lock:
            self.relay.reports.setdefault(req, report)
            self._changed.notify_all()

    def wake_ack(self, host: str, entry_id: str) -> None:
        with self._lock:
            entry = next((e for e in self.relay.streams.get(host, []) if e.entry_id == entry_id), None)
            if entry is not None:
                entry.acked = True


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


@attrs.define(eq=False)
class _Entry:
    """One request on a host's stream, and who was last handed it (a consumer group of one stream)."""

    entry_id: str
    request: WakeRequest
    added_ms: int
    consumer: str | None = None
    delivered_ms: int = 0
    acked: bool = False


@attrs.define(eq=False)
class _Relays:
    """What a Redis keeps for the relay protocol: leases, streams with their pending entries, the
    per-request single-winner slots, reports. Guarded by the store's lock."""

    now_ms: Callable[[], int] = _wall_ms
    leases: dict[str, int] = attrs.field(factory=dict)
    streams: dict[str, list[_Entry]] = attrs.field(factory=dict)
    queued: set[str] = attrs.field(factory=set)
    claims: dict[str, str] = attrs.field(factory=dict)
    reports: dict[str, WakeReport] = attrs.field(factory=dict)
    seq: int = 0

    def _takeovers(self, host: str, consumer: str) -> list[_Entry]:
        idle_before = self.now_ms() - TAKEOVER_IDLE_MS
        return [
            e
            for e in self.streams.get(host, [])
            if not e.acked and e.consumer not in (None, consumer) and e.delivered_ms <= idle_before
        ]

    def due(self, host: str, consumer: str) -> bool:
        fresh = any(e.consumer is None for e in self.streams.get(host, []))
        return fresh or bool(self._takeovers(host, consumer))

    def deliver(self, host: str, consumer: str) -> list[WakeDelivery]:
        now = self.now_ms()
        out: list[WakeDelivery] = []
        for e in self._takeovers(host, consumer):
            e.consumer, e.delivered_ms = consumer, now
            out.append(WakeDelivery(e.entry_id, e.request, now - e.added_ms, taken_over=True))
        for e in self.streams.get(host, []):
            if e.consumer is None:
                e.consumer, e.delivered_ms = consumer, now
                out.append(WakeDelivery(e.entry_id, e.request, now - e.added_ms))
        return out


class MemoryHost:
    """A Host for peers that live in one process: pids are names, alive until :meth:`kill`.

    Every peer is in the same project unless ``projects`` maps a cwd to a
    different project name. ``host_id`` is None: every peer runs on this one "machine".
    """

    host_id: str | None = None

    def __init__(self, projects: dict[str, str] | None = None) -> None:
        self.dead: set[int] = set()
        self.projects = projects or {}
        self.parents: dict[int, int] = {}
        self.cwds: dict[int, str] = {}

    def kill(self, pid: int) -> None:
        """From now on ``pid`` counts as a dead process."""
        self.dead.add(pid)

    def is_alive(self, pid: int, process_start: float | None, host: str | None = None) -> bool:
        return pid not in self.dead

    def same_project(self, caller_cwd: str, peer_cwd: str) -> bool:
        return self.projects.get(caller_cwd, "") == self.projects.get(peer_cwd, "")

    def parent_of(self, pid: int) -> tuple[int, float | None] | None:
        """The parent set in ``parents`` (None: unknown, the entry's ``client_pid`` is used)."""
        parent = self.parents.get(pid)
        return None if parent is None else (parent, None)

    def working_dir(self, pid: int) -> str | None:
        """The cwd set in ``cwds`` (None: unknown, the entry's ``cwd`` is used)."""
        return self.cwds.get(pid)


class RecordingWaker:
    """A Waker that types into nothing and remembers every keystroke (for tests and demos).

    ``locate`` trusts the registered pane only if it is in ``panes``, the set
    of panes this fake "terminal" really has. ``screens`` is what each pane
    shows (a pane without one cannot be read); every :meth:`capture` is
    remembered in ``captured``, so a test can see that a pane was never read.
    """

    def __init__(self, panes: set[str] | None = None) -> None:
        self.panes = panes if panes is not None else set()
        self.keys: list[tuple[str, str]] = []
        self.screens: dict[str, str] = {}
        self.captured: list[str] = []

    def locate(self, entry: RegistryEntry) -> str | None:
        return entry.tmux_pane if entry.tmux_pane in self.panes else None

    def send_text(self, target: str, text: str) -> bool:
        self.keys.append((target, text))
        return True

    def send_enter(self, target: str) -> bool:
        self.keys.append((target, "Enter"))
        return True

    def capture(self, target: str) -> str | None:
        self.captured.append(target)
        return self.screens.get(target)
