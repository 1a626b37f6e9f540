"""The one place where records meet their JSON shapes.

Field names, key order, omission of absent optional fields and integer
timestamps all follow the reference's wire format, because hooks, prompts and
byte budgets written for it read these shapes literally. A malformed input
raises :class:`ShapeError` naming the offending field.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeGuard

import attrs

from oxtail_core.foreign import ForeignEntry
from oxtail_core.ids import HEX16
from oxtail_core.model import (
    CLIENT_TYPES,
    OBLIGATION_STATES,
    RECEIPT_VIAS,
    SCHEMA_VERSION,
    SESSION_ID_SOURCES,
    ActivityMarker,
    Ancestor,
    Capabilities,
    ClaimRecord,
    ClientInfo,
    ClientType,
    Envelope,
    LedgerRecord,
    Obligation,
    OutboxRecord,
    PendingAsk,
    PendingWake,
    Receipt,
    RegistryEntry,
    SessionIdSource,
    StateCard,
)
from oxtail_core.wire import WireError, dumps, loads, utf8len

_ENVELOPE_OPTIONAL = ("from_session_id", "request_id", "reply_to", "source_message_id", "operator_source")
_CAPABILITIES = tuple(field.name for field in attrs.fields(Capabilities))
_HOST_FIELDS = ("host_id", "host_name", "project_id")
"""Ours, for entries on a store shared by several machines; written only when set."""


class ShapeError(ValueError):
    """A JSON value that does not have the shape of the record it claims to be."""


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _opt_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ShapeError(f"{key!r} must be a string or null")
    return value


def _unstructure_envelope(env: Envelope) -> dict[str, Any]:
    out: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "id": env.id, "body": env.body}
    if env.enqueued_at is not None:
        out["enqueued_at"] = env.enqueued_at
    out["body_bytes"] = env.body_bytes if env.body_bytes is not None else utf8len(env.body)
    out["origin"] = env.origin
    for key in _ENVELOPE_OPTIONAL:
        value = getattr(env, key)
        if value:
            out[key] = value
    if env.action_required:
        out["action_required"] = True
    return out


def _structure_envelope(data: Any, _: type) -> Envelope:
    if not isinstance(data, dict):
        raise ShapeError("a message must be a JSON object")
    version = data.get("schema_version")
    if not _is_int(version) or version != SCHEMA_VERSION:
        raise ShapeError("'schema_version' must be the number 1")
    if not isinstance(data.get("id"), str) or not data["id"]:
        raise ShapeError("'id' must be a non-empty string")
    if not isinstance(data.get("body"), str):
        raise ShapeError("'body' must be a string")
    enqueued_at = data.get("enqueued_at")
    body_bytes = data.get("body_bytes")
    origin = data.get("origin", "peer")
    return Envelope(
        id=data["id"],
        body=data["body"],
        enqueued_at=enqueued_at if _is_int(enqueued_at) else None,
        body_bytes=body_bytes if _is_int(body_bytes) else None,
        origin=origin if isinstance(origin, str) else "peer",
        action_required=data.get("action_required") is True,
        **{key: _opt_str(data, key) for key in _ENVELOPE_OPTIONAL},
    )


def _unstructure_client(c: ClientInfo) -> dict[str, Any]:
    return {
        "type": c.type,
        "session_id": c.session_id,
        "transcript_path": c.transcript_path,
        "session_id_source": c.session_id_source,
        "cwd": c.cwd,
    }


def _structure_client(data: Any, _: type) -> ClientInfo:
    if not isinstance(data, dict):
        raise ShapeError("'client' must be an object")
    raw_type = data.get("type")
    ctype: ClientType = raw_type if raw_type in CLIENT_TYPES else "unknown"
    raw_source = data.get("session_id_source")
    source: SessionIdSource | None = raw_source if raw_source in SESSION_ID_SOURCES else None
    cwd = data.get("cwd")
    return ClientInfo(
        type=ctype,
        session_id=_opt_str(data, "session_id"),
        transcript_path=_opt_str(data, "transcript_path"),
        session_id_source=source,
        cwd=cwd if isinstance(cwd, str) else "",
    )


def _unstructure_state(s: StateCard | None) -> dict[str, Any] | None:
    return None if s is None else {"purpose": s.purpose, "updated_at": s.updated_at}


def _structure_state_card(data: Any, _: type) -> StateCard:
    if not isinstance(data, dict):
        raise ShapeError("a state card must be an object")
    updated = data.get("updated_at")
    purpose = data.get("purpose")
    return StateCard(
        purpose=purpose if isinstance(purpose, str) else None,
        updated_at=updated if isinstance(updated, int) and not isinstance(updated, bool) else 0,
    )


def _structure_state(data: Any) -> StateCard | None:
    """A registry entry's ``state``: anything but an object reads as no card (old entries have none)."""
    return _structure_state_card(data, StateCard) if isinstance(data, dict) else None


def _unstructure_entry(e: RegistryEntry) -> dict[str, Any]:
    out: dict[str, Any] = {
        "server_pid": e.server_pid,
        "started_at": e.started_at,
        "client": _unstructure_client(e.client),
        "tmux_pane": e.tmux_pane,
        "tmux_session": e.tmux_session,
        "state": _unstructure_state(e.state),
    }
    if e.capabilities is not None:
        out["capabilities"] = {"mailbox": attrs.asdict(e.capabilities)}
    if e.process_start is not None:
        out["process_start"] = e.process_start
    if e.client_pid is not None:
        out["client_pid"] = e.client_pid
        if e.client_start is not None:
            out["client_start"] = e.client_start
    for name in _HOST_FIELDS:  # only when set: a one-machine entry keeps the shape it always had
        value = getattr(e, name)
        if value is not None:
            out[name] = value
    return out


def _structure_entry(data: Any, _: type) -> RegistryEntry:
    if not isinstance(data, dict):
        raise ShapeError("a registry entry must be an object")
    pid = data.get("server_pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        raise ShapeError("'server_pid' must be a positive integer")
    started = data.get("started_at")
    if not isinstance(started, int) or isinstance(started, bool):
        raise ShapeError("'started_at' must be an integer")
    if "client" not in data:
        raise ShapeError("'client' is missing")
    caps = data.get("capabilities")
    capabilities = None
    if isinstance(caps, dict) and isinstance(caps.get("mailbox"), dict):
        mailbox = caps["mailbox"]
        capabilities = Capabilities(**{name: mailbox.get(name) is True for name in _CAPABILITIES})
    proc = data.get("process_start")
    client_pid, client_start = data.get("client_pid"), data.get("client_start")
    return RegistryEntry(
        server_pid=pid,
        started_at=started,
        client=_structure_client(data["client"], ClientInfo),
        tmux_pane=_opt_str(data, "tmux_pane"),
        tmux_session=_opt_str(data, "tmux_session"),
        state=_structure_state(data.get("state")),
        capabilities=capabilities,
        process_start=_opt_float(proc),
        client_pid=client_pid if _is_int(client_pid) and client_pid > 0 else None,
        client_start=_opt_float(client_start),
        host_id=_opt_str(data, "host_id"),
        host_name=_opt_str(data, "host_name"),
        project_id=_opt_str(data, "project_id"),
    )


def _opt_float(value: Any) -> float | None:
    """A JSON number as a float; anything else (a bool included) reads as absent."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


_REFERENCE_KEYS = ("proc_sig", "mailbox_key")
"""Keys only the reference (0.16+) writes in a registry entry; ``process_start`` is only ours."""


def legacy_entry_from_wire(data: Any) -> RegistryEntry:
    """An entry found in the reference's registry directory (``sessions/``): whose is it?

    ======================================================  ====================================
    the entry has                                           it is
    ======================================================  ====================================
    a numeric ``process_start`` and no ``proc_sig`` /       ours, written before we moved to
    ``mailbox_key``                                         ``registry/``: a RegistryEntry
    anything else (0.15 writes none of the three, 0.16+     the reference's: a ForeignEntry,
    writes ``proc_sig``, 0.17+ ``mailbox_key``)             never sent to
    ======================================================  ====================================

    Raises ShapeError like ``from_wire(data, RegistryEntry)``.
    """
    entry = _structure_entry(data, RegistryEntry)
    if entry.process_start is not None and not any(key in data for key in _REFERENCE_KEYS):
        return entry
    return ForeignEntry(**{field.name: getattr(entry, field.name) for field in attrs.fields(RegistryEntry)})


def _unstructure_pending(p: PendingAsk) -> dict[str, Any]:
    """0.32.1's body (``target`` is the awaited peer); ``attempts`` and ``lastRepokeAt`` always present."""
    out: dict[str, Any] = {"sessionId": p.requester, "requestId": p.request_id, "at": p.at_ms}
    if p.peer:
        out["target"] = p.peer
    if p.message_id:
        out["messageId"] = p.message_id
    if p.owner_epoch is not None:
        out["ownerEpoch"] = p.owner_epoch
    out["attempts"] = p.attempts
    out["lastRepokeAt"] = p.last_repoke_at
    return out


def _structure_pending(data: Any, _: type) -> PendingAsk:
    """Also reads our 0.2.0 records (``peerSessionId``) and 0.15.0's (no target at all)."""
    if not isinstance(data, dict):
        raise ShapeError("a pending ask must be an object")
    attempts = data.get("attempts")
    epoch = data.get("ownerEpoch")
    repoked = data.get("lastRepokeAt")
    try:
        return PendingAsk(
            requester=data["sessionId"],
            request_id=data["requestId"],
            at_ms=data["at"],
            peer=_opt_str(data, "target") or _opt_str(data, "peerSessionId"),
            message_id=_opt_str(data, "messageId"),
            owner_epoch=epoch if _is_int(epoch) else None,
            attempts=attempts if _is_int(attempts) and attempts >= 0 else 0,
            last_repoke_at=repoked if _is_int(repoked) else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ShapeError(f"bad pending ask: {exc}") from exc


def _unstructure_wake(w: PendingWake) -> dict[str, Any]:
    """0.31's body, in its key order."""
    return {
        "recipientSessionId": w.recipient,
        "messageId": w.message_id,
        "senderSessionId": w.sender,
        "sentAt": w.sent_at_ms,
        "attempts": w.attempts,
        "lastAttemptAt": w.last_attempt_at,
    }


def _structure_wake(data: Any, _: type) -> PendingWake:
    """Both ids are required; ``attempts`` that is not a non-negative integer reads as 0 (selfheal §1.1)."""
    if not isinstance(data, dict):
        raise ShapeError("a pending wake must be an object")
    attempts, last, sent = data.get("attempts"), data.get("lastAttemptAt"), data.get("sentAt")
    try:
        return PendingWake(
            recipient=data["recipientSessionId"],
            message_id=data["messageId"],
            sender=_opt_str(data, "senderSessionId"),
            sent_at_ms=sent if _is_int(sent) else 0,
            attempts=attempts if _is_int(attempts) and attempts >= 0 else 0,
            last_attempt_at=last if _is_int(last) else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ShapeError(f"bad pending wake: {exc}") from exc


def _unstructure_obligation(o: Obligation) -> dict[str, Any]:
    return {"state": o.state, "at": o.at, "note": o.note}


def _structure_obligation(data: Any, _: type) -> Obligation:
    if not isinstance(data, dict) or data.get("state") not in OBLIGATION_STATES:
        raise ShapeError("an obligation outcome needs 'state' done or blocked")
    at, note = data.get("at"), data.get("note")
    note = note if isinstance(note, str) else ""
    return Obligation(state=data["state"], at=at if _is_int(at) else 0, note=note)


def _unstructure_ledger(r: LedgerRecord) -> dict[str, Any]:
    """The envelope as built, plus, once closed, a trailing ``obligation`` (accounting.md §1.4)."""
    out = _unstructure_envelope(r.envelope)
    if r.obligation is not None:
        out["obligation"] = _unstructure_obligation(r.obligation)
    return out


def _structure_ledger(data: Any, _: type) -> LedgerRecord:
    """A record iff the envelope parses; an ``obligation`` key of any shape means closed (never reopen)."""
    envelope = _structure_envelope(data, Envelope)
    raw = data.get("obligation")
    if raw is None:
        return LedgerRecord(envelope)
    try:
        outcome = _structure_obligation(raw, Obligation)
    except ShapeError:
        outcome = Obligation(state="done", at=0, note="")
    return LedgerRecord(envelope, outcome)


def _unstructure_receipt(r: Receipt) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "message_id": r.message_id,
        "delivered_at": r.delivered_at,
        "via": r.via,
        "recipient_session_id": r.recipient_session_id,
    }


def _structure_receipt(data: Any, _: type) -> Receipt:
    """Valid only with ``schema_version`` 1 and a hex16 ``message_id`` (the caller matches it to the file)."""
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        raise ShapeError("a receipt needs schema_version 1")
    message_id, at, via = data.get("message_id"), data.get("delivered_at"), data.get("via")
    if not isinstance(message_id, str) or not HEX16.match(message_id):
        raise ShapeError("a receipt needs a hex16 'message_id'")
    return Receipt(
        message_id=message_id,
        delivered_at=at if _is_int(at) else 0,
        via=via if via in RECEIPT_VIAS else "read_my_messages",
        recipient_session_id=_opt_str(data, "recipient_session_id"),
    )


def _unstructure_outbox(o: OutboxRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "message_id": o.message_id,
        "enqueued_at": o.enqueued_at,
        "target_session_id": o.target_session_id,
        "target_server_pid": o.target_server_pid,
        "from_session_id": o.from_session_id,
    }
    if o.target_started_at is not None:
        out["target_started_at"] = o.target_started_at
    return out


def _structure_outbox(data: Any, _: type) -> OutboxRecord:
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        raise ShapeError("an outbox record needs schema_version 1")
    message_id, pid = data.get("message_id"), data.get("target_server_pid")
    if not isinstance(message_id, str) or not HEX16.match(message_id) or not _is_int(pid):
        raise ShapeError("an outbox record needs a hex16 'message_id' and an integer 'target_server_pid'")
    enqueued, started = data.get("enqueued_at"), data.get("target_started_at")
    return OutboxRecord(
        message_id=message_id,
        enqueued_at=enqueued if _is_int(enqueued) else None,
        target_session_id=_opt_str(data, "target_session_id"),
        target_server_pid=pid,
        from_session_id=_opt_str(data, "from_session_id"),
        target_started_at=started if _is_int(started) else None,
    )


def _unstructure_activity(a: ActivityMarker) -> dict[str, Any]:
    return {"status": a.status, "at": a.at_ms}


def _structure_activity(data: Any, _: type) -> ActivityMarker:
    if not isinstance(data, dict) or not isinstance(data.get("status"), str) or not _is_int(data.get("at")):
        raise ShapeError("an activity marker needs a string 'status' and an integer 'at'")
    return ActivityMarker(status=data["status"].strip(), at_ms=data["at"])


def _unstructure_claim(c: ClaimRecord) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "client_type": c.client_type,
        "cwd": c.cwd,
        "ancestors": [{"pid": a.pid, "sig": a.sig} for a in c.ancestors],
        "session_id": c.session_id,
        "transcript_path": c.transcript_path,
        "claimed_at": c.claimed_at,
        "server_pid": c.server_pid,
    }


def _finite(value: object) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return value


def _structure_ancestors(value: object) -> tuple[Ancestor, ...]:
    """The well-formed ``{pid, sig}`` items, in order; a malformed item is dropped, not fatal."""
    if not isinstance(value, list):
        raise ShapeError("'ancestors' must be an array")
    out: list[Ancestor] = []
    for item in value:
        pid = _finite(item.get("pid")) if isinstance(item, dict) else None
        if pid is not None and pid == int(pid) and isinstance(item.get("sig"), str):
            out.append(Ancestor(int(pid), item["sig"]))
    return tuple(out)


def _structure_claim(data: Any, _: type) -> ClaimRecord:
    """A claim as any writer left it: ``schema_version`` is not checked, a missing ``server_pid`` is 0."""
    if not isinstance(data, dict):
        raise ShapeError("a claim must be an object")
    for key in ("client_type", "cwd", "session_id"):
        if not isinstance(data.get(key), str):
            raise ShapeError(f"{key!r} must be a string")
    claimed_at = _finite(data.get("claimed_at"))
    if claimed_at is None:
        raise ShapeError("'claimed_at' must be a finite number")
    server_pid = _finite(data.get("server_pid"))
    return ClaimRecord(
        client_type=data["client_type"],
        cwd=data["cwd"],
        ancestors=_structure_ancestors(data.get("ancestors")),
        session_id=data["session_id"],
        transcript_path=_opt_str(data, "transcript_path"),
        claimed_at=claimed_at,
        server_pid=int(server_pid) if server_pid is not None else 0,
    )


# The codecs, one pair per stored record. Hand-written because every shape is
# the reference's (names, order, omissions, tolerance of old files); a generic
# converter would only wrap these, so there is none.
_UNSTRUCTURE: dict[type[Any], Callable[[Any], Any]] = {
    Envelope: _unstructure_envelope,
    ClientInfo: _unstructure_client,
    RegistryEntry: _unstructure_entry,
    ForeignEntry: _unstructure_entry,  # listed like any peer; never written by us
    PendingAsk: _unstructure_pending,
    PendingWake: _unstructure_wake,
    ActivityMarker: _unstructure_activity,
    ClaimRecord: _unstructure_claim,
    StateCard: _unstructure_state,
    Obligation: _unstructure_obligation,
    LedgerRecord: _unstructure_ledger,
    Receipt: _unstructure_receipt,
    OutboxRecord: _unstructure_outbox,
}
_STRUCTURE: dict[type[Any], Callable[[Any, type[Any]], Any]] = {
    Envelope: _structure_envelope,
    ClientInfo: _structure_client,
    RegistryEntry: _structure_entry,
    PendingAsk: _structure_pending,
    PendingWake: _structure_wake,
    ActivityMarker: _structure_activity,
    ClaimRecord: _structure_claim,
    StateCard: _structure_state_card,
    Obligation: _structure_obligation,
    LedgerRecord: _structure_ledger,
    Receipt: _structure_receipt,
    OutboxRecord: _structure_outbox,
}


def envelope_to_line(env: Envelope) -> str:
    """The mailbox line of ``env``: compact JSON in the fixed key order, with a trailing newline."""
    return dumps(_unstructure_envelope(env)) + "\n"


def line_size(env: Envelope) -> int:
    """UTF-8 bytes of ``env``'s stored line, newline included: what an inbox's cap counts."""
    return utf8len(envelope_to_line(env))


def metadata_size(env: Envelope) -> int:
    """UTF-8 bytes ``env`` renders beyond its body's budgeted size: ids, metadata, JSON framing and
    escapes. What the read budgets count beside the bodies (limits.READ_METADATA_MAX_BYTES)."""
    return max(0, utf8len(envelope_to_line(env)) - 1 - env.size)


def envelope_from_line(line: str | bytes) -> Envelope:
    """Parse one mailbox line; raises ShapeError (or WireError) for anything that is not a message."""
    try:
        data = loads(line)
    except WireError as exc:
        raise ShapeError(f"not JSON: {exc}") from exc
    return _structure_envelope(data, Envelope)


def to_wire(record: object) -> Any:
    """The JSON-ready value of a core record; a type without a codec above is a bug (TypeError)."""
    unstructure = _UNSTRUCTURE.get(type(record))
    if unstructure is None:
        raise TypeError(f"no wire shape for {type(record).__name__}")
    return unstructure(record)


def from_wire(data: Any, cls: type[Any]) -> Any:
    """Build a record of ``cls`` from a parsed JSON value; raises ShapeError on a bad shape."""
    structure = _STRUCTURE.get(cls)
    if structure is None:
        raise TypeError(f"no wire shape for {cls.__name__}")
    try:
        return structure(data, cls)
    except ShapeError:
        raise
    except (TypeError, ValueError) as exc:
        raise ShapeError(str(exc)) from exc
