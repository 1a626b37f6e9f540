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

from oxtail_core import texts
from oxtail_core.claims import SessionHeld
from oxtail_core.convert import to_wire
from oxtail_core.errors import ErrorCode
from oxtail_core.model import SCHEMA_VERSION, WakeOutcome, WakeStatus
from oxtail_core.results import (
    Asked,
    Closed,
    Messages,
    MessageStatus,
    NotAsked,
    NotReplied,
    NotSent,
    OpenWork,
    Refused,
    Replied,
    RequesterUnreachable,
    Sent,
)
from oxtail_core.routing import Unresolved


def _wake_fields(out: dict[str, Any], wake: WakeOutcome) -> dict[str, Any]:
    """``wake_status``, ``wake_reason``, then (only on the plain seam) ``delivery_outlook`` and ``hint``."""
    if wake.status is not None:
        out["wake_status"] = wake.status.value
    if wake.reason is not None:
        out["wake_reason"] = wake.reason.value
    if wake.outlook is not None:
        out["delivery_outlook"] = wake.outlook.value
        out["hint"] = texts.OUTLOOK_HINTS[wake.outlook]
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


def session_held(exc: SessionHeld) -> dict[str, Any]:
    """A refused claim: where the session is held (a refusal, answered as a tool result, not an error)."""
    holder = exc.holder
    return {
        "schema_version": SCHEMA_VERSION,
        "ok": False,
        "error": ErrorCode.SESSION_HELD.value,
        "message": str(exc),
        "held_by": {
            "server_pid": holder.server_pid,
            "client_pid": holder.client_pid,
            "tmux_session": holder.tmux_session,
            "client_type": holder.client_type,
        },
    }


def _sent(r: Sent) -> dict[str, Any]:
    out = {
        "schema_version": SCHEMA_VERSION,
        "ok": True,
        "message_id": r.message_id,
        "target_session_id": r.target_session_id,
        "target_server_pid": r.target_server_pid,
    }
    if r.action_required:
        out["action_required"] = True
        out["obligation_durable"] = r.obligation_durable
    if r.bootstrap:
        out["bootstrap"] = True
    if r.note is not None:
        out["note"] = r.note
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
    if any(m.origin == "operator" for m in r.messages):
        out["operator_message_hint"] = texts.OPERATOR_MESSAGE_HINT
    if r.deferred:
        out["deferred_count"] = r.deferred
        out["budget_truncated"] = True
    if r.skipped:
        out["mailboxes_skipped"] = r.skipped
    if r.open_work > 0:
        out["open_work_count"] = r.open_work
        out["open_work_hint"] = texts.open_work_hint(r.open_work)
    return out


def _message_status(r: MessageStatus) -> dict[str, Any]:
    out: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "ok": True, "message_id": r.message_id}
    out["status"] = r.status
    if r.status == "delivered" and r.receipt is not None:
        out["delivered_at"] = r.receipt.delivered_at
        out["via"] = r.receipt.via
        out["recipient_session_id"] = r.receipt.recipient_session_id
    elif r.outbox is not None:
        out["enqueued_at"] = r.outbox.enqueued_at
        out["target_session_id"] = r.outbox.target_session_id
        if r.status == "pending":
            out["target_server_pid"] = r.outbox.target_server_pid
        else:
            out["note"] = texts.STATUS_UNKNOWN_WITH_OUTBOX
    else:
        out["note"] = texts.STATUS_UNKNOWN
    return out


def _open_work(r: OpenWork) -> dict[str, Any]:
    items = [
        {
            "message_id": m.id,
            "from_session_id": m.from_session_id,
            "request_id": m.request_id,
            "body": m.body,
            "enqueued_at": m.enqueued_at,
            "age_seconds": max(0, r.now_s - (m.enqueued_at or r.now_s)),
            "state": "open",
            "required_action": texts.required_action(m.id),
        }
        for m in r.items
    ]
    out: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "ok": True, "count": len(items), "open": items}
    if r.deferred:
        out["deferred_count"] = r.deferred
        out["budget_truncated"] = True
    return out


def _closed(r: Closed) -> dict[str, Any]:
    """Key order of accounting.md §3.5 for every path; each path sets only its own keys."""
    out: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "ok": True,
        "message_id": r.message_id,
        "obligation_state": r.state,
    }
    if r.completion_message_id is not None:
        out["completion_message_id"] = r.completion_message_id
        out["requester_session_id"] = r.requester_session_id
    if r.correlated is not None:
        out["correlation"] = "correlated" if r.correlated else "uncorrelated"
    if r.already_closed:
        out["already_closed"] = True
    if r.already_delivered:
        out["already_delivered"] = True
    if r.note is not None:
        out["note"] = r.note
    return _wake_fields(out, r.wake)


def _requester_unreachable(r: RequesterUnreachable) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "ok": False,
        "error": ErrorCode.REQUESTER_UNREACHABLE.value,
        "requester_error": r.requester_error,
        "message": texts.requester_unreachable(r.requester_session_id),
    }


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
    MessageStatus: _message_status,
    OpenWork: _open_work,
    Closed: _closed,
    RequesterUnreachable: _requester_unreachable,
}


def render(result: object) -> dict[str, Any]:
    """The MCP response object of a core result; a type missing from :data:`RESPONSES` is a bug (KeyError)."""
    return RESPONSES[type(result)](result)
