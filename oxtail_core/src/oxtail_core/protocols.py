"""The three seams between the core and the world: Store, Waker, Clock (plus Host).

The state machines call nothing else. Each Store method is one atomic step:
a filesystem store makes it atomic with a kernel lock, a memory store with a
mutex, a Redis store with a transaction. The core composes those steps so that
every interleaving of them keeps the global invariants (no loss, unique ids,
record-before-append, single-winner consumes).

The life of a message in an inbox (state x Store method -> state), which both
MemoryStore and FsStore implement and the race tests check:

    ============  =====================================  ============================
    state         Store method                           next state
    ============  =====================================  ============================
    (none)        append                                 waiting
    waiting       take (selected)                        in flight, held by a holder
    waiting       merge (source inbox)                   waiting, in the dest inbox
    in flight     settle                                 delivered (gone)
    in flight     restore (the batch, or some ids)       waiting, at the front, same id
    in flight     recover (its holder is dead)           waiting, at the front, same id
    in flight     take / merge / depth                   in flight (untouched)
    delivered     any                                    delivered (never comes back)
    ============  =====================================  ============================

Who settles: :class:`~oxtail_core.peer.Peer` before it returns a read; with
``settle=False`` (the MCP server) the caller, once the messages are handed
on, or it restores them if that failed.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar, runtime_checkable

import attrs

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
)

if TYPE_CHECKING:  # reservations (issue 12): the records import nothing of this module at run time
    from oxtail_core.reservations import Reservation

T = TypeVar("T")
ReservationStep = Callable[[Sequence["Reservation"]], tuple[Sequence["Reservation"], T]]
"""Given a project's reservations, the set to keep instead and a result (a pure function)."""


@attrs.frozen
class InboxId:
    """Where mail for one recipient waits.

    ``session`` inboxes belong to an agent (its session id) and outlive every
    process that serves it. ``process`` inboxes belong to one server process
    that has not claimed a session yet; its key includes the process start time
    so a recycled pid never inherits mail. A claim merges the process inbox
    into the session inbox exactly once. On a store shared by several machines
    the key also names the host (``<host>/<pid>-<started_at>``): two containers
    commonly run the same small pid started in the same second.
    """

    kind: Literal["session", "process"]
    key: str

    @classmethod
    def for_session(cls, session_id: str) -> InboxId:
        return cls("session", session_id)

    @classmethod
    def for_process(cls, pid: int, started_at: int, host: str | None = None) -> InboxId:
        return cls("process", f"{pid}-{started_at}" if host is None else f"{host}/{pid}-{started_at}")


@attrs.frozen
class Holder:
    """The process that took messages out of an inbox and has not yet handed them on.

    ``host`` is the machine it runs on (a host id), None for "this machine".
    """

    pid: int
    process_start: float | None = None
    host: str | None = None


@attrs.frozen
class Batch:
    """Messages taken out of an inbox but not yet settled.

    Until :meth:`Store.settle` is called the batch is recoverable: a crash of
    its holder, or :meth:`Store.restore`, puts the messages back with the same
    ids. This is what makes a read in flight survive a crash.
    """

    inbox: InboxId
    batch_id: str
    holder: Holder
    envelopes: tuple[Envelope, ...]


@attrs.frozen
class SweepReport:
    """What one :meth:`Store.sweep` removed: leftovers of killed processes and unreferenced empty inboxes."""

    temps: int = 0
    locks: int = 0
    quarantines: int = 0
    inboxes: int = 0
    kept_in_doubt: int = 0
    """Candidates left alone because something (a held lock, an unreadable entry) left a doubt."""


Selector = Callable[[Sequence[Envelope]], Sequence[int]]
"""Given an inbox's messages in order, the indices to take (a pure function).

A selector may carry an int ``window`` attribute: the most leading messages it
can ever use. A store then offers only that prefix, as an :class:`Offered`
whose ``beyond`` counts what waits after it, and does not parse the rest: a
read costs what it takes, not what waits (issue 15 item 12). Without a
``window`` the whole inbox is offered (a reply search scans all of it).
"""


class Offered(tuple[Envelope, ...]):
    """The messages a store offers a selector, with ``beyond``: how many more wait after them.

    ``beyond`` counts complete lines not parsed yet (a store that cannot tell
    lines from messages without parsing counts a corrupt line too, until a
    read reaches it and sets it aside).
    """

    beyond: int

    def __new__(cls, messages: Sequence[Envelope] = (), beyond: int = 0) -> Offered:
        offered = super().__new__(cls, messages)
        offered.beyond = beyond
        return offered


def window_of(select: Selector) -> int | None:
    """The selector's ``window`` (see :data:`Selector`), or None: it wants the whole inbox."""
    window = getattr(select, "window", None)
    return window if isinstance(window, int) and not isinstance(window, bool) and window >= 0 else None


def waiting_after(messages: Sequence[Envelope]) -> int:
    """``Offered.beyond`` of what a selector was offered (0 for a plain sequence: it was offered all)."""
    return messages.beyond if isinstance(messages, Offered) else 0


class Store(Protocol):
    """Durable state shared by every peer; each method is atomic with respect to all others."""

    # Inboxes -----------------------------------------------------------------
    def append(
        self,
        inbox: InboxId,
        envelopes: Sequence[Envelope],
        *,
        only_if_registered: RegistryEntry | None = None,
    ) -> bool:
        """Add messages at the end of an inbox, all or none; True if they were added.

        Raises :class:`~oxtail_core.errors.InboxFull` (nothing added) if the inbox's
        unread mail would pass its cap; restores and merges are never refused.

        With ``only_if_registered``, append only while that registry entry (the
        same incarnation: pid, ``started_at`` and ``process_start``) is still
        published, atomically with :meth:`registry_remove_if_drained` on the
        same inbox: a process inbox never receives mail after the last
        breadcrumb to it is gone.
        """

    def admit(self, inbox: InboxId, envelopes: Sequence[Envelope]) -> None:
        """Raise :class:`~oxtail_core.errors.InboxFull` if appending ``envelopes`` would take the
        inbox's unread mail past its cap (``limits.INBOX_MAX_BYTES``, counted as stored lines).

        A look, not a reservation: a sender asks before recording anything, so a
        refused send (a delegation above all) leaves no ledger line behind, and
        :meth:`append` checks again atomically (it raises the same error).
        """

    def take(self, inbox: InboxId, select: Selector, holder: Holder) -> Batch | None:
        """Move the selected messages into a new in-flight batch (None if nothing was selected).

        ``select`` is offered the waiting messages in order, or only its ``window``
        of them (:data:`Selector`).
        """

    def settle(self, batch: Batch) -> None:
        """Forget an in-flight batch: its messages have reached their reader."""

    def prepare_settle(self, batch: Batch) -> Callable[[], None]:
        """Everything :meth:`settle` needs but its last step, which the returned callable performs.

        A server hands a batch on by writing its response to a pipe nobody
        acknowledges; a crash after the write and before the settle brings the
        batch back (the duplicate window). Preparing first leaves only the
        commit inside that window (one ``unlink`` in the file store). The
        callable is called at most once, by the batch's holder.
        """

    def restore(self, batch: Batch, ids: Sequence[str] | None = None) -> None:
        """Put a batch's messages (or those with the given ids) back at the front of the inbox,
        in their original order; the rest of the batch stays in flight."""

    def recover(self, inbox: InboxId, is_alive: Callable[[Holder], bool]) -> int:
        """Restore every in-flight batch of ``inbox`` whose holder is dead; returns messages restored."""

    def merge(self, source: InboxId, dest: InboxId) -> int:
        """Move every message of ``source`` to the end of ``dest``, exactly once even across crashes."""

    def depth(self, inbox: InboxId) -> int:
        """Messages waiting in an inbox (not counting in-flight ones)."""

    def change_token(self, inboxes: Sequence[InboxId]) -> Hashable:
        """An opaque value that differs after any append to, or restore into, one of ``inboxes``."""

    def wait_for_change(self, inboxes: Sequence[InboxId], token: Hashable, timeout_s: float) -> bool:
        """Block until ``change_token(inboxes) != token`` or the timeout passes; True if changed."""

    def peek(self, inbox: InboxId, message_id: str) -> bool:
        """Whether a message with that id is in ``inbox``, waiting or in flight (for message_status).

        Read-only and lock-free where the store allows: a torn line or a
        concurrent rewrite may flip the answer, never raise (A12). Errors read
        as "not there".
        """

    # Received ledger --------------------------------------------------------
    def ledger_record(self, session_id: str, envelope: Envelope, keep: int) -> int:
        """Remember a message delivered to ``session_id``; returns how many lines were pruned.

        Re-recording an id replaces its line (moved last) and keeps a closed
        obligation closed. Above ``keep`` lines the oldest go first, except open
        obligations, which are never pruned (the ledger may then exceed
        ``keep``). A failure raises StoreError: durable delegations are refused
        on it (fail loud), plain messages go on without a ledger line.
        """

    def ledger_lookup(self, session_id: str, message_id: str) -> Envelope | None:
        """The newest message with that id delivered to ``session_id``."""

    def ledger_entry(self, session_id: str, message_id: str) -> LedgerRecord | None:
        """:meth:`ledger_lookup` with the obligation's outcome, if closed (read without waiting for
        writers): one read for complete_work's checks, the compare-and-set stays with ledger_close."""

    def ledger_close(self, session_id: str, message_id: str, outcome: Obligation) -> CloseOutcome:
        """Compare-and-set: close the obligation ``message_id`` (the oldest line with that id) with
        ``outcome``; of concurrent callers exactly one gets ``claimed``."""

    def ledger_open(self, session_id: str) -> list[Envelope]:
        """The open obligations of ``session_id``, newest first (read without waiting for writers).

        A missing ledger is empty; an unreadable one raises StoreError.
        """

    def ledger_records(self, session_id: str) -> list[LedgerRecord]:
        """Every message ``session_id``'s ledger holds, one record per id, oldest first by its
        newest line, closed obligations with their outcome (read without waiting for writers; the
        recent-communications log of the cockpit). A missing ledger is empty; an unreadable one
        raises StoreError."""

    # Receipts and outbox ----------------------------------------------------
    def receipt_put(self, receipt: Receipt) -> bool:
        """Write once: True if this call created it; an existing receipt is kept unchanged."""

    def receipt_get(self, message_id: str) -> Receipt | None:
        """The valid receipt for that id; a corrupt or mismatched one reads as None (A11)."""

    def outbox_put(self, record: OutboxRecord) -> bool:
        """Write once, like :meth:`receipt_put`: a re-delivery with the same id keeps the first."""

    def outbox_get(self, message_id: str) -> OutboxRecord | None:
        """The valid outbox record for that id, or None."""

    def receipts_gc(self, cutoff_ms: int) -> int:
        """Remove receipts and outbox records written before ``cutoff_ms``; returns how many went."""

    # Pending asks -------------------------------------------------------------
    def pending_put(self, ask: PendingAsk) -> bool:
        """Create the record unless one exists for the same (requester, request_id); True either way."""

    def pending_take(self, requester: str, request_id: str, replier: str | None) -> PendingAsk | None:
        """Remove and return the record: exactly one of several concurrent callers gets it.

        With ``replier`` set, a record that names a different ``peer`` is left
        alone (None is returned); ``replier=None`` takes it whoever was asked.
        """

    def pending_gc(self, cutoff_ms: int) -> int:
        """Remove records with ``at_ms <= cutoff_ms``."""

    def pending_list(self) -> list[PendingAsk]:
        """Every well-formed pending-ask record, in no particular order (for status and tools)."""

    def pending_bump(self, requester: str, request_id: str, at_ms: int) -> bool:
        """Count one re-poke (``attempts`` + 1, ``last_repoke_at`` = ``at_ms``) without extending the
        record's TTL; False if the record is gone."""

    # Self-heal (selfheal.md §1, §2) -----------------------------------------------
    def wake_intent_put(self, record: PendingWake) -> bool:
        """Create the record for (recipient, message_id) unless one exists; True iff this call created it.

        An existing record is left untouched: its age and attempts keep counting from the first send.
        """

    def wake_intent_list(self, recipient: str) -> list[PendingWake]:
        """Every well-formed record addressed to ``recipient`` (exact match), in no particular order."""

    def wake_intent_bump(self, recipient: str, message_id: str, at_ms: int) -> bool:
        """Count one re-nudge (``attempts`` + 1, ``last_attempt_at`` = ``at_ms``) without moving
        ``sent_at_ms``; False if the record is gone."""

    def wake_intent_take(self, recipient: str, message_id: str) -> bool:
        """Remove the record; True only for the one caller that removed it."""

    def wake_intent_gc(self, cutoff_ms: int) -> int:
        """Remove every record (any recipient) with ``sent_at_ms <= cutoff_ms``; returns how many went."""

    def self_wake_get(self, session_id: str) -> int | None:
        """When ``session_id``'s server last re-nudged its own pane (the persistent throttle), if ever."""

    def self_wake_put(self, session_id: str, at_ms: int) -> None:
        """Stamp a self-wake of ``session_id`` (written before the keystrokes)."""

    def waiter_claim(self, target: str, at_ms: int, stale_before_ms: int) -> bool:
        """Single-winner claim of the right to re-poke ``target`` now: True iff no claim newer than
        ``stale_before_ms`` exists and this call's claim (stamped ``at_ms``) won; of concurrent callers
        at most one gets True. Shared by every waiter of ``target``."""

    def ledger_reply_tos(self, session_id: str) -> set[str]:
        """Every ``reply_to`` value of the messages in ``session_id``'s ledger (answers it received).

        Read without waiting for writers; a missing ledger is empty, an unreadable one raises StoreError.
        """

    # Wake bookkeeping ---------------------------------------------------------
    def dedupe_get(self, target: str, reply_to: str) -> int | None:
        """When a reply wake for (target, reply_to) was claimed, if it was."""

    def dedupe_claim(self, target: str, reply_to: str, at_ms: int, stale_before_ms: int) -> bool:
        """Single-winner claim of the (target, reply_to) slot; a claim made at or before
        ``stale_before_ms`` is stale and reclaimed."""

    def dedupe_release(self, target: str, reply_to: str, at_ms: int) -> None:
        """Drop the claim made at ``at_ms`` (no keystroke was sent after all); a newer claim is kept."""

    def rate_get(self, target: str) -> int | None:
        """When the last reply wake to ``target`` was sent."""

    def rate_put(self, target: str, at_ms: int) -> None:
        """Stamp a reply wake to ``target``."""

    def wake_gc(self, cutoff_ms: int) -> int:
        """Remove dedupe, rate, self-wake and waiter-claim stamps made at or before ``cutoff_ms``."""

    def sweep(self, now_ms: int) -> SweepReport:
        """Remove what killed processes left behind and empty inboxes nothing refers to (selfheal §4).

        Never removes a message, an in-flight batch, a journal, or anything a
        live process may still use: any doubt keeps the file for the next sweep.
        """

    # Activity -----------------------------------------------------------------
    def activity_get(self, session_id: str) -> ActivityMarker | None:
        """The agent's busy/idle marker, if its hooks wrote one."""

    def activity_put(self, session_id: str, marker: ActivityMarker) -> None:
        """Write the agent's busy/idle marker."""

    # Sticky claims ------------------------------------------------------------
    def claim_put(self, record: ClaimRecord) -> None:
        """Create or replace the claim under ``record.key`` (one per agent per cwd), atomically."""

    def claim_list(self) -> list[ClaimRecord]:
        """Every well-formed claim, in no particular order; records that cannot be read are skipped."""

    def claim_gc(self, cutoff_ms: int, transcript_exists: Callable[[str], bool]) -> int:
        """Remove each claim made before ``cutoff_ms`` (``claimed_at * 1000 < cutoff_ms``) or whose
        ``transcript_path`` is unset, empty or fails ``transcript_exists``; returns how many went.

        A record the store cannot parse at all is left alone; a writer's death is never a reason.
        """

    # Registry -------------------------------------------------------------------
    def registry_put(self, entry: RegistryEntry) -> None:
        """Publish (create or replace) one server's entry, atomically."""

    def registry_remove(self, pid: int) -> None:
        """Remove one server's entry (absent is fine)."""

    def registry_remove_if_drained(self, entry: RegistryEntry, inbox: InboxId) -> bool:
        """Remove ``entry`` (that incarnation only) if ``inbox`` holds no message, waiting or in flight.

        Atomic with a guarded :meth:`append` to the same inbox. True if the
        entry is gone afterwards because of this call.
        """

    def registry_entries(self) -> list[RegistryEntry]:
        """Every well-formed entry, live or dead; forged and malformed ones are skipped."""

    # Reservations (issue 12) ----------------------------------------------------
    def reservations_update(self, project: str, step: ReservationStep[T]) -> T:
        """Atomically replace ``project``'s reservations with what ``step`` makes of them; its result.

        ``step`` is pure (:mod:`oxtail_core.reservations` holds every rule: the
        sweep, the conflict test, renewals). Of concurrent updates of one
        project each sees the set the previous one left: two overlapping
        exclusive reserves are never both granted. ``project`` is any string
        (a canonical project root); a store never makes a name of it.
        Unreadable records are skipped, never fatal (dropped by the next update that changes the set).
        """

    def reservations_list(self, project: str) -> list[Reservation]:
        """``project``'s stored reservations, ended or not (read without waiting for writers)."""


class Waker(Protocol):
    """Types the wake line into an agent's terminal."""

    def locate(self, entry: RegistryEntry) -> str | None:
        """The verified target (a tmux pane id) hosting ``entry``'s process, or None.

        Must never trust what the entry says about itself: only the live
        process tree decides, and a process whose start time differs from the
        registered one is not the registered process.
        """

    def send_text(self, target: str, text: str) -> bool:
        """Type ``text`` literally (no key names interpreted, no newline)."""

    def send_enter(self, target: str) -> bool:
        """Press Enter."""

    def capture(self, target: str) -> str | None:
        """What ``target`` shows right now, as text (bounded: the visible screen, not its history),
        or None when it cannot be read.

        Only ever called with a target :meth:`locate` just returned; the core
        judges the text (:mod:`oxtail_core.liveness`), the waker only reads it.
        """


class Clock(Protocol):
    """Wall-clock time in integer milliseconds, and the only way the core's drivers pass time."""

    def now_ms(self) -> int: ...

    def sleep(self, ms: float) -> None: ...

    async def asleep(self, ms: float) -> None: ...

    def block(self, wait: Callable[[float], bool], ms: float) -> bool:
        """Run ``wait(seconds)``, a blocking wait for a change, for at most ``ms``.

        A fake clock jumps instead of blocking."""

    async def ablock(self, wait: Callable[[float], bool], ms: float) -> bool:
        """The asyncio form of :meth:`block`: it must never block the event loop, nor hold a
        thread of the pool that runs the flows' steps.

        A cancelled wait returns at once; whatever thread it used ends within a bounded slice."""


class Host(Protocol):
    """Facts about processes and projects that only the operating system knows.

    ``host_id`` is this machine's id on a store shared by several machines, None
    when every peer runs here (a filesystem or memory store).
    """

    host_id: str | None

    def is_alive(self, pid: int, process_start: float | None, host: str | None = None) -> bool:
        """True iff ``pid`` runs and (when given) was started at ``process_start``, on ``host``
        (None: this machine). A process on another machine is judged by what that machine
        publishes (a lease), never by the local process table."""

    def same_project(self, caller_cwd: str, peer_cwd: str) -> bool:
        """Whether two working directories belong to the same project (messaging scope)."""

    def parent_of(self, pid: int) -> tuple[int, float | None] | None:
        """``pid``'s parent process and its start time, or None when the OS cannot tell.

        The parent of a server is its client process: the claim rule
        (:mod:`oxtail_core.claims`) compares them."""

    def working_dir(self, pid: int) -> str | None:
        """Where ``pid`` really works, or None when the OS cannot tell (then an entry's ``cwd`` is used).

        Scope checks ask this instead of trusting the entry (issue 15 item 11)."""


# The wake relay (redis-store.md §6) -------------------------------------------------------------
RELAY_LEASE_MS = 15_000
"""A relay's presence lease on its host, renewed by every :meth:`WakeRelay.wake_next`."""
TAKEOVER_IDLE_MS = 2_000
"""A request read and not acknowledged for this long is handed to another relay of the host."""
SLOT_TTL_MS = 60_000
"""How long a request's claim or withdrawal, and its report, are kept (well past any sender's wait)."""
RELAY_OUTCOMES = ("typed", "skipped", "unconfirmed")
"""What a relay reports: it typed the wake line and Enter into the verified pane; it typed nothing
(and never will); another relay held the request's claim and went silent (keys may have landed)."""


@attrs.frozen
class WakeRequest:
    """A wake for a pane on another host, as put on that host's stream (never a pane id, never text).

    The relay resolves the pane itself, from its own process tree, for the registry entry of this
    incarnation (``pid``, ``started_at``, ``process_start``). ``flavor`` ``"codex"`` asks for the
    submit gap ``gap_ms`` (the relay clamps it). A strict reply wake carries its dedupe slot
    (``sid``, ``reply_to``, ``claimed_at``): the relay, which knows what it typed, finalizes it.
    """

    req: str
    pid: int
    started_at: int
    process_start: float | None
    flavor: str = "other"
    gap_ms: int = 0
    ttl_ms: int = 30_000
    sid: str | None = None
    reply_to: str | None = None
    claimed_at: int | None = None

    @property
    def slot(self) -> tuple[str, str, int] | None:
        """The strict gate's dedupe slot this wake carries, or None (a lenient wake)."""
        if self.sid and self.reply_to and self.claimed_at is not None:
            return (self.sid, self.reply_to, self.claimed_at)
        return None


@attrs.frozen
class WakeDelivery:
    """A request as a relay reads it: the stream entry to ack, the request (None: unreadable), its
    age by the store's clock, and whether another consumer had it first (a takeover)."""

    entry_id: str
    request: WakeRequest | None
    age_ms: int
    taken_over: bool = False


@attrs.frozen
class WakeReport:
    """A relay's outcome for one request (:data:`RELAY_OUTCOMES`) and its reason, for the trace."""

    outcome: Literal["typed", "skipped", "unconfirmed"]
    reason: str = ""


ClaimResult = Literal["won", "withdrawn", "held"]
"""``wake_claim``: this relay may type; the sender withdrew first; another relay holds the claim."""


@runtime_checkable
class WakeRelay(Protocol):
    """The cross-host wake protocol, a Store's optional second face (one host needs none of it).

    The claim and the withdrawal are one single-winner slot per request: a sender whose
    withdrawal won knows nothing was or will be typed; a relay whose claim won knows the sender
    waits for its report. Every method is one atomic step and none blocks but
    :meth:`wait_for_wake` (performed by the drivers, never inside a flow's own store call) and
    :meth:`wake_next` (the relay's own loop).
    """

    # The sender ------------------------------------------------------------------------------
    def wake_enqueue(self, host: str, request: WakeRequest) -> bool:
        """Put ``request`` on ``host``'s stream; False (nothing queued) when no relay holds a lease
        there. Replay-safe: a request id is queued at most once."""

    def wake_outcome(self, req: str) -> WakeReport | None:
        """The relay's report for ``req``, if it has reported (a look, never a wait)."""

    def wait_for_wake(self, req: str, timeout_s: float) -> bool:
        """Block until ``req`` has a report or the timeout passes; True if it has one."""

    def wake_withdraw(self, req: str) -> bool:
        """Take the request's single-winner slot for the sender: True iff no relay claimed it first
        (then none ever will)."""

    # The relay -------------------------------------------------------------------------------
    def wake_next(self, host: str, consumer: str, timeout_s: float) -> list[WakeDelivery]:
        """Renew ``host``'s relay lease, then the requests for ``consumer``: ones another consumer
        read and left unacknowledged for too long (a takeover) and new ones, waiting at most
        ``timeout_s`` for some."""

    def wake_claim(self, req: str, consumer: str) -> ClaimResult:
        """Take the request's single-winner slot for ``consumer`` (:data:`ClaimResult`)."""

    def wake_report(self, req: str, report: WakeReport) -> None:
        """Publish the outcome to the waiting sender (the first report stands; it expires)."""

    def wake_ack(self, host: str, entry_id: str) -> None:
        """Done with that stream entry: no other consumer will be handed it."""
