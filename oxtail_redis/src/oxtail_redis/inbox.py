"""Inboxes: a LIST of envelope lines per inbox, in-flight batches in a HASH beside it.

A selector is arbitrary Python, so :meth:`Inboxes.take` reads a snapshot (lines and head
version, in one MULTI), selects in Python, and commits with ``take_commit``, which first checks
that the head version is unchanged. Only tail appends leave it unchanged, and they move no index
of the snapshot, so the commit removes exactly the lines the selector saw: the take is as if made
atomically at the snapshot. ``restore`` and ``recover`` follow the same read, decide, compare and
write pattern on the batch values (``put_back`` compares each one byte for byte).

A batch value is ``%016d`` (taken order, set by the script) + a JSON document the client wrote:
``{"holder": {"pid", "process_start"[, "host"]}, "ids": [...], "lines": [...]}`` (``host`` only
for a holder on a named host). Lua never decodes it.
"""

from __future__ import annotations

import functools
import random
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import redis

from oxtail_core.convert import ShapeError, envelope_from_line, envelope_to_line
from oxtail_core.errors import InboxFull, StoreBusy
from oxtail_core.ids import new_id
from oxtail_core.limits import INBOX_MAX_BYTES
from oxtail_core.model import Envelope, RegistryEntry
from oxtail_core.protocols import Batch, Holder, InboxId, Offered, Selector, window_of
from oxtail_core.wire import WireError, dumps, loads, utf8
from oxtail_redis import registry
from oxtail_redis.connection import BLOCK_SLICE_S, Connection, read_phase
from oxtail_redis.keys import InboxKeys, Keys

MAX_TRIES = 8
"""Compare-and-set rounds before a busy inbox is StoreBusy (the FsStore retries its journals as often)."""
SEQ = 16
NO_EVENT = "0-0"


@functools.lru_cache(maxsize=8192)
def parse_line(raw: bytes) -> Envelope | None:
    """The envelope on one stored line, or None for a line that is not one (quarantined by take)."""
    try:
        return envelope_from_line(raw.decode("utf-8"))
    except (ShapeError, WireError, ValueError, TypeError, RecursionError):
        return None


def line_of(envelope: Envelope) -> str:
    return envelope_to_line(envelope).rstrip("\n")


def _decode_batch(value: bytes) -> tuple[bytes, Holder, list[str], list[str]] | None:
    """``(sequence, holder, ids, lines)`` of a batch value, or None for one that is not ours."""
    try:
        doc = loads(value[SEQ:].decode("utf-8"))
        holder = doc["holder"]
        start = holder["process_start"]
        host = holder.get("host")
        ids, lines = doc["ids"], doc["lines"]
        if not (isinstance(holder["pid"], int) and (start is None or isinstance(start, (int, float)))):
            return None
        if not (host is None or isinstance(host, str)):
            return None
        if not (isinstance(ids, list) and isinstance(lines, list) and len(ids) == len(lines)):
            return None
        return value[:SEQ], Holder(holder["pid"], start, host), ids, lines
    except (WireError, ValueError, KeyError, TypeError):
        return None


def _encode_batch(holder: Holder, ids: Sequence[str], lines: Sequence[str]) -> str:
    holder_doc: dict[str, object] = {"pid": holder.pid, "process_start": holder.process_start}
    if holder.host is not None:
        holder_doc["host"] = holder.host
    return dumps({"holder": holder_doc, "ids": list(ids), "lines": list(lines)})


class Inboxes:
    """The inbox methods of the Store protocol for one team."""

    def __init__(self, conn: Connection, keys: Keys, inbox_max: int = INBOX_MAX_BYTES) -> None:
        self._conn = conn
        self._keys = keys
        self._inbox_max = inbox_max
        self._lock = threading.Lock()
        self._unresolved: dict[InboxId, list[Batch]] = {}
        """Takes whose commit got no answer: restored by id on the next take of that inbox."""

    def append(self, inbox: InboxId, envelopes: Sequence[Envelope], guard: RegistryEntry | None) -> bool:
        regi = self._keys.key(registry.INCARNATIONS)
        field, incarnation = (registry.field(guard), registry.incarnation(guard)) if guard else ("", "")
        if not envelopes:
            return guard is None or self._conn.client.hget(regi, field) == utf8(incarnation)
        k = self._keys.inbox(inbox)
        cap = str(self._inbox_max)
        args = [envelopes[0].id, "1" if guard else "0", field, incarnation, cap, *map(line_of, envelopes)]
        outcome = int(self._conn.run("append", [k.lines, k.events, k.recent, regi, k.waiting], args))
        if outcome < 0:
            raise InboxFull(-1 - outcome, self._inbox_max)
        return outcome == 1

    def admit(self, inbox: InboxId, envelopes: Sequence[Envelope]) -> None:
        """A look at the waiting bytes (the append checks again, atomically)."""
        if not envelopes:
            return
        waiting = int(self._conn.client.get(self._keys.inbox(inbox).waiting) or 0)
        if waiting + sum(len(utf8(line_of(e))) + 1 for e in envelopes) > self._inbox_max:
            raise InboxFull(waiting, self._inbox_max)

    def _snapshot(self, k: InboxKeys, window: int | None) -> tuple[list[bytes], str, int]:
        """The waiting lines (only the first ``window`` of them), the head version, and how many
        lines wait after those returned."""
        pipe = self._conn.client.pipeline(transaction=True)
        pipe.lrange(k.lines, 0, -1 if window is None else window - 1)
        pipe.get(k.head)
        pipe.llen(k.lines)
        raw, seen, total = pipe.execute()
        return raw, seen.decode("ascii") if seen is not None else "0", int(total) - len(raw)

    def _commit(
        self, k: InboxKeys, seen: str, batch: tuple[str, str], bad: list[int], taken: list[int]
    ) -> bool:
        """``batch``: its id and document; ``bad`` and ``taken``: snapshot positions (0-based)."""
        batch_id, doc = batch
        keys = [k.lines, k.head, k.flights, k.taken, k.quarantine, k.waiting]
        return bool(self._conn.run("take_commit", keys, [seen, batch_id, doc, len(bad), *bad, *taken]) == 1)

    def take(self, inbox: InboxId, select: Selector, holder: Holder) -> Batch | None:
        self._resolve(inbox)
        k = self._keys.inbox(inbox)
        for attempt in range(MAX_TRIES):
            if attempt:
                time.sleep(random.random() * 0.002 * attempt)  # jitter: racing readers fall out of step
            window = window_of(select)
            if window == 0:
                return None
            with read_phase(self._conn, "take"):
                raw, seen, beyond = self._snapshot(k, window)
            where: list[int] = []
            envelopes: list[Envelope] = []
            bad: list[int] = []
            for index, line in enumerate(raw):
                env = parse_line(line)
                if env is None:
                    bad.append(index)
                else:
                    where.append(index)
                    envelopes.append(env)
            chosen = sorted(set(select(Offered(envelopes, beyond))))
            if not chosen:
                return None
            taken = tuple(envelopes[c] for c in chosen)
            lines = [raw[where[c]].decode("utf-8") for c in chosen]
            batch = Batch(inbox=inbox, batch_id=new_id(), holder=holder, envelopes=taken)
            doc = _encode_batch(holder, [e.id for e in taken], lines)
            try:
                committed = self._commit(k, seen, (batch.batch_id, doc), bad, [where[c] for c in chosen])
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                with self._lock:
                    self._unresolved.setdefault(inbox, []).append(batch)
                why = "the commit got no answer; it is undone next time"
                raise StoreBusy(f"{self._conn.where} (take: {why})") from exc
            if committed:
                return batch
        raise StoreBusy(f"{self._conn.where} (take: the inbox kept changing)")

    def _resolve(self, inbox: InboxId) -> None:
        """Put back every take of ours whose commit outcome was unknown (a no-op if it never landed)."""
        with self._lock:
            pending = self._unresolved.pop(inbox, [])
        try:
            while pending:
                self.restore(pending[0], None)
                pending.pop(0)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            # Nothing was handed out, and the restore is idempotent: the next take tries it again.
            why = f"an earlier take whose commit got no answer is not put back yet: {exc}"
            raise StoreBusy(f"{self._conn.where} (take: {why})") from exc
        finally:
            if pending:  # the server is still away: keep the rest for the next take
                with self._lock:
                    self._unresolved.setdefault(inbox, [])[:0] = pending

    def settle(self, batch: Batch) -> None:
        self._conn.client.hdel(self._keys.inbox(batch.inbox).flights, batch.batch_id)

    def _put_back(self, k: InboxKeys, changes: Sequence[tuple[str, bytes, str]], lines: Sequence[str]) -> int:
        args: list[Any] = [len(changes)]
        for batch_id, expected, new in changes:
            args += [batch_id, expected, new]
        keys = [k.lines, k.flights, k.head, k.events, self._keys.op(new_id()), k.waiting]
        return int(self._conn.run("put_back", keys, [*args, *lines]))

    def restore(self, batch: Batch, ids: Sequence[str] | None) -> None:
        k = self._keys.inbox(batch.inbox)
        for _ in range(MAX_TRIES):
            with read_phase(self._conn, "restore"):
                value = self._conn.client.hget(k.flights, batch.batch_id)
            decoded = _decode_batch(value) if value is not None else None
            if decoded is None:
                return
            seq, holder, batch_ids, lines = decoded
            wanted = set(ids) if ids is not None else set(batch_ids)
            back = [line for i, line in zip(batch_ids, lines, strict=True) if i in wanted]
            if not back:
                return
            rest = [(i, line) for i, line in zip(batch_ids, lines, strict=True) if i not in wanted]
            new = seq.decode("ascii") + _encode_batch(holder, *zip(*rest, strict=True)) if rest else ""
            if self._put_back(k, [(batch.batch_id, value, new)], back) >= 0:
                return
        raise StoreBusy(f"{self._conn.where} (restore: the batch kept changing)")

    def recover(self, inbox: InboxId, is_alive: Callable[[Holder], bool]) -> int:
        k = self._keys.inbox(inbox)
        for _ in range(MAX_TRIES):
            with read_phase(self._conn, "recover"):
                flights = self._conn.client.hgetall(k.flights)
            dead: list[tuple[bytes, bytes, list[str]]] = []
            for batch_id, value in flights.items():
                decoded = _decode_batch(value)
                if decoded is not None and not is_alive(decoded[1]):
                    dead.append((decoded[0], batch_id, decoded[3]))
            if not dead:
                return 0
            dead.sort()  # taken order: the oldest batch goes back first, as the mail arrived
            changes = [(bid.decode("utf-8"), flights[bid], "") for _, bid, _ in dead]
            restored = self._put_back(k, changes, [line for _, _, lines in dead for line in lines])
            if restored >= 0:
                return restored
        raise StoreBusy(f"{self._conn.where} (recover: the batches kept changing)")

    def merge(self, source: InboxId, dest: InboxId) -> int:
        if source == dest:
            return 0
        s, d = self._keys.inbox(source), self._keys.inbox(dest)
        keys = [s.lines, d.lines, s.head, s.events, d.events, self._keys.op(new_id()), s.waiting, d.waiting]
        return int(self._conn.run("merge", keys))

    def depth(self, inbox: InboxId) -> int:
        return int(self._conn.client.llen(self._keys.inbox(inbox).lines))

    def in_flight(self, inbox: InboxId) -> list[Batch]:
        found = []
        for batch_id, value in self._conn.client.hgetall(self._keys.inbox(inbox).flights).items():
            decoded = _decode_batch(value)
            if decoded is None:
                continue
            seq, holder, _, lines = decoded
            envelopes = tuple(e for e in (parse_line(utf8(line)) for line in lines) if e is not None)
            found.append((seq, Batch(inbox, batch_id.decode("utf-8"), holder, envelopes)))
        return [batch for _, batch in sorted(found, key=lambda pair: pair[0])]

    def peek(self, inbox: InboxId, message_id: str) -> bool:
        k = self._keys.inbox(inbox)
        pipe = self._conn.client.pipeline(transaction=True)
        pipe.lrange(k.lines, 0, -1)
        pipe.hvals(k.flights)
        waiting, flights = pipe.execute()
        needle = utf8(dumps(message_id))
        for line in waiting:
            env = parse_line(line) if needle in line else None
            if env is not None and env.id == message_id:
                return True
        for value in flights:
            decoded = _decode_batch(value) if needle in value else None
            if decoded is not None and message_id in decoded[2]:
                return True
        return False

    def change_token(self, inboxes: Sequence[InboxId]) -> Hashable:
        if not inboxes:
            return ()
        pipe = self._conn.client.pipeline(transaction=True)
        for inbox in inboxes:
            pipe.xrevrange(self._keys.inbox(inbox).events, "+", "-", count=1)
        return tuple(last[0][0].decode("ascii") if last else NO_EVENT for last in pipe.execute())

    def wait_for_change(self, inboxes: Sequence[InboxId], token: Hashable, timeout_s: float) -> bool:
        """``XREAD BLOCK`` from the token's stream positions: a change made after the token was read
        returns at once, even across a reconnect. A lost connection is retried until the deadline."""
        if not isinstance(token, tuple) or len(token) != len(inboxes) or timeout_s <= 0:
            return self.change_token(inboxes) != token
        deadline = time.monotonic() + timeout_s
        if not inboxes:
            time.sleep(timeout_s)
            return False
        streams = {self._keys.inbox(i).events: t for i, t in zip(inboxes, token, strict=True)}
        while (remaining := deadline - time.monotonic()) > 0:
            block_ms = max(1, min(round(remaining * 1000), int(BLOCK_SLICE_S * 1000)))
            try:
                if self._conn.blocking.xread(streams, count=1, block=block_ms):
                    return True
            except (redis.ConnectionError, redis.TimeoutError):
                time.sleep(min(0.05, max(remaining, 0)))
        return False
