"""The received ledger's lines: what the store decides from them, as pure functions on bytes.

A ledger is JSONL; a line is a *record* iff it parses to a :class:`LedgerRecord`
(schema 1, string ``id``, string ``body``). Lines that are not records (torn,
corrupt, foreign) are never matched, never lost by a rewrite, and prunable.

Rules (accounting.md §1.4; the memory store is the reference semantics):

* re-recording an id drops its older lines and appends the new one last; a
  closed outcome is carried onto the new line (a terminal state never reopens);
* above ``keep`` lines the oldest go first, except open obligations;
* every rewrite keeps the bytes of the lines it does not change.

Parsing is lazy: a line is parsed only when a decision needs it, found by a
byte pre-filter (the quoted id, or ``action_required``, which every open
obligation's line contains as a key). Several lines with one id exist only
after a crash between a compaction's append and its rename; :func:`normalize`
repairs that under the lock, and the readers below take the newest line of an
id meanwhile.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import cast

from oxtail_core.convert import ShapeError, from_wire, to_wire
from oxtail_core.model import Envelope, LedgerRecord, Obligation
from oxtail_core.wire import WireError, dumps, loads, utf8

OPEN_HINT = b"action_required"
"""Present on every line that can be an open obligation (the key is written only when true)."""


def split(data: bytes) -> list[bytes]:
    """The non-empty lines of a ledger file, without their newlines; a torn tail is a line too."""
    return list(filter(None, data.split(b"\n")))


def join(lines: Sequence[bytes]) -> bytes:
    """A ledger file holding ``lines``, each newline-terminated."""
    return b"".join((b"\n".join(lines), b"\n")) if lines else b""


def parse(raw: bytes) -> LedgerRecord | None:
    """The record on one line, or None for a line that is not one.

    Lines up to 16 KiB are remembered by their bytes (records are immutable), so
    the open obligations a ledger keeps are parsed once per process, not on
    every record and read; the memory stays bounded (4096 lines at most).
    """
    return _parse_small(raw) if len(raw) <= _CACHED_LINE_MAX else _parse(raw)


_CACHED_LINE_MAX = 16 << 10


def _parse(raw: bytes) -> LedgerRecord | None:
    try:
        return cast(LedgerRecord, from_wire(loads(raw.decode("utf-8")), LedgerRecord))
    except (ShapeError, WireError, UnicodeDecodeError, RecursionError):
        return None


_parse_small = functools.lru_cache(maxsize=4096)(_parse)


def line_of(record: LedgerRecord) -> bytes:
    """The envelope as built, plus ``obligation`` once closed: compact JSON (without the newline)."""
    return utf8(dumps(to_wire(record)))


def needle(message_id: str) -> bytes:
    """Bytes every line with that id contains (the quoted id), to skip parsing the others."""
    return utf8(dumps(message_id))


def matching(data: bytes, lines: Sequence[bytes], message_id: str) -> list[tuple[int, LedgerRecord]]:
    """``(index, record)`` of every record with that id, oldest first (``lines`` split from ``data``)."""
    key = needle(message_id)
    if key not in data:
        return []  # one search of the whole file instead of one per line: the common case, a new id
    out = []
    for index, raw in enumerate(lines):
        if key in raw and (record := parse(raw)) is not None and record.envelope.id == message_id:
            out.append((index, record))
    return out


def outcome_of(records: Sequence[tuple[int, LedgerRecord]]) -> Obligation | None:
    """The stored outcome of an id's lines: the first one closed (terminal beats open)."""
    return next((r.obligation for _, r in records if r.obligation is not None), None)


def is_open_line(raw: bytes) -> bool:
    return OPEN_HINT in raw and (record := parse(raw)) is not None and record.is_open


def prune(lines: Sequence[bytes], keep: int) -> tuple[list[bytes], int]:
    """Drop the oldest lines above ``keep``, skipping open obligations; ``(survivors, dropped)``.

    Only open obligations are kept past the cap, so the result may be longer than ``keep``.
    """
    excess = len(lines) - max(keep, 0)
    if excess <= 0:
        return list(lines), 0
    survivors: list[bytes] = []
    dropped = 0
    for index, raw in enumerate(lines):
        if dropped == excess:
            survivors.extend(lines[index:])
            break
        if is_open_line(raw):
            survivors.append(raw)
        else:
            dropped += 1
    return survivors, dropped


def normalize(lines: Sequence[bytes]) -> list[bytes]:
    """One line per id: the newest, at its place, with the first stored outcome (after a crash).

    Non-records stay where they are; lines of ids seen once keep their bytes.
    """
    records: dict[str, list[tuple[int, LedgerRecord]]] = {}
    for index, raw in enumerate(lines):
        record = parse(raw)
        if record is not None:
            records.setdefault(record.envelope.id, []).append((index, record))
    replaced: dict[int, bytes] = {}
    dropped: set[int] = set()
    for same in records.values():
        if len(same) < 2:
            continue
        last_index, last = same[-1]
        dropped.update(index for index, _ in same[:-1])
        merged = LedgerRecord(last.envelope, outcome_of(same))
        if merged != last:
            replaced[last_index] = line_of(merged)
    return [replaced.get(i, raw) for i, raw in enumerate(lines) if i not in dropped]


def open_obligations(data: bytes) -> list[Envelope]:
    """The open obligations of a ledger file, newest first (an id counts once, by its newest line)."""
    if OPEN_HINT not in data:
        return []  # no delegation ever reached this ledger (the common case): no line to look at
    candidates = [r for raw in data.split(b"\n") if OPEN_HINT in raw and (r := parse(raw)) is not None]
    closed = {r.envelope.id for r in candidates if r.obligation is not None}
    seen: set[str] = set()
    out = []
    for record in reversed(candidates):
        if record.envelope.id in seen:
            continue
        seen.add(record.envelope.id)
        if record.is_open and record.envelope.id not in closed:
            out.append(record.envelope)
    return out
