"""The on-disk form of one project's reservations, and the memos that keep a reserve cheap.

A project's file (``reservations/<hash32(project)>.json``) is one JSON array of
:meth:`~oxtail_core.reservations.Reservation.to_json` objects in the wire
dialect (:func:`oxtail_core.wire.dumps`), replaced whole on every change. The
git guard's stdlib check (:mod:`oxtail_mcp.commands.guardcheck`) reads the
same bytes; ``tests/mcp/test_guardcheck.py`` keeps the two readings equal.

Every reserve reads, steps and rewrites that file under its lock, and with a
hundred records parsing and validating them, and encoding them again, was most
of the call. Both are memoized, exactly:

==============  ==================================================================
memo            safe because
==============  ==================================================================
parse           keyed by the file's whole content: the same bytes parse to the
                same (immutable) records, whoever wrote them and when
encode          keyed by the record (frozen, compared field by field): one
                record's JSON never depends on the others; the file is the
                records' encodings joined into an array, the same bytes
                ``dumps([r.to_json() for r in records])`` gives
==============  ==================================================================

Neither memo can make a step see a state the file does not hold: a read
always reads the file first, and only skips the parse when the bytes are the
ones it parsed (or wrote) last.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from oxtail_core.reservations import Reservation, records_of
from oxtail_core.wire import WireError, dumps, loads, utf8

PARSED_MAX = 32
"""Files whose last content is remembered (one per project this process touched)."""
PARSED_MAX_BYTES = 1 << 20
"""Larger content is parsed every time rather than kept: the memo holds at most 32 MiB."""
ENCODED_MAX = 8192
"""Records whose encoding is remembered; a full memo starts over."""

_lock = threading.Lock()
_parsed: dict[str, tuple[bytes, tuple[Reservation, ...]]] = {}
_encoded: dict[Reservation, bytes] = {}


def parse(key: str, raw: bytes) -> list[Reservation]:
    """The records of a file's content ``raw`` (``key``: its path); an unparseable record is
    skipped, content that is not a JSON array is no records."""
    with _lock:
        known = _parsed.get(key)
    if known is not None and known[0] == raw:
        return list(known[1])
    records = _parse(raw)
    _remember(key, raw, records)
    return records


def _parse(raw: bytes) -> list[Reservation]:
    try:
        data = loads(raw.decode("utf-8"))
    except (WireError, UnicodeDecodeError):
        return []
    return records_of(data)


def encode(key: str, records: Sequence[Reservation]) -> bytes:
    """The file content for ``records`` (remembered as ``key``'s content, for the next read)."""
    parts = []
    for r in records:
        with _lock:
            part = _encoded.get(r)
        if part is None:
            part = utf8(dumps(r.to_json()))
            with _lock:
                if len(_encoded) >= ENCODED_MAX:
                    _encoded.clear()
                _encoded[r] = part
        parts.append(part)
    body = b"[" + b",".join(parts) + b"]"
    _remember(key, body, list(records))
    return body


def _remember(key: str, raw: bytes, records: list[Reservation]) -> None:
    if len(raw) > PARSED_MAX_BYTES:
        with _lock:
            _parsed.pop(key, None)
        return
    with _lock:
        if key not in _parsed and len(_parsed) >= PARSED_MAX:
            _parsed.clear()
        _parsed[key] = (raw, tuple(records))
