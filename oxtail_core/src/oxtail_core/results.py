"""The outcomes of the four messaging operations, and their exact wire shapes.

Each outcome is a frozen record; ``to_wire`` gives the response object with
the reference's keys in the reference's order, optional keys omitted rather
than null (except the fields documented as nullable).
"""

from __future__ import annotations

from typing import Any

import attrs

from oxtail_core.convert import to_wire
from oxtail_core.errors import ErrorCode
from oxtail_core.model import SCHEMA_VERSION, Envelope, WakeOutcome, WakeStatus
from oxtail_core.protocols import Batch
from oxtail_core.routing import Unresolved


def _wake_fields(out: dict[str, Any], wake: WakeOutcome) -> dict[str, Any]:
    if wake.status is not None:
        out["wake_status"] = wake.status.value
    if wake.reason is not None:
        out["wake_reason"] = wake.reason.value
    return out


def _refusal(error: Unresolved) -> dict[str, Any]:
    out: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "ok": False, "error": error.error}
    if error.candidates is not None:
        out["candidates"] = list(error.candidates)
        if error.note:
            out["note"] = error.note
    return out


@attrs.frozen
class Refused:
    """An operation that did nothing, with the reference's error code and explanation."""

    error: str
    message: str

    def to_wire(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "ok": False, "error": self.error, "message": self.message}


@attrs.frozen
class Sent:
    """send_message delivered a message (``wake`` says what became of the wake)."""

    message_id: str
    target_session_id: str | None
    target_server_pid: int
    wake: WakeOutcome = WakeOutcome()

    def to_wire(self) -> dict[str, Any]:
        out = {
            "schema_version": SCHEMA_VERSION,
            "ok": True,
            "message_id": self.message_id,
            "target_session_id": self.target_session_id,
            "target_server_pid": self.target_server_pid,
        }
        return _wake_fields(out, self.wake)


@attrs.frozen
class NotSent:
    """send_message could not resolve its target; nothing was delivered."""

    unresolved: Unresolved
    wake: WakeOutcome = WakeOutcome()

    def to_wire(self) -> dict[str, Any]:
        return _wake_fields(_refusal(self.unresolved), self.wake)


@attrs.frozen
class Replied:
    """reply_to_message delivered a reply to the sender of ``in_reply_to``."""

    message_id: str
    in_reply_to: str
    target_session_id: str | None
    target_server_pid: int
    correlated: bool
    wake: WakeOutcome = WakeOutcome()

    def to_wire(self) -> dict[str, Any]:
        out = {
            "schema_version": SCHEMA_VERSION,
            "ok": True,
            "message_id": self.message_id,
            "in_reply_to_message_id": self.in_reply_to,
            "target_session_id": self.target_session_id,
            "target_server_pid": self.target_server_pid,
            "correlation": "correlated" if self.correlated else "uncorrelated",
        }
        return _wake_fields(out, self.wake)


@attrs.frozen
class NotReplied:
    """reply_to_message found the message but not a live sender to reply to."""

    unresolved: Unresolved
    in_reply_to: str
    original_from_session_id: str
    wake: WakeOutcome = WakeOutcome()

    def to_wire(self) -> dict[str, Any]:
        out = _refusal(self.unresolved)
        out["in_reply_to_message_id"] = self.in_reply_to
        out["original_from_session_id"] = self.original_from_session_id
        return _wake_fields(out, self.wake)


@attrs.frozen
class Messages:
    """What read_my_messages took out of the inbox.

    ``batch`` is in flight until settled: a server settles it once the
    response has been handed to its transport, so a crash in between
    re-delivers the same messages instead of losing them.
    """

    messages: tuple[Envelope, ...]
    deferred: int = 0
    skipped: int = 0
    batch: Batch | None = attrs.field(default=None, eq=False, repr=False)

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "ok": True,
            "drained": True,
            "count": len(self.messages),
            "messages": [to_wire(m) for m in self.messages],
        }
        if self.deferred:
            out["deferred_count"] = self.deferred
            out["budget_truncated"] = True
        if self.skipped:
            out["mailboxes_skipped"] = self.skipped
        return out


@attrs.frozen
class Asked:
    """A completed ask: the correlated reply, or a timeout that stays durable as a pending ask."""

    message_id: str
    request_id: str
    wake_status: WakeStatus
    reply: Envelope | None
    correlated: bool
    timeout_ms: float
    clamped_from_ms: float | None = None
    batch: Batch | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def timed_out(self) -> bool:
        return self.reply is None

    @property
    def correlation(self) -> str:
        if self.reply is None:
            return "none"
        return "correlated" if self.correlated else "uncorrelated"

    def to_wire(self) -> dict[str, Any]:
        reply = None
        if self.reply is not None:
            reply = {
                "id": self.reply.id,
                "body": self.reply.body,
                "enqueued_at": self.reply.enqueued_at,
                "from_session_id": self.reply.from_session_id,
                "reply_to": self.reply.reply_to,
                "correlation": self.correlation,
            }
        out: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "ok": True,
            "message_id": self.message_id,
            "request_id": self.request_id,
            "wake_status": self.wake_status.value,
            "reply": reply,
            "correlation": self.correlation,
            "timeout_ms": self.timeout_ms,
        }
        if self.clamped_from_ms is not None:
            out["timeout_clamped_from_ms"] = self.clamped_from_ms
        out["timed_out"] = self.timed_out
        return out


@attrs.frozen
class NotAsked:
    """ask_peer could not resolve its target; nothing was delivered."""

    unresolved: Unresolved

    def to_wire(self) -> dict[str, Any]:
        out = _refusal(self.unresolved)
        if self.unresolved.error == ErrorCode.TARGET_NOT_FOUND:
            out["wake_status"] = WakeStatus.SKIPPED_NO_TARGET.value
        return out


PEER_HAS_NO_SESSION_ID = Refused(
    "peer-has-no-session-id",
    "Target peer has no registered client.session_id. "
    "Ask the peer to call register_my_session before retrying ask_peer.",
)
NO_SESSION_ID = Refused(
    "no-session-id",
    "This session has not claimed a session_id, so it has no received-ledger to reply from. "
    "Call claim_session first.",
)


def message_not_found(message_id: str) -> Refused:
    return Refused(
        "message-not-found",
        f"No received message {message_id} in this session's ledger (it may have aged out of retention, "
        "or predates reply_to_message). Fall back to send_message with an explicit target.",
    )


def no_reply_target(message_id: str) -> Refused:
    return Refused(
        "no-reply-target",
        f"Inbound message {message_id} has no from_session_id, so there is no peer to reply to.",
    )
