"""The small records: receipts and outbox, pending asks, wake intents, wake stamps, activity,
sticky claims and reservations.

Most live as fields of one HASH per kind with a ZSET beside it that indexes each field by the
record's own time, so every ``*_gc`` is one script over the index (no SCAN). Fields may be any
caller string (a JSON pair for two-part keys); key names never are.

=====================  ==============  ==============================  =========================
record                 hash / index    field                           index score
=====================  ==============  ==============================  =========================
receipt                ``rc`` / rci    message id (hex16)              ``delivered_at`` x 1000
outbox record          ``ob`` / obi    message id (hex16)              ``enqueued_at`` x 1000
pending ask            ``pa`` / pai    ``[requester, request_id]``     ``at_ms``
wake intent            ``wi`` / wii    ``[recipient, message_id]``     ``sent_at_ms``
dedupe stamp           ``dd`` / ddi    ``[target, reply_to]``          the stamp
rate stamp             ``rt`` / rti    target                          the stamp
self-wake stamp        ``sw`` / swi    session id                      the stamp
waiter claim           ``wc`` / wci    target                          the stamp
sticky claim           ``cl`` / cli    the claim's key                 (none: gc reads records)
activity marker        ``act:<h>``     (a STRING per session)          (none)
reservations           ``rsv:<h>``     (a STRING per project)          (none)
=====================  ==============  ==============================  =========================

Decisions that need Python (a peer check, ``attrs.evolve``, a reservation step, a transcript
check) read the exact stored value, decide, and swap it only if it is still that value.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

import attrs

from oxtail_core.convert import ShapeError, from_wire, to_wire
from oxtail_core.errors import StoreBusy
from oxtail_core.ids import HEX16, new_id
from oxtail_core.model import (
    ActivityMarker,
    ClaimRecord,
    OutboxRecord,
    PendingAsk,
    PendingWake,
    Receipt,
    claim_is_stale,
)
from oxtail_core.protocols import ReservationStep, T
from oxtail_core.reservations import Reservation, records_of
from oxtail_core.wire import WireError, dumps, loads
from oxtail_redis.connection import Connection
from oxtail_redis.inbox import MAX_TRIES
from oxtail_redis.keys import Keys

C = TypeVar("C")


def parse(raw: bytes | None, cls: type[C]) -> C | None:
    """A record of ``cls`` from its stored JSON, or None for a missing or malformed one."""
    if raw is None:
        return None
    try:
        record = from_wire(loads(raw.decode("utf-8")), cls)
    except (ShapeError, WireError, ValueError, TypeError, RecursionError):
        return None
    return record if isinstance(record, cls) else None


def encode(record: object) -> str:
    return dumps(to_wire(record))


def _stamp(raw: bytes | None) -> int | None:
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


class Records:
    """Every small-record method of the Store protocol for one team."""

    def __init__(self, conn: Connection, keys: Keys) -> None:
        self._conn = conn
        self._keys = keys

    def _op(self) -> str:
        return self._keys.op(new_id())

    def _put_once(self, kind: str, field: str, record: object, score: float) -> bool:
        h, i = self._keys.indexed(kind)
        return bool(self._conn.run("put_once", [h, i, self._op()], [field, encode(record), score]) == 1)

    def _swap(self, kind: str, field: str, expected: bytes, new: str) -> bool:
        h, i = self._keys.indexed(kind)
        return bool(self._conn.run("swap_field", [h, i, self._op()], [field, expected, new, ""]) == 1)

    def _get(self, kind: str, field: str) -> bytes | None:
        value: bytes | None = self._conn.client.hget(self._keys.key(kind), field)
        return value

    def _gc(self, kinds: tuple[str, ...], score_max: str) -> int:
        keys = [key for kind in kinds for key in self._keys.indexed(kind)]
        return int(self._conn.run("gc_scored", keys, [score_max]))

    # Receipts and outbox ------------------------------------------------------------------------
    def receipt_put(self, receipt: Receipt) -> bool:
        if not HEX16.match(receipt.message_id):
            return False
        return self._put_once("rc", receipt.message_id, receipt, receipt.delivered_at * 1000)

    def receipt_get(self, message_id: str) -> Receipt | None:
        record = parse(self._get("rc", message_id), Receipt) if HEX16.match(message_id) else None
        return record if record is not None and record.message_id == message_id else None

    def outbox_put(self, record: OutboxRecord) -> bool:
        if not HEX16.match(record.message_id):
            return False
        return self._put_once("ob", record.message_id, record, (record.enqueued_at or 0) * 1000)

    def outbox_get(self, message_id: str) -> OutboxRecord | None:
        record = parse(self._get("ob", message_id), OutboxRecord) if HEX16.match(message_id) else None
        return record if record is not None and record.message_id == message_id else None

    def receipts_gc(self, cutoff_ms: int) -> int:
        """By the record's own time (the index score), strictly before the cutoff, as MemoryStore."""
        return self._gc(("rc", "ob"), f"({cutoff_ms}")

    # Pending asks ---------------------------------------------------------------------------------
    def pending_put(self, ask: PendingAsk) -> bool:
        self._put_once("pa", dumps([ask.requester, ask.request_id]), ask, ask.at_ms)
        return True  # an existing record is kept: its age keeps counting from the first ask

    def pending_take(self, requester: str, request_id: str, replier: str | None) -> PendingAsk | None:
        field = dumps([requester, request_id])
        for _ in range(MAX_TRIES):
            raw = self._get("pa", field)
            record = parse(raw, PendingAsk)
            if raw is None or record is None or (replier is not None and record.peer not in (None, replier)):
                return None
            if self._swap("pa", field, raw, ""):
                return record
        raise StoreBusy(f"{self._conn.where} (pending_take: the record kept changing)")

    def pending_gc(self, cutoff_ms: int) -> int:
        return self._gc(("pa",), str(cutoff_ms))

    def pending_list(self) -> list[PendingAsk]:
        records = (parse(raw, PendingAsk) for raw in self._conn.client.hvals(self._keys.key("pa")))
        return [r for r in records if r is not None]

    def _bump(self, kind: str, field: str, cls: type[Any], change: Callable[[Any], Any]) -> bool:
        for _ in range(MAX_TRIES):
            raw = self._get(kind, field)
            record = parse(raw, cls)
            if raw is None or record is None:
                return False
            if self._swap(kind, field, raw, encode(change(record))):
                return True
        raise StoreBusy(f"{self._conn.where} ({kind} bump: the record kept changing)")

    def pending_bump(self, requester: str, request_id: str, at_ms: int) -> bool:
        def bump(r: PendingAsk) -> PendingAsk:
            return attrs.evolve(r, attempts=r.attempts + 1, last_repoke_at=at_ms)

        return self._bump("pa", dumps([requester, request_id]), PendingAsk, bump)

    # Wake intents and stamps ---------------------------------------------------------------------
    def wake_intent_put(self, record: PendingWake) -> bool:
        return self._put_once("wi", dumps([record.recipient, record.message_id]), record, record.sent_at_ms)

    def wake_intent_list(self, recipient: str) -> list[PendingWake]:
        records = (parse(raw, PendingWake) for raw in self._conn.client.hvals(self._keys.key("wi")))
        return [r for r in records if r is not None and r.recipient == recipient]

    def wake_intent_bump(self, recipient: str, message_id: str, at_ms: int) -> bool:
        def bump(r: PendingWake) -> PendingWake:
            return attrs.evolve(r, attempts=r.attempts + 1, last_attempt_at=at_ms)

        return self._bump("wi", dumps([recipient, message_id]), PendingWake, bump)

    def wake_intent_take(self, recipient: str, message_id: str) -> bool:
        h, i = self._keys.indexed("wi")
        field = dumps([recipient, message_id])
        return bool(self._conn.run("take_field", [h, i, self._op()], [field]) == 1)

    def wake_intent_gc(self, cutoff_ms: int) -> int:
        return self._gc(("wi",), str(cutoff_ms))

    def stamp_get(self, kind: str, field: str) -> int | None:
        return _stamp(self._get(kind, field))

    def stamp_put(self, kind: str, field: str, at_ms: int) -> None:
        self._conn.run("put_stamp", self._keys.indexed(kind), [field, at_ms])

    def stamp_claim(self, kind: str, field: str, at_ms: int, stale_before_ms: int) -> bool:
        h, i = self._keys.indexed(kind)
        return bool(self._conn.run("claim_stamp", [h, i, self._op()], [field, at_ms, stale_before_ms]) == 1)

    def stamp_release(self, kind: str, field: str, at_ms: int) -> None:
        self._conn.run("release_stamp", self._keys.indexed(kind), [field, at_ms])

    def wake_gc(self, cutoff_ms: int) -> int:
        return self._gc(("dd", "rt", "sw", "wc"), str(cutoff_ms))

    # Activity -------------------------------------------------------------------------------------
    def activity_get(self, session_id: str) -> ActivityMarker | None:
        return parse(self._conn.client.get(self._keys.hashed("act", session_id)), ActivityMarker)

    def activity_put(self, session_id: str, marker: ActivityMarker) -> None:
        self._conn.client.set(self._keys.hashed("act", session_id), encode(marker))

    # Sticky claims --------------------------------------------------------------------------------
    def claim_put(self, record: ClaimRecord) -> None:
        self._conn.client.hset(self._keys.key("cl"), record.key, encode(record))

    def claim_list(self) -> list[ClaimRecord]:
        records = (parse(raw, ClaimRecord) for raw in self._conn.client.hvals(self._keys.key("cl")))
        return [r for r in records if r is not None]

    def claim_gc(self, cutoff_ms: int, transcript_exists: Callable[[str], bool]) -> int:
        """Any JSON object counts by its ``transcript_path`` and ``claimed_at`` alone (the FsStore's
        rule); a record replaced meanwhile is left for the next gc."""
        removed = 0
        for field, raw in self._conn.client.hgetall(self._keys.key("cl")).items():
            try:
                data = loads(raw.decode("utf-8"))
            except (WireError, ValueError):
                continue
            if not isinstance(data, dict):
                continue
            transcript, claimed_at = data.get("transcript_path"), data.get("claimed_at")
            number = (
                claimed_at
                if isinstance(claimed_at, (int, float))
                and not isinstance(claimed_at, bool)
                and math.isfinite(claimed_at)
                else None
            )
            path = transcript if isinstance(transcript, str) else None
            if claim_is_stale(path, number, cutoff_ms, transcript_exists):
                removed += self._swap("cl", field.decode("utf-8"), raw, "")
        return removed

    # Reservations ---------------------------------------------------------------------------------
    def _reservations(self, raw: bytes | None) -> list[Reservation]:
        try:
            data = loads(raw.decode("utf-8")) if raw is not None else []
        except (WireError, ValueError):
            return []
        return records_of(data)

    def reservations_update(self, project: str, step: ReservationStep[T]) -> T:
        """Read, step (pure, so it may run again), and swap only if nobody changed the set meanwhile."""
        key = self._keys.hashed("rsv", project)
        for _ in range(MAX_TRIES * 4):
            raw = self._conn.client.get(key)
            before = self._reservations(raw)
            kept, result = step(before)
            if list(kept) == before:
                return result
            new = dumps([r.to_json() for r in kept]) if kept else ""
            args = ["1" if raw is None else "0", raw or b"", new]
            if self._conn.run("swap_string", [key, self._op()], args) == 1:
                return result
        raise StoreBusy(f"{self._conn.where} (reservations_update: the set kept changing)")

    def reservations_list(self, project: str) -> list[Reservation]:
        return self._reservations(self._conn.client.get(self._keys.hashed("rsv", project)))
