"""The outcomes of the four messaging operations, as plain records.

Each outcome is a frozen record and nothing more: the Python API hands these
to its caller, and the MCP adapter renders them to the reference's response
objects (``oxtail_mcp.server.responses``), so a wire shape has one home.
"""

from __future__ import annotations

from typing import Literal

import attrs

from oxtail_core.limits import clip
from oxtail_core.model import (
    Envelope,
    ObligationState,
    OutboxRecord,
    Receipt,
    ReceiptVia,
    WakeOutcome,
    WakeStatus,
)
from oxtail_core.protocols import Batch
from oxtail_core.routing import Unresolved


@attrs.frozen
class Refused:
    """An operation that did nothing, with the reference's error code and explanation."""

    error: str
    message: str


@attrs.frozen
class Handoff:
    """Messages taken into flight for one reader, to be settled once they are really handed on.

    ``via`` and ``recipient`` are what the delivery receipts written at settle
    time say (:func:`oxtail_core.receipts.settle_delivered`): how the messages
    reached the agent's context, and which session (None: an unclaimed reader).
    """

    batch: Batch
    via: ReceiptVia
    recipient: str | None


@attrs.frozen
class Sent:
    """send_message delivered a message (``wake`` says what became of the wake).

    ``action_required``: the caller asked for a delegation; ``obligation_durable``
    says whether it became one (claimed, obligations-capable receiver).
    ``bootstrap``: the target is unclaimed (delivered to its process inbox).
    ``note``: the S1/S2/S3 text of accounting.md §11, when one applies.
    """

    message_id: str
    target_session_id: str | None
    target_server_pid: int
    wake: WakeOutcome = WakeOutcome()
    action_required: bool = False
    obligation_durable: bool = False
    bootstrap: bool = False
    note: str | None = None


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
    re-delivers the same messages instead of losing them. ``recipient`` is the
    reader's session id (None: unclaimed), for the receipts written at settle.
    ``open_work`` is the reader's open-obligation count, read from its ledger
    after the take (0: none, unclaimed, or the ledger could not be read).
    """

    messages: tuple[Envelope, ...]
    deferred: int = 0
    skipped: int = 0
    batch: Batch | None = attrs.field(default=None, eq=False, repr=False)
    open_work: int = 0
    recipient: str | None = None

    @property
    def handoff(self) -> Handoff | None:
        """What to settle once the response is handed on (None: nothing was taken)."""
        return None if self.batch is None else Handoff(self.batch, "read_my_messages", self.recipient)


@attrs.frozen
class Asked:
    """A completed ask: the correlated reply, or a timeout that stays durable as a pending ask.

    ``requester`` is the asker's session id (set by the Peer), for the receipt of the reply.
    """

    message_id: str
    request_id: str
    wake_status: WakeStatus
    reply: Envelope | None
    correlated: bool
    timeout_ms: float
    clamped_from_ms: float | None = None
    batch: Batch | None = attrs.field(default=None, eq=False, repr=False)
    requester: str | None = None

    @property
    def handoff(self) -> Handoff | None:
        """The reply in flight, to settle once handed on (None: timed out); receipted as an ask reply."""
        return None if self.batch is None else Handoff(self.batch, "ask_peer_reply", self.requester)

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


@attrs.frozen
class MessageStatus:
    """message_status: ``delivered`` (a receipt), ``pending`` (still in an inbox) or ``unknown``.

    ``outbox`` is the sender's record when there is one; ``receipt`` only for ``delivered``.
    """

    message_id: str
    status: Literal["delivered", "pending", "unknown"]
    receipt: Receipt | None = None
    outbox: OutboxRecord | None = None


@attrs.frozen
class OpenWork:
    """my_open_work: the open obligations shown (oldest first, budgeted) and how many were left out."""

    items: tuple[Envelope, ...]
    now_s: int
    deferred: int = 0


@attrs.frozen
class Closed:
    """complete_work / block_work succeeded (or found the obligation already closed).

    Which optional parts are set tells the path taken (accounting.md §3.5):
    ``already_closed`` with ``note`` (the fast path, N3), ``note`` alone
    (unclaimed sender, N4), ``already_delivered`` (the receipt guard, N5), or a
    delivered completion with ``correlated`` and the wake.
    """

    message_id: str
    state: ObligationState
    completion_message_id: str | None = None
    requester_session_id: str | None = None
    correlated: bool | None = None
    already_closed: bool = False
    already_delivered: bool = False
    note: str | None = None
    wake: WakeOutcome = WakeOutcome()


@attrs.frozen
class RequesterUnreachable:
    """complete_work / block_work could not reach the requester; the obligation stays open."""

    requester_session_id: str
    requester_error: str


PEER_HAS_NO_SESSION_ID = Refused(
    "peer-has-no-session-id",
    "Target peer has no registered client.session_id, so a correlated reply wait is impossible. "
    'Bootstrap it in-band first: send_message with wake:"auto" to this same target (delivery lands in its '
    "pid box, the wake nudges its pane) with a body instructing it to call claim_session — then retry "
    "ask_peer.",
)
NO_SESSION_ID = Refused(
    "no-session-id",
    "This session has not claimed a session_id, so it has no received-ledger to reply from. "
    "Call claim_session first.",
)


def message_not_found(message_id: str) -> Refused:
    message_id = clip(message_id)
    return Refused(
        "message-not-found",
        f"No received message {message_id} in this session's ledger (it may have aged out of retention, "
        "or predates reply_to_message). Fall back to send_message with an explicit target.",
    )


def no_reply_target(message_id: str) -> Refused:
    message_id = clip(message_id)
    return Refused(
        "no-reply-target",
        f"Inbound message {message_id} has no from_session_id, so there is no peer to reply to.",
    )


OPEN_WORK_NO_SESSION_ID = Refused(
    "no-session-id",
    "This session has not claimed a session_id, so it has no received-ledger and owns no obligations. "
    "Call claim_session first.",
)
CLOSE_NO_SESSION_ID = Refused(
    "no-session-id",
    "This session has not claimed a session_id, so it has no received-ledger to close an obligation from. "
    "Call claim_session first.",
)


def obligation_not_found(message_id: str) -> Refused:
    message_id = clip(message_id)
    return Refused(
        "message-not-found",
        f"No received message {message_id} in this session's ledger (it may have aged out, or predates this "
        "version). If you already handled it, no action is needed.",
    )


def not_an_obligation(message_id: str) -> Refused:
    message_id = clip(message_id)
    return Refused(
        "not-an-obligation",
        f"Message {message_id} is an ordinary message, not an action_required delegation — there is nothing "
        "to close. Use reply_to_message to reply to it.",
    )


def delivery_failed(error: str) -> Refused:
    return Refused(
        "delivery-failed",
        f"Delivering the completion failed ({error}); the obligation is left OPEN — retry complete_work.",
    )
