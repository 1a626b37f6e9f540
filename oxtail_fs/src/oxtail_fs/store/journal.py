"""Intent journals: how a multi-file inbox change stays all-or-nothing across a crash.

A take, a restore and a merge each change an inbox file *and* another file
(an in-flight batch, or a second inbox). Before the first change the
operation writes a journal (atomically) naming the inbox file's inode as it
was; the inbox rewrite (temp + rename) always gives the file a new inode. So a
later reader of the journal knows exactly which side of the crash it is on:

* inode unchanged -> the inbox was never rewritten: drop the journal (abort);
* inode changed   -> the rewrite happened: redo the remaining steps (commit).

Every operation that rewrites an inbox or its batches resolves the journals
that concern it, under the same locks, before it does anything else; appends
only add bytes and never change the inode, so they need not. Resolution is
idempotent: a crash while resolving is resolved again by the next operation.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

SINGLE = re.compile(r"^([sp]-[0-9a-f]{32})\.json\Z")
MERGE = re.compile(r"^([sp]-[0-9a-f]{32})\+([sp]-[0-9a-f]{32})\.merge\Z")


def single_name(stem: str) -> str:
    """Journal of a take/restore/recover on one inbox (one at a time: the inbox lock is held)."""
    return f"{stem}.json"


def merge_name(source: str, dest: str) -> str:
    """Journal of a merge, named for both inboxes so that an operation on either finds it."""
    return f"{source}+{dest}.merge"


def stems_of(name: str) -> frozenset[str]:
    """The inboxes a journal concerns (empty for anything that is not a journal, e.g. a temp file)."""
    if match := SINGLE.match(name):
        return frozenset(match.groups())
    if match := MERGE.match(name):
        return frozenset(match.groups())
    return frozenset()


def encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def decode(raw: bytes) -> dict[str, Any] | None:
    """A journal or batch document, or None if it is not one of ours."""
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


def corrupt_aside(path: Path) -> Path:
    """Where an unreadable journal or batch is moved, so it is kept for inspection but never replayed."""
    return path.with_name(path.name + ".corrupt")
