"""The received ledger of one session: ids in order (LIST), one line per id (HASH), open obligations (SET).

Each id has exactly one line, so "re-recording moves the line last" is an ``LREM`` + ``RPUSH``,
and pruning (oldest first, never an open obligation) runs in the same script as the record. A
line is the FsStore's ledger line (the envelope, plus ``obligation`` once closed); whether it is
an open obligation is decided in Python and kept as set membership, so Lua never parses JSON.
Record and close are compare-and-set on the id's line as it was read.
"""

from __future__ import annotations

from oxtail_core.convert import ShapeError, from_wire, to_wire
from oxtail_core.errors import StoreBusy
from oxtail_core.ids import new_id
from oxtail_core.model import CloseOutcome, Envelope, LedgerRecord, Obligation
from oxtail_core.wire import WireError, dumps, loads
from oxtail_redis.connection import Connection
from oxtail_redis.inbox import MAX_TRIES
from oxtail_redis.keys import Keys


def parse(raw: bytes | None) -> LedgerRecord | None:
    if raw is None:
        return None
    try:
        record = from_wire(loads(raw.decode("utf-8")), LedgerRecord)
    except (ShapeError, WireError, ValueError, TypeError, RecursionError):
        return None
    return record if isinstance(record, LedgerRecord) else None


def line_of(record: LedgerRecord) -> str:
    return dumps(to_wire(record))


class Ledgers:
    """The ledger methods of the Store protocol for one team."""

    def __init__(self, conn: Connection, keys: Keys) -> None:
        self._conn = conn
        self._keys = keys

    def record(self, session_id: str, envelope: Envelope, keep: int) -> int:
        k = self._keys.ledger(session_id)
        for _ in range(MAX_TRIES):
            current = self._conn.client.hget(k.lines, envelope.id)
            old = parse(current)
            record = LedgerRecord(envelope, old.obligation if old is not None else None)
            args = [
                envelope.id,
                "1" if current is None else "0",
                current or b"",
                line_of(record),
                "1" if record.is_open else "0",
                keep,
            ]
            pruned = int(
                self._conn.run("ledger_record", [k.ids, k.lines, k.open, self._keys.op(new_id())], args)
            )
            if pruned >= 0:
                return pruned
        raise StoreBusy(f"{self._conn.where} (ledger_record: the line kept changing)")

    def entry(self, session_id: str, message_id: str) -> LedgerRecord | None:
        return parse(self._conn.client.hget(self._keys.ledger(session_id).lines, message_id))

    def close(self, session_id: str, message_id: str, outcome: Obligation) -> CloseOutcome:
        k = self._keys.ledger(session_id)
        for _ in range(MAX_TRIES):
            current = self._conn.client.hget(k.lines, message_id)
            record = parse(current)
            if current is None or record is None:
                return CloseOutcome("not-found")
            if not record.envelope.action_required:
                return CloseOutcome("not-an-obligation", record)
            if record.obligation is not None:
                return CloseOutcome("already-closed", record)
            closed = LedgerRecord(record.envelope, outcome)
            keys = [k.lines, k.open, self._keys.op(new_id())]
            if self._conn.run("ledger_close", keys, [message_id, current, line_of(closed)]) == 1:
                return CloseOutcome("claimed", closed)
        raise StoreBusy(f"{self._conn.where} (ledger_close: the line kept changing)")

    def open(self, session_id: str) -> list[Envelope]:
        k = self._keys.ledger(session_id)
        records = (parse(raw) for raw in self._conn.run("ledger_open", [k.ids, k.lines, k.open]))
        return [r.envelope for r in records if r is not None and r.is_open]

    def records(self, session_id: str) -> list[LedgerRecord]:
        k = self._keys.ledger(session_id)
        pipe = self._conn.client.pipeline(transaction=True)
        pipe.lrange(k.ids, 0, -1)
        pipe.hgetall(k.lines)
        ids, lines = pipe.execute()
        records = (parse(lines.get(i)) for i in ids)
        return [r for r in records if r is not None]

    def reply_tos(self, session_id: str) -> set[str]:
        records = (parse(raw) for raw in self._conn.client.hvals(self._keys.ledger(session_id).lines))
        return {r.envelope.reply_to for r in records if r is not None and r.envelope.reply_to}
