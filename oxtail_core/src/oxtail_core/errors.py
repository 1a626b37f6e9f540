"""Errors a caller can act on, each with the stable ``code`` the wire reports."""

from __future__ import annotations


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


class InboxFull(StoreError):
    """The receiver's inbox holds as much unread mail as it may (limits.INBOX_MAX_BYTES): nothing was sent."""

    code = "inbox-full"

    def __init__(self, waiting_bytes: int, limit: int) -> None:
        super().__init__(
            f"inbox-full: the peer has {waiting_bytes} bytes of unread mail (at most {limit}); "
            "nothing was sent, try again once it has read"
        )


class Cancelled(OxtailError):
    """Thrown into a running flow when its caller gives up (an MCP cancellation, a Ctrl-C)."""

    code = "cancelled"


class AskAborted(OxtailError):
    """An ask was cancelled by its caller; any reply it held was put back first."""

    code = "ask-aborted"

    def __init__(self) -> None:
        super().__init__("ask_peer aborted by client")
