"""Where agent hosts keep their transcripts, and how ``read_session`` turns them into messages.

Transcripts are written by Claude Code and the Codex CLI, not by us, so every
line is untrusted: a line that is not JSON, not an object, not valid UTF-8 or
absurdly long is skipped and counted, and the rest of the file is still served.
Files are streamed (the full scan keeps only the newest ``limit`` messages; the
tail scan reads backwards in blocks), so a transcript of any size costs bounded
memory.
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal

from oxtail_core.ids import is_uuid_shaped
from oxtail_core.wire import WireError, loads, utf8, utf8len

Role = Literal["user", "assistant"]

DEFAULT_LIMIT = 20
LIMIT_MIN, LIMIT_MAX = 1, 1000
DEFAULT_MAX_BYTES = 24_000
MAX_BYTES_MIN, MAX_BYTES_MAX = 256, 1_000_000
TAIL_CHUNK = 65_536
TAIL_CHUNK_MIN = 16
# Ours: a single line longer than this is skipped unparsed, so one runaway line
# (a pasted binary, a corrupt file without newlines) cannot exhaust memory.
MAX_LINE_BYTES = 32 * 1024 * 1024
_READ_BLOCK = 1024 * 1024
_DAY_MS = 86_400_000

_AGENTS_PREAMBLE = "# AGENTS.md instructions for "
_ENV_OPEN = "<environment_context>"
_ENV_CLOSE = "</environment_context>"


@dataclass(frozen=True)
class Message:
    """One rendered transcript turn; ``timestamp`` is whatever the host wrote (normally ISO text)."""

    role: Role
    text: str
    timestamp: Any = None

    def as_dict(self) -> dict[str, Any]:
        """The wire shape ``{role, text, timestamp}`` in the reference's key order."""
        return {"role": self.role, "text": self.text, "timestamp": self.timestamp}


@dataclass(frozen=True)
class TranscriptResult:
    """What a transcript read yields; the first six fields map onto the read_session response.

    ``skipped_lines`` counts lines that could not be parsed at all (not JSON,
    not an object, or over :data:`MAX_LINE_BYTES`) so the caller can trace them;
    well-formed lines that simply are not messages are not counted.
    """

    messages: list[Message]
    truncated: bool
    count_truncated: bool
    bytes_truncated: bool
    total_messages: int | None
    total_messages_exact: bool
    skipped_lines: int = 0


LineParser = Callable[[dict[str, Any]], "Message | None"]


# --------------------------------------------------------------------------- location


def encode_cwd(cwd: str) -> str:
    """Claude Code's project directory name for ``cwd`` as 0.15.0 computes it: every ``/`` becomes ``-``."""
    return cwd.replace("/", "-")


def claude_transcript_path(home: Path, cwd: str, session_id: str) -> str:
    """``~/.claude/projects/<encoded cwd>/<id>.jsonl``: computed, never searched or checked for existence."""
    return str(home / ".claude" / "projects" / encode_cwd(cwd) / f"{session_id}.jsonl")


def recent_date_dirs(now_ms: int) -> list[str]:
    """``YYYY/MM/DD`` for today, yesterday and the day before, each in UTC then local time, deduplicated.

    Codex files rollouts under the local date while servers may run in UTC
    containers, so both calendars are searched; the order is the reference's.
    """
    out: list[str] = []
    for i in range(3):
        seconds = (now_ms - i * _DAY_MS) / 1000
        for moment in (datetime.fromtimestamp(seconds, UTC), datetime.fromtimestamp(seconds)):
            rel = f"{moment.year:04d}/{moment.month:02d}/{moment.day:02d}"
            if rel not in out:
                out.append(rel)
    return out


def codex_sessions_dir(home: Path) -> Path:
    """``~/.codex/sessions``; ``CODEX_HOME`` is deliberately not honored, as in 0.15.0."""
    return home / ".codex" / "sessions"


def sorted_names(directory: Path) -> list[str]:
    """Entry names of ``directory``, sorted (the OS order is unspecified); [] if unreadable."""
    try:
        return sorted(os.listdir(directory))
    except OSError:
        return []


def find_codex_transcript(home: Path, session_id: str, now_ms: int) -> str | None:
    """The first ``*.jsonl`` in the recent date directories whose name contains ``session_id``.

    Names are visited in sorted order (the reference used the OS listing
    order, which is unspecified). A UUID-shaped id matches case-insensitively.
    """
    if not session_id:
        return None
    fold = is_uuid_shaped(session_id)
    needle = session_id.lower() if fold else session_id
    base = codex_sessions_dir(home)
    for rel in recent_date_dirs(now_ms):
        directory = base / rel
        for name in sorted_names(directory):
            if name.endswith(".jsonl") and needle in (name.lower() if fold else name):
                return str(directory / name)
    return None


def transcript_path_for(
    client_type: str, home: Path, cwd: str, session_id: str | None, now_ms: int
) -> str | None:
    """The transcript path for an identity: computed for Claude Code, searched for Codex, else None."""
    if not session_id:
        return None
    if client_type == "claude-code":
        return claude_transcript_path(home, cwd, session_id)
    if client_type == "codex":
        return find_codex_transcript(home, session_id, now_ms)
    return None


# --------------------------------------------------------------------------- line → message


def _parse_object(raw: bytes) -> dict[str, Any] | None:
    try:
        value = loads(raw)
    except WireError:
        return None
    return value if isinstance(value, dict) else None


def claude_message(obj: dict[str, Any]) -> Message | None:
    """A Claude Code line as a message; tool calls, tool results and thinking are not rendered."""
    if obj.get("type") not in ("user", "assistant"):
        return None
    message = obj.get("message")
    if not isinstance(message, dict):
        return None
    role = message.get("role")
    if role not in ("user", "assistant"):
        return None
    content = message.get("content")
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        text = "\n".join(
            block["text"]
            for block in content
            if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str)
        )
    else:
        text = ""
    if not text:
        return None
    return Message(role, text, obj.get("timestamp"))


def is_injected_block(text: str) -> bool:
    """Whether a Codex input block is host boilerplate (AGENTS.md preamble, environment context)."""
    if text.lstrip().startswith(_AGENTS_PREAMBLE):
        return True
    stripped = text.strip()
    return stripped.startswith(_ENV_OPEN) and stripped.endswith(_ENV_CLOSE)


def codex_message(obj: dict[str, Any]) -> Message | None:
    """A Codex rollout line as a message; only user/assistant ``message`` items with real text count."""
    if obj.get("type") != "response_item":
        return None
    payload = obj.get("payload")
    if not isinstance(payload, dict) or payload.get("type") != "message":
        return None
    role = payload.get("role")
    if role not in ("user", "assistant"):
        return None
    content = payload.get("content")
    text = ""
    if isinstance(content, list):
        text = "\n".join(
            block["text"]
            for block in content
            if isinstance(block, dict)
            and block.get("type") in ("input_text", "output_text")
            and isinstance(block.get("text"), str)
            and not is_injected_block(block["text"])
        )
    if not text:
        return None
    return Message(role, text, obj.get("timestamp"))


def parser_for(client_type: str | None) -> LineParser:
    """The Codex reader for Codex peers; the Claude reader for everything else (as in 0.15.0)."""
    return codex_message if client_type == "codex" else claude_message


# --------------------------------------------------------------------------- line streams


def iter_lines(stream: BinaryIO, max_line: int = MAX_LINE_BYTES) -> Iterator[bytes | None]:
    """Lines of ``stream`` oldest first, split on ``\\n``; an over-long line is yielded as None, unread."""
    pending = bytearray()
    overflow = False
    while block := stream.read(_READ_BLOCK):
        start = 0
        while (nl := block.find(b"\n", start)) != -1:
            if overflow:
                yield None
            else:
                pending += block[start:nl]
                yield None if len(pending) > max_line else bytes(pending)
            pending.clear()
            overflow = False
            start = nl + 1
        if not overflow:
            pending += block[start:]
            if len(pending) > max_line:
                pending.clear()
                overflow = True
    if overflow:
        yield None
    elif pending:
        yield bytes(pending)


def iter_lines_reversed(
    stream: BinaryIO, size: int, chunk: int = TAIL_CHUNK, max_line: int = MAX_LINE_BYTES
) -> Iterator[tuple[bytes | None, bool]]:
    """Lines newest first as ``(line, is_first_line)``, reading backwards ``chunk`` bytes at a time.

    The incomplete leftmost bytes of each block are carried into the next
    (older) block, so a line is only handed out once complete. An over-long
    line is yielded as None.
    """
    chunk = max(TAIL_CHUNK_MIN, chunk)
    pos = size
    # The pending (rightmost-first) pieces of the line being assembled; joined
    # once it is complete, so a long line costs linear, not quadratic, copying.
    pieces: list[bytes] = []
    pending = 0
    overflow = False
    while pos > 0:
        step = min(chunk, pos)
        pos -= step
        stream.seek(pos)
        block = stream.read(step)
        end = len(block)
        while (nl := block.rfind(b"\n", 0, end)) != -1:
            if overflow or pending + end - nl - 1 > max_line:
                yield None, False
            else:
                pieces.append(block[nl + 1 : end])
                yield b"".join(reversed(pieces)), False
            pieces, pending, overflow = [], 0, False
            end = nl
        if not overflow:
            pieces.append(block[:end])
            pending += end
            if pending > max_line:
                pieces, pending, overflow = [], 0, True
    if overflow:
        yield None, True
    else:
        yield b"".join(reversed(pieces)), True


# --------------------------------------------------------------------------- budgets


def _clamp(value: float | None, default: int, low: int, high: int) -> int:
    if value is None or isinstance(value, bool) or not math.isfinite(value):
        return default
    return max(low, min(high, math.floor(value)))


def clamp_limit(value: float | None) -> int:
    """``limit``: absent or non-finite → 20; otherwise floored into [1, 1000] (so 0 reads one message)."""
    return _clamp(value, DEFAULT_LIMIT, LIMIT_MIN, LIMIT_MAX)


def clamp_max_bytes(value: float | None) -> int:
    """``max_bytes``: absent or non-finite → 24000; otherwise floored into [256, 1000000]."""
    return _clamp(value, DEFAULT_MAX_BYTES, MAX_BYTES_MIN, MAX_BYTES_MAX)


def utf8_prefix(text: str, budget: int) -> str:
    """The longest prefix of whole code points whose UTF-8 size is at most ``budget`` bytes."""
    if budget <= 0:
        return ""
    encoded = utf8(text)
    if len(encoded) <= budget:
        return text
    cut = budget
    while encoded[cut] & 0xC0 == 0x80:
        cut -= 1
    # Every code point of ``text`` starts exactly one non-continuation byte of
    # ``encoded`` (a lone surrogate becomes U+FFFD), so counting lead bytes
    # gives the number of whole code points that fit.
    whole = sum(1 for byte in encoded[:cut] if byte & 0xC0 != 0x80)
    return text[:whole]


def apply_byte_budget(messages: list[Message], max_bytes: int) -> tuple[list[Message], bool]:
    """Keep the newest messages whose text fits ``max_bytes``; the first that does not fit is cut.

    The cut message keeps a whole-code-point prefix plus ``…[+<D>B truncated]``
    and everything older is dropped; at exactly zero remaining budget it is
    dropped without a marker. Returns the kept messages (chronological) and
    whether anything was cut or dropped.
    """
    remaining = max_bytes
    kept: list[Message] = []
    cut = False
    for message in reversed(messages):
        size = utf8len(message.text)
        if size <= remaining:
            kept.append(message)
            remaining -= size
            continue
        cut = True
        if remaining > 0:
            head = utf8_prefix(message.text, remaining)
            dropped = size - utf8len(head)
            kept.append(Message(message.role, f"{head}…[+{dropped}B truncated]", message.timestamp))
        break
    kept.reverse()
    return kept, cut


# --------------------------------------------------------------------------- reading


def _to_message(raw: bytes | None, parse: LineParser) -> tuple[Message | None, bool]:
    """Parse one raw line; the flag says the line was unreadable (not merely not a message)."""
    if raw is None:
        return None, True
    if not raw.strip():
        return None, False
    obj = _parse_object(raw)
    if obj is None:
        return None, True
    return parse(obj), False


def _full_scan(stream: BinaryIO, parse: LineParser, limit: int) -> tuple[list[Message], int, int]:
    newest: deque[Message] = deque(maxlen=limit)
    total = 0
    skipped = 0
    for raw in iter_lines(stream):
        message, bad = _to_message(raw, parse)
        skipped += bad
        if message is not None:
            newest.append(message)
            total += 1
    return list(newest), total, skipped


def _tail_scan(
    stream: BinaryIO, size: int, parse: LineParser, limit: int, chunk: int
) -> tuple[list[Message], bool, int]:
    collected: list[Message] = []
    skipped = 0
    for raw, is_first in iter_lines_reversed(stream, size, chunk):
        message, bad = _to_message(raw, parse)
        skipped += bad
        if message is None:
            continue
        collected.append(message)
        if not is_first and len(collected) >= limit:
            collected.reverse()
            return collected, True, skipped
    collected.reverse()
    return collected, False, skipped


def read_transcript(
    path: str,
    client_type: str | None,
    *,
    limit: float | None = None,
    max_bytes: float | None = None,
    include_timestamps: bool = False,
    tail_scan: bool = False,
    chunk: int = TAIL_CHUNK,
) -> TranscriptResult:
    """Read the newest messages of the transcript at ``path`` under the count and byte budgets.

    A missing file is an empty transcript, not an error (the host may not have
    written it yet); other I/O errors propagate to the caller.
    """
    count = clamp_limit(limit)
    budget = clamp_max_bytes(max_bytes)
    parse = parser_for(client_type)
    try:
        stream = open(path, "rb")  # noqa: SIM115 - closed by the with block below
    except (FileNotFoundError, NotADirectoryError):
        return TranscriptResult([], False, False, False, 0, True)
    with stream:
        if tail_scan:
            size = os.fstat(stream.fileno()).st_size
            messages, hit_limit, skipped = _tail_scan(stream, size, parse, count, chunk)
            total: int | None = None if hit_limit else len(messages)
            count_truncated = hit_limit
        else:
            messages, total_count, skipped = _full_scan(stream, parse, count)
            total = total_count
            count_truncated = total_count > count
    if not include_timestamps:
        messages = [Message(m.role, m.text, None) for m in messages]
    kept, bytes_truncated = apply_byte_budget(messages, budget)
    return TranscriptResult(
        messages=kept,
        truncated=count_truncated or bytes_truncated,
        count_truncated=count_truncated,
        bytes_truncated=bytes_truncated,
        total_messages=total,
        total_messages_exact=total is not None,
        skipped_lines=skipped,
    )
