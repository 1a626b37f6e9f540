"""Identifiers and the derived keys every store uses (the rules the hook shares: :mod:`oxtail_core.naming`).

Keys derived from session ids are hashed, never used raw, so no caller-chosen
string ever becomes part of a file name, a Redis key pattern or a tmux argument.
"""

from __future__ import annotations

import re
import secrets

from oxtail_core.naming import canonical_session_id, hash32, is_uuid_shaped
from oxtail_core.wire import dumps

__all__ = [
    "HEX16",
    "PANE_ID",
    "canonical_session_id",
    "hash32",
    "is_pane_id",
    "is_uuid_shaped",
    "new_id",
    "pair_key",
    "same_session_id",
]

HEX16 = re.compile(r"^[0-9a-f]{16}\Z")
PANE_ID = re.compile(r"^%\d+\Z")


def new_id() -> str:
    """A fresh message or request id: 16 lowercase hex characters from 8 random bytes."""
    return secrets.token_hex(8)


def pair_key(a: str, b: str) -> str:
    """hash32 of the compact JSON pair ``[a, b]``: an unambiguous two-part key."""
    return hash32(dumps([a, b]))


def same_session_id(a: str | None, b: str | None) -> bool:
    """Session ids compare exactly, except UUID-shaped ones, which compare case-insensitively."""
    if not a or not b:
        return False
    if a == b:
        return True
    return is_uuid_shaped(a) and is_uuid_shaped(b) and a.lower() == b.lower()


def is_pane_id(value: str | None) -> bool:
    """A tmux pane id of the form ``%<digits>``; nothing else is ever handed to tmux."""
    return bool(value) and bool(PANE_ID.match(value or ""))
