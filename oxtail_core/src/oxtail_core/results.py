"""The outcomes of the four messaging operations, as plain records.

Each outcome is a frozen record and nothing more: the Python API hands these
to its caller, and the MCP adapter renders them to the reference's response
objects (``oxtail_mcp.server.responses``), so a wire shape has one home.
"""

from __future__ import annotations

import attrs

from oxtail_core.model import Envelope, WakeOutcome, WakeStatus
from oxtail_core.protocols import Batch
from oxtail_core.routing import Unresolved


@attrs.frozen
class Refused:
    """An operation that did nothing, with the reference's error code and explanation."""

    error: str
    message: str


@attrs.frozen
class Sent:
    """send_message delivered a message (``wake`` says what became of the wake)."""

    message_id: str
    target_session_id: str | None
    target_server_pid: int
    wake: WakeOutcome = WakeOutcome()


@attrs.frozen
class NotSent:
    """send_message could not resolve its target; nothing was delivered."""

    unresolved: Unresolved
    wake: WakeOutcome = WakeOutcome()


@attrs.frozen
class Replied:
    """reply_to_message delivered a reply to the sender of ``in_reply_to``."""

    message_id: str
    in_reply_to: str
    target_session_id: str | None
    target_server_pid: int
    correlated: bool
    wake: WakeOutcome = WakeOutcome()


@attrs.frozen
class NotReplied:
    """reply_to_message found the message but not a live sender to reply to."""

    unresolved: Unresolved
    in_reply_to: str
    original_from_session_id: str
    wake: WakeOutcome = WakeOutcome()


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


@attrs.frozen
class NotAsked:
    """ask_peer could not resolve its target; nothing was delivered."""

    unresolved: Unresolved


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
