"""What an agent's transcript says about it right now: how old it is, and whether a tool is running.

Two of the facts :func:`oxtail_core.liveness.judge` decides on (selfheal.md §5.2).
Both are read-only and lock-free, and bounded: a transcript is any file a
host wrote (or a hostile process left), so it is opened without following a
final symlink, without blocking on a FIFO, and only if it is a regular file;
the newest-first scan stops after :data:`SCAN_MAX_LINES` lines or
:data:`SCAN_MAX_BYTES` bytes. Not finding a tool call there is "unknown"
(``None``), never "no tool running".

| client | a tool call | its result |
|---|---|---|
| Claude Code | ``tool_use`` block in ``message.content`` (``id``) | ``tool_result`` block (``tool_use_id``) |
| Codex | ``response_item``: ``function_call`` (``call_id``) | ``function_call_output`` (``call_id``) |

The latest call is running iff no newer line holds its result (a call without
an id is running: nothing could answer it).
"""

from __future__ import annotations

import contextlib
import os
import stat
from typing import Any, BinaryIO

import attrs

from oxtail_core.liveness import age_or_skew
from oxtail_core.wire import WireError, loads
from oxtail_mcp.transcripts.files import iter_lines_reversed

SCAN_MAX_LINES = 2000
SCAN_MAX_BYTES = 512 * 1024
_CHUNK = 16 * 1024
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


@attrs.frozen
class ToolCall:
    """The latest tool call found in a transcript's tail."""

    name: str
    running: bool


@attrs.frozen
class TranscriptActivity:
    """``age_s``: seconds since the file last changed (None: no file, or dated too far ahead)."""

    age_s: float | None
    tool: ToolCall | None = None


def transcript_activity(path: str | None, client_type: str, now_s: float) -> TranscriptActivity:
    """The age of the transcript at ``path`` and its latest tool call; no file is no facts."""
    if path is None:
        return TranscriptActivity(None)
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError:
        return TranscriptActivity(None)
    with os.fdopen(fd, "rb") as stream:
        info = os.fstat(stream.fileno())
        if not stat.S_ISREG(info.st_mode):
            return TranscriptActivity(None)
        age = age_or_skew(now_s, int(info.st_mtime))
        with contextlib.suppress(OSError):
            return TranscriptActivity(age, latest_tool(stream, info.st_size, client_type))
        return TranscriptActivity(age)


def latest_tool(stream: BinaryIO, size: int, client_type: str) -> ToolCall | None:
    """The newest tool call within the scan bounds of the file's end, or None."""
    answered: set[str] = set()
    parse = _codex_line if client_type == "codex" else _claude_line
    scanned = 0
    lines = iter_lines_reversed(stream, size, chunk=_CHUNK, max_line=SCAN_MAX_BYTES)
    for n, (raw, _) in enumerate(lines):
        scanned += SCAN_MAX_BYTES + 1 if raw is None else len(raw) + 1
        if raw is None or n >= SCAN_MAX_LINES or scanned > SCAN_MAX_BYTES:
            return None
        try:
            record = loads(raw)
        except WireError:
            continue  # a torn or partial line
        if isinstance(record, dict) and (found := parse(record, answered)) is not None:
            return found
    return None


def _claude_line(record: dict[str, Any], answered: set[str]) -> ToolCall | None:
    message = record.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        return None
    blocks = [block for block in content if isinstance(block, dict)]
    answered.update(
        b["tool_use_id"]
        for b in blocks
        if b.get("type") == "tool_result" and isinstance(b.get("tool_use_id"), str)
    )
    for block in reversed(blocks):
        if block.get("type") == "tool_use" and isinstance(block.get("name"), str):
            call_id = block.get("id")
            return ToolCall(block["name"], not isinstance(call_id, str) or call_id not in answered)
    return None


def _codex_line(record: dict[str, Any], answered: set[str]) -> ToolCall | None:
    payload = record.get("payload")
    if record.get("type") != "response_item" or not isinstance(payload, dict):
        return None
    call_id = payload.get("call_id")
    if payload.get("type") == "function_call_output":
        if isinstance(call_id, str):
            answered.add(call_id)
        return None
    name = payload.get("name")
    if payload.get("type") != "function_call" or not isinstance(name, str):
        return None
    namespace = payload.get("namespace")
    full = f"{namespace}.{name}" if isinstance(namespace, str) and namespace else name
    return ToolCall(full, not isinstance(call_id, str) or call_id not in answered)
