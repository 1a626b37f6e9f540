"""The MCP response object of each core result: one unstructure function per record type.

The core returns records (:mod:`oxtail_core.results`); what a tool answers on
the wire is the adapter's business, so the shapes live here, as a table keyed
by type. Keys follow the reference's names and order, optional keys are
omitted rather than null (except the fields documented as nullable), and every
response carries :data:`SCHEMA_VERSION`: hooks and prompts written for the
reference read these objects literally.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from oxtail_core.convert import to_wire
from oxtail_core.errors import ErrorCode
from oxtail_core.model import SCHEMA_VERSION, WakeOutcome, WakeStatus
from oxtail_core.results import Asked, Messages, NotAsked, NotReplied, NotSent, Refused, Replied, Sent
from oxtail_core.routing import Unresolved


def _wake_fields(out: dict[str, Any], wake: WakeOutcome) -> dict[str, Any]:
    if wake.status is not None:
        out["wake_status"] = wake.status.value
    if wake.reason is not None:
        out["wake_reason"] = wake.reason.value
    return out


def _refusal(error: Unresolved) -> dict[str, Any]:
    out: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "ok": False, "error": error.error}
    if error.message is not None:
        out["message"] = error.message
    if error.candidates is not None:
        out["candidates"] = list(error.candidates)
        if error.note:
            out["note"] = error.note
    return out


def _refused(r: Refused) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "ok": False, "error": r.error, "message": r.message}


def _sent(r: Sent) -> dict[str, Any]:
    out = {
        "schema_version": SCHEMA_VERSION,
        "ok": True,
        "message_id": r.message_id,
        "target_session_id": r.target_session_id,
        "target_server_pid": r.target_server_pid,
    }
    return _wake_fields(out, r.wake)


def _not_sent(r: NotSent) -> dict[str, Any]:
    return _wake_fields(_refusal(r.unresolved), r.wake)


def _replied(r: Replied) -> dict[str, Any]:
    out = {
        "schema_version": SCHEMA_VERSION,
        "ok": True,
        "message_id": r.message_id,
        "in_reply_to_message_id": r.in_reply_to,
        "target_session_id": r.target_session_id,
        "target_server_pid": r.target_server_pid,
        "correlation": "correlated" if r.correlated else "uncorrelated",
    }
    return _wake_fields(out, r.wake)


def _not_replied(r: NotReplied) -> dict[str, Any]:
    out = _refusal(r.unresolved)
    out["in_reply_to_message_id"] = r.in_reply_to
    out["original_from_session_id"] = r.original_from_session_id
    return _wake_fields(out, r.wake)


def _messages(r: Messages) -> dict[str, Any]:
    out: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "ok": True,
        "drained": True,
        "count": len(r.messages),
        "messages": [to_wire(m) for m in r.messages],
    }
    if r.deferred:
        out["deferred_count"] = r.deferred
        out["budget_truncated"] = True
    if r.skipped:
        out["mailboxes_skipped"] = r.skipped
    return out


def _asked(r: Asked) -> dict[str, Any]:
    reply = None
    if r.reply is not None:
        reply = {
            "id": r.reply.id,
            "body": r.reply.body,
            "enqueued_at": r.reply.enqueued_at,
            "from_session_id": r.reply.from_session_id,
            "reply_to": r.reply.reply_to,
            "correlation": r.correlation,
        }
    out: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "ok": True,
        "message_id": r.message_id,
        "request_id": r.request_id,
        "wake_status": r.wake_status.value,
        "reply": reply,
        "correlation": r.correlation,
        "timeout_ms": r.timeout_ms,
    }
    if r.clamped_from_ms is not None:
        out["timeout_clamped_from_ms"] = r.clamped_from_ms
    out["timed_out"] = r.timed_out
    return out


def _not_asked(r: NotAsked) -> dict[str, Any]:
    out = _refusal(r.unresolved)
    if r.unresolved.error == ErrorCode.TARGET_NOT_FOUND:
        out["wake_status"] = WakeStatus.SKIPPED_NO_TARGET.value
    return out


RESPONSES: dict[type, Callable[[Any], dict[str, Any]]] = {
    Refused: _refused,
    Sent: _sent,
    NotSent: _not_sent,
    Replied: _replied,
    NotReplied: _not_replied,
    Messages: _messages,
    Asked: _asked,
    NotAsked: _not_asked,
}


def render(result: object) -> dict[str, Any]:
    """The MCP response object of a core result; a type missing from :data:`RESPONSES` is a bug (KeyError)."""
    return RESPONSES[type(result)](result)
