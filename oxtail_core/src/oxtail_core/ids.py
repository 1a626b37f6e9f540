"""Identifiers and the derived keys every store uses.

Keys derived from session ids are hashed, never used raw, so no caller-chosen
string ever becomes part of a file name, a Redis key pattern or a tmux argument.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from oxtail_core.wire import dumps, utf8

HEX16 = re.compile(r"^[0-9a-f]{16}\Z")
UUID_SHAPE = re.compile(r"^[0-9a-fA-F-]{36}\Z")
PANE_ID = re.compile(r"^%\d+\Z")


def new_id() -> str:
    """A fresh message or request id: 16 lowercase hex characters from 8 random bytes."""
    return secrets.token_hex(8)


def hash32(text: str) -> str:
    """First 32 hex characters of SHA-256 over the UTF-8 of ``text``."""
    return hashlib.sha256(utf8(text)).hexdigest()[:32]


def pair_key(a: str, b: str) -> str:
    """hash32 of the compact JSON pair ``[a, b]``: an unambiguous two-part key."""
    return hash32(dumps([a, b]))


def is_uuid_shaped(target: str) -> bool:
    """True for a 36-character hex-and-dash string, in either case (the reference took lowercase only)."""
    return bool(UUID_SHAPE.match(target))


def same_session_id(a: str | None, b: str | None) -> bool:
    """Session ids compare exactly, except UUID-shaped ones, which compare case-insensitively."""
    if not a or not b:
        return False
    if a == b:
        return True
    return is_uuid_shaped(a) and is_uuid_shaped(b) and a.lower() == b.lower()


def canonical_session_id(session_id: str) -> str:
    """The form a session id is stored and keyed under: UUID-shaped ids are lowercased."""
    return session_id.lower() if is_uuid_shaped(session_id) else session_id


def is_pane_id(value: str | None) -> bool:
    """A tmux pane id of the form ``%<digits>``; nothing else is ever handed to tmux."""
    return bool(value) and bool(PANE_ID.match(value or ""))
