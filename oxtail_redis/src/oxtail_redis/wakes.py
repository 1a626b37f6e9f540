"""The wake relay's Redis side (redis-store.md §6.2): one stream per host, a consumer group of its
relays, a lease per host, and one single-winner slot and one report per request.

=====================  =================  ===================================================
key                    type               what
=====================  =================  ===================================================
``relay:<h(host)>``    STRING, PX 15 s    the host's relay lease (any relay renews it)
``wake:<h(host)>``     STREAM, group      the host's requests; group ``relays``; MAXLEN ~10000
``wreq:<req>``         STRING, PX 60 s    the request was queued (a retried enqueue adds nothing)
``wclaim:<req>``       STRING, PX 60 s    ``withdrawn`` or ``relay:<consumer>``: the single winner
``wres:<req>``         STRING, PX 60 s    the report (the first stands)
``wout:<req>``         LIST, PX 60 s      one element per report: what the sender's BLPOP waits on
=====================  =================  ===================================================

A host id is caller text, so its keys are named by its hash; a request id is checked hex16. The
request travels as one JSON field and is checked field by field when read: an unreadable one is
acknowledged and never typed. Ages are measured by Redis's clock (``TIME`` minus the entry id's
milliseconds), so no host's clock skew makes a request look fresh.
"""

from __future__ import annotations

import time
from importlib import resources
from typing import Any

import redis

from oxtail_core.errors import StoreError
from oxtail_core.ids import HEX16
from oxtail_core.protocols import (
    RELAY_LEASE_MS,
    RELAY_OUTCOMES,
    SLOT_TTL_MS,
    TAKEOVER_IDLE_MS,
    ClaimResult,
    WakeDelivery,
    WakeReport,
    WakeRequest,
)
from oxtail_core.wire import dumps, loads
from oxtail_redis.connection import BLOCK_SLICE_S, Connection
from oxtail_redis.keys import Keys

GROUP = "relays"
STREAM_MAX = 10_000
BATCH = 16
WITHDRAWN = b"withdrawn"


def _req(req: str) -> str:
    if not isinstance(req, str) or not HEX16.match(req):
        raise StoreError(f"not a wake request id: {req!r}")
    return req


def encode(request: WakeRequest) -> str:
    """The request's one stream field (a JSON object; no pane, no text: the record has neither)."""
    return dumps(
        {
            "req": request.req,
            "pid": request.pid,
            "started_at": request.started_at,
            "process_start": request.process_start,
            "flavor": request.flavor,
            "gap_ms": request.gap_ms,
            "ttl_ms": request.ttl_ms,
            "sid": request.sid,
            "reply_to": request.reply_to,
            "claimed_at": request.claimed_at,
        }
    )


_FIELDS: dict[str, tuple[type, ...]] = {
    "req": (str,),
    "pid": (int,),
    "started_at": (int,),
    "process_start": (int, float, type(None)),
    "flavor": (str,),
    "gap_ms": (int,),
    "ttl_ms": (int,),
    "sid": (str, type(None)),
    "reply_to": (str, type(None)),
    "claimed_at": (int, type(None)),
}
"""Each field of a request and the JSON types it may have (anything else: the request is unreadable)."""


def decode(raw: Any) -> WakeRequest | None:
    """The request, or None when it is not exactly a request this module writes."""
    try:
        doc = loads(raw)
    except Exception:  # noqa: BLE001 - a malformed entry is unreadable, never a crash
        return None
    if not isinstance(doc, dict) or set(doc) != set(_FIELDS):
        return None
    for name, types in _FIELDS.items():
        value = doc[name]
        if isinstance(value, bool) or not isinstance(value, types):
            return None
    if not HEX16.match(doc["req"]) or doc["pid"] <= 0 or doc["flavor"] not in ("codex", "other"):
        return None
    return WakeRequest(**doc)


class Wakes:
    """The :class:`~oxtail_core.protocols.WakeRelay` methods of one team's namespace."""

    def __init__(self, conn: Connection, keys: Keys) -> None:
        self._conn = conn
        self._keys = keys
        folder = resources.files("oxtail_redis.scripts")
        self._enqueue = conn.client.register_script(folder.joinpath("wake_enqueue.lua").read_text("utf-8"))
        self._groups: set[str] = set()

    def _lease(self, host: str) -> str:
        return self._keys.hashed("relay", host)

    def _stream(self, host: str) -> str:
        return self._keys.hashed("wake", host)

    def _k(self, kind: str, req: str) -> str:
        return self._keys.key(f"{kind}:{_req(req)}")

    # The sender ----------------------------------------------------------------------------------
    def enqueue(self, host: str, request: WakeRequest) -> bool:
        keys = [self._lease(host), self._stream(host), self._k("wreq", request.req)]
        return bool(self._enqueue(keys=keys, args=[SLOT_TTL_MS, encode(request), STREAM_MAX]) == 1)

    def outcome(self, req: str) -> WakeReport | None:
        raw = self._conn.client.get(self._k("wres", req))
        if raw is None:
            return None
        try:
            doc = loads(raw)
            outcome, reason = doc["outcome"], doc["reason"]
        except Exception:  # noqa: BLE001 - an unreadable report is no report
            return None
        if outcome not in RELAY_OUTCOMES or not isinstance(reason, str):
            return None
        return WakeReport(outcome, reason)

    def wait(self, req: str, timeout_s: float) -> bool:
        """BLPOP on the report's list (it consumes the signal; the report itself stays readable).
        A failure reads as "nothing yet" after a short pause, so a caller's poll never spins."""
        try:
            if timeout_s <= 0:
                return bool(self._conn.client.exists(self._k("wres", req)))
            slice_s = min(timeout_s, BLOCK_SLICE_S)
            return self._conn.blocking.blpop([self._k("wout", req)], timeout=slice_s) is not None
        except redis.RedisError:
            time.sleep(min(max(timeout_s, 0), 0.1))
            return False

    def withdraw(self, req: str) -> bool:
        key = self._k("wclaim", req)
        if self._conn.client.set(key, WITHDRAWN, nx=True, px=SLOT_TTL_MS):
            return True
        return bool(self._conn.client.get(key) == WITHDRAWN)  # a replayed SET that had won

    # The relay -----------------------------------------------------------------------------------
    def next(self, host: str, consumer: str, timeout_s: float) -> list[WakeDelivery]:
        stream = self._stream(host)
        self._ensure_group(stream)
        self._conn.client.set(self._lease(host), consumer, px=RELAY_LEASE_MS)
        try:
            return self._read(stream, consumer, timeout_s)
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._groups.discard(stream)  # the stream was deleted: make the group again
            self._ensure_group(stream)
            return self._read(stream, consumer, timeout_s)

    def _ensure_group(self, stream: str) -> None:
        if stream in self._groups:
            return
        try:
            self._conn.client.xgroup_create(stream, GROUP, id="$", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._groups.add(stream)

    def _read(self, stream: str, consumer: str, timeout_s: float) -> list[WakeDelivery]:
        client = self._conn.client
        taken = client.xautoclaim(stream, GROUP, consumer, TAKEOVER_IDLE_MS, "0-0", count=BATCH)[1]
        entries: list[tuple[Any, Any, bool]] = [(eid, fields, True) for eid, fields in taken if fields]
        if not entries:
            block = None if timeout_s <= 0 else max(1, int(min(timeout_s, BLOCK_SLICE_S) * 1000))
            reader = client if block is None else self._conn.blocking
            got = reader.xreadgroup(GROUP, consumer, {stream: ">"}, count=BATCH, block=block)
            entries = [(eid, fields, False) for _, items in got or [] for eid, fields in items]
        if not entries:
            return []
        seconds, micros = client.time()
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        return [
            WakeDelivery(
                entry_id=eid.decode(),
                request=decode((fields or {}).get(b"r", b"")),
                age_ms=now_ms - int(eid.split(b"-")[0]),
                taken_over=over,
            )
            for eid, fields, over in entries
        ]

    def claim(self, req: str, consumer: str) -> ClaimResult:
        key = self._k("wclaim", req)
        mine = f"relay:{consumer}".encode()
        if self._conn.client.set(key, mine, nx=True, px=SLOT_TTL_MS):
            return "won"
        holder = self._conn.client.get(key)
        if holder == mine:
            return "won"  # a replayed SET that had won
        return "withdrawn" if holder == WITHDRAWN else "held"

    def report(self, req: str, report: WakeReport) -> None:
        pipe = self._conn.client.pipeline(transaction=True)
        doc = dumps({"outcome": report.outcome, "reason": report.reason})
        pipe.set(self._k("wres", req), doc, nx=True, px=SLOT_TTL_MS)
        pipe.lpush(self._k("wout", req), 1)
        pipe.pexpire(self._k("wout", req), SLOT_TTL_MS)
        pipe.execute()

    def ack(self, host: str, entry_id: str) -> None:
        self._conn.client.xack(self._stream(host), GROUP, entry_id)

    def prune(self, host: str, idle_ms: int, *, only: str | None = None) -> int:
        """Drop the host group's consumers that hold nothing pending and have not read for
        ``idle_ms`` (``only``: just that one, at any idle time); returns how many went.

        A relay that stopped, or was killed, leaves its name in the group; a live relay reads twice
        a second, so it is never idle that long. One with pending requests is kept: deleting a
        consumer deletes its pending entries, which a takeover must still find.
        """
        stream = self._stream(host)
        try:
            consumers = self._conn.client.xinfo_consumers(stream, GROUP)
        except redis.ResponseError:
            return 0  # no stream or no group yet: nothing to prune
        gone = 0
        for consumer in consumers:
            name = consumer["name"].decode() if isinstance(consumer["name"], bytes) else str(consumer["name"])
            if only is not None and name != only:
                continue
            if int(consumer["pending"]) == 0 and (only is not None or int(consumer["idle"]) >= idle_ms):
                gone += int(self._conn.client.xgroup_delconsumer(stream, GROUP, name) == 0)
        return gone
