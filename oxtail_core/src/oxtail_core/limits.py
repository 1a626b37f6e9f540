"""Bounds on every caller-chosen string the core stores, and how refusals quote them.

The reference bounds only ``body`` (8192 UTF-8 bytes) and ``purpose`` (200
UTF-16 units); every id-like field was unbounded, so one agent could make a
peer's reads, ledger and hook text arbitrarily large (issue 15 item 2). Our
ids are 16 hex characters and host session ids are UUIDs (36) or short thread
names, so the bounds below are generous for every real value and small enough
that a message's metadata can never outweigh its body budget.

| field                                              | bound                 |
|----------------------------------------------------|-----------------------|
| message id, ``request_id``, ``reply_to``,           | 256 characters        |
| ``source_message_id``                              |                       |
| session id (claimed, sender's, requester, peer)    | 256 characters        |
| tmux pane / session name                           | 256 characters        |
| ``cwd``, ``transcript_path``                       | 4096 characters       |
| a value quoted back in a refusal                   | first 64 characters   |

A lone surrogate (U+D800..U+DFFF alone) is refused in every id: it encodes to
UTF-8 only as U+FFFD, so ``agent-\\ud800`` and ``agent-\\ufffd`` would share a
key while comparing unequal.
"""

from __future__ import annotations

import re

ID_MAX_CHARS = 256
SESSION_ID_MAX_CHARS = 256
TMUX_NAME_MAX_CHARS = 256
PATH_MAX_CHARS = 4096
QUOTE_MAX_CHARS = 64

_SURROGATE = re.compile("[\ud800-\udfff]")


def quote(value: object, limit: int = QUOTE_MAX_CHARS) -> str:
    """``repr`` of ``value`` cut to ``limit`` characters, so a refusal never echoes a huge input back."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}… ({len(value)} characters)"
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}…"


def id_problem(value: str, limit: int) -> str | None:
    """Why ``value`` is not acceptable as an id of at most ``limit`` characters, or None if it is."""
    if len(value) > limit:
        return f"is {len(value)} characters long (at most {limit})"
    if _SURROGATE.search(value):
        return "contains a lone surrogate (not valid Unicode text)"
    return None
