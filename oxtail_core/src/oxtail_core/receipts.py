"""Delivery receipts and message_status (accounting.md §1.2, §2).

Being built (issue 9): receipts are written when a read is *settled*.
"""

from __future__ import annotations

from oxtail_core.context import Context
from oxtail_core.results import MessageStatus


def message_status(ctx: Context, message_id: str) -> MessageStatus:
    """delivered (receipt), pending (still in an inbox of the target) or unknown; anyone may ask."""
    raise NotImplementedError("issue 9")
