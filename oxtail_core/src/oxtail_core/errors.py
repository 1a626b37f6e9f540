"""Errors a caller can act on, each with the stable ``code`` the wire reports."""

from __future__ import annotations

import enum

from oxtail_core import texts


class ErrorCode(enum.StrEnum):
    """The refusal codes the wire reports in ``error`` (the reference's strings)."""

    TARGET_NOT_FOUND = "target-not-found"
    AMBIGUOUS_TARGET = "ambiguous-target"
    CROSS_PROJECT = "cross-project"
    SELF_SEND = "self-send"
    PEER_HAS_NO_SESSION_ID = "peer-has-no-session-id"
    NO_SESSION_ID = "no-session-id"
    MESSAGE_NOT_FOUND = "message-not-found"
    NO_REPLY_TARGET = "no-reply-target"
    FOREIGN_PEER = "foreign-peer"  # ours: the target runs the reference (Node) oxtail
    NOT_AN_OBLIGATION = "not-an-obligation"
    REQUESTER_UNREACHABLE = "requester-unreachable"
    DELIVERY_FAILED = "delivery-failed"
    SESSION_HELD = "session-held"  # ours: a claim of a live agent's id from another client process


class OxtailError(Exception):
    """Base of every error the core raises on purpose."""

    code = "oxtail-error"


class StoreError(OxtailError):
    """The store could not do what was asked (I/O failure, corrupt state)."""

    code = "store-error"


class StoreBusy(StoreError):
    """A lock could not be taken within its bounded wait. Retryable; nothing was changed."""

    code = "store-busy"

    def __init__(self, resource: str) -> None:
        super().__init__(f"could not acquire lock at {resource}")
        self.resource = resource


class OutcomeUnknown(StoreError):
    """A write the store may or may not have done: its reply was lost after the retry budget (a
    networked store; the filesystem store always knows). Never "nothing changed": a send that
    raises it may have been delivered, which ``message_status`` of :attr:`message_id` tells."""

    code = "store-outcome-unknown"

    def __init__(self, message: str, message_id: str | None = None) -> None:
        super().__init__(message)
        self.message_id = message_id

    def __str__(self) -> str:
        text = super().__str__()
        if self.message_id is None:
            return text
        return texts.outcome_unknown(text, self.message_id)


class InboxFull(StoreError):
    """The receiver's inbox holds as much unread mail as it may (limits.INBOX_MAX_BYTES): nothing was sent."""

    code = "inbox-full"

    def __init__(self, waiting_bytes: int, limit: int) -> None:
        super().__init__(texts.inbox_full(waiting_bytes, limit))


class Cancelled(OxtailError):
    """Thrown into a running flow when its caller gives up (an MCP cancellation, a Ctrl-C)."""

    code = "cancelled"


class AskAborted(OxtailError):
    """An ask was cancelled by its caller; any reply it held was put back first."""

    code = "ask-aborted"

    def __init__(self) -> None:
        super().__init__("ask_peer aborted by client")


class IllegalPendingStep(OxtailError):
    """A pending-ask note was driven through a step its lifecycle does not have."""

    code = "illegal-pending-step"

    def __init__(self, state: str, event: str) -> None:
        super().__init__(f"pending ask: no step {event!r} from state {state!r}")
        self.state = state
        self.event = event


class ObligationNotRecorded(OxtailError):
    """A durable delegation whose ledger line could not be written: nothing was delivered (fail loud).

    The text is the reference's, so agents that match on it keep working.
    """

    code = "obligation-not-recorded"

    def __init__(self, cause: str) -> None:
        super().__init__(f"durable obligation not recorded — ledger write failed, delivery aborted: {cause}")
