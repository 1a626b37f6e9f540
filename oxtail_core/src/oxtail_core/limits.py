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
| one inbox's unread mail (at append)                | 16 MiB                |
| one stored message line (longer: not a message)    | 128 KiB               |
| what a read or an open-work listing renders beyond | 32 KiB                |
| its body budget (ids, metadata, framing, escapes)  |                       |

The inbox bound is in bytes only: a count would cost a scan per send, and a
message line is at least ~150 bytes, so 16 MiB also bounds the count (about
100,000 one-character messages, or 1,900 of the maximal 8 KiB body). It is
not configurable: it protects the receiver, so the sender must not choose it.

A minted line is at most ~60 KiB (8 KiB of body that JSON-escapes to 48 KiB,
plus every id at its bound, escaped), so ``LINE_MAX_BYTES`` refuses only
forged lines; it is what lets a store read an inbox in bounded chunks.

``READ_METADATA_MAX_BYTES`` leaves the reference's body budget
(``OXTAIL_READ_MAX_BODY_BYTES``) as it is and bounds the rest: 50 ordinary
messages render about 10 KiB beyond their bodies (50 open obligations, with
their ``required_action`` text, about 23 KiB), so a normal read never notices
it, while 50 messages carrying every id at its bound (~60 KiB of metadata)
are spread over several reads (issue 15 item 2).

The bounds are checked where a value enters the system (a message is minted,
a session id is claimed), not when a record is read back: the store still
carries and safely names whatever an older writer left, and a forged file
is bounded by the file caps instead (oxtail_fs).

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
INBOX_MAX_BYTES = 16 << 20
LINE_MAX_BYTES = 128 << 10
READ_METADATA_MAX_BYTES = 32 << 10

_SURROGATE = re.compile("[\ud800-\udfff]")


def quote(value: object, limit: int = QUOTE_MAX_CHARS) -> str:
    """``repr`` of ``value`` cut to ``limit`` characters, so a refusal never echoes a huge input back."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}… ({len(value)} characters)"
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}…"


def clip(text: str, limit: int = QUOTE_MAX_CHARS) -> str:
    """``text`` itself if short, else its first ``limit`` characters and its length: for refusal texts
    that name an id the reference prints bare (an ordinary id reads exactly as it did)."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def check_id(field: str, value: str | None, limit: int = ID_MAX_CHARS) -> None:
    """ValueError (quoting at most ``QUOTE_MAX_CHARS`` of ``value``) unless it is an acceptable id or None."""
    if value is None:
        return
    problem = id_problem(value, limit)
    if problem is not None:
        raise ValueError(f"'{field}' {problem}: {quote(value)}")


def id_problem(value: str, limit: int) -> str | None:
    """Why ``value`` is not acceptable as an id of at most ``limit`` characters, or None if it is."""
    if len(value) > limit:
        return f"is {len(value)} characters long (at most {limit})"
    if _SURROGATE.search(value):
        return "contains a lone surrogate (not valid Unicode text)"
    return None
