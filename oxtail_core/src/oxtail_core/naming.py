"""The naming rules that the hook's fast path shares with the store: standard library only.

Claude Code runs the PreToolUse hook before every tool call, and the hook
finds the agent's marker and inbox by these rules; the stores key the same
records by the same rules. So they live once, here, in a module that imports
neither ``re`` nor ``hashlib`` (OpenSSL) nor anything of the core's records:
the hook imports it in well under a millisecond (``oxtail_core``'s package
``__init__`` loads nothing eagerly).

| rule | function |
|---|---|
| a session id's stored form: UUID-shaped ids lowercased, others as given | :func:`canonical_session_id` |
| UUID-shaped: 36 characters of hex digits (either case) and dashes | :func:`is_uuid_shaped` |
| the key of any string: 32 hex of SHA-256 over its UTF-8 (lone surrogates as U+FFFD) | :func:`hash32` |
"""

from __future__ import annotations

try:  # the builtin digest: hashlib would first load OpenSSL (~2 ms on the hook's hot path)
    from _sha256 import sha256  # type: ignore[import-not-found]  # CPython 3.11
except ImportError:
    try:
        from _sha2 import sha256  # type: ignore[import-not-found]  # CPython 3.12+
    except ImportError:
        from hashlib import sha256

_UUID_CHARS = frozenset("0123456789abcdefABCDEF-")


def is_uuid_shaped(target: str) -> bool:
    """True for a 36-character hex-and-dash string, in either case (the reference took lowercase only)."""
    return len(target) == 36 and _UUID_CHARS.issuperset(target)


def canonical_session_id(session_id: str) -> str:
    """The form a session id is stored and keyed under: UUID-shaped ids are lowercased."""
    return session_id.lower() if is_uuid_shaped(session_id) else session_id


def hash32(text: str) -> str:
    """First 32 hex characters of SHA-256 over the UTF-8 of ``text``, a lone surrogate counting as
    U+FFFD (as JavaScript encodes it, so the reference's keys match ours)."""
    if not text.isascii():
        text = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
    return str(sha256(text.encode("utf-8")).hexdigest())[:32]
