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
import re
from collections import ChainMap, deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal

from oxtail_core.ids import same_session_id
from oxtail_core.wire import WireError, loads, utf8, utf8len
from oxtail_mcp.home import claude_config_dir, codex_home

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
# Claude Code keeps the first 200 characters of a project directory name, then a hash.
CLAUDE_NAME_MAX = 200
# A Codex session_meta line is ~27 KB in 0.171.0 (it inlines the base instructions); read up to this.
CODEX_FIRST_LINE_MAX = 256 * 1024
_FIRST_LINE_BLOCK = 16 * 1024
TRANSCRIPT_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}\Z")
ROLLOUT_NAME_ID = re.compile(
    r"-([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\.jsonl\Z"
)

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
    well-formed lines that simply are not messages are not counted. ``found`` is
    False when there was no file at all, which a caller must not present as an
    empty transcript.
    """

    messages: list[Message]
    truncated: bool
    count_truncated: bool
    bytes_truncated: bool
    total_messages: int | None
    total_messages_exact: bool
    skipped_lines: int = 0
    found: bool = True


LineParser = Callable[[dict[str, Any]], "Message | None"]


# --------------------------------------------------------------------------- location


def _utf16_units(text: str) -> list[int]:
    """The UTF-16 code units of ``text``: Claude Code's rule runs in JavaScript, over code units."""
    data = text.encode("utf-16-le", "surrogatepass")
    return [int.from_bytes(data[i : i + 2], "little") for i in range(0, len(data), 2)]


def _java_hash_base36(text: str) -> str:
    """``Math.abs(h).toString(36)`` of the 32-bit ``h = h * 31 + unit`` hash (Claude Code's long names)."""
    value = 0
    for unit in _utf16_units(text):
        value = (value * 31 + unit) & 0xFFFFFFFF
    value = abs(value - (1 << 32) if value >= 1 << 31 else value)
    digits = ""
    while True:
        value, rest = divmod(value, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[rest] + digits
        if value == 0:
            return digits


def encode_cwd(cwd: str) -> str:
    """Claude Code's project directory name for ``cwd`` (checked against the 2.1.197 binary).

    Every UTF-16 code unit that is not an ASCII letter or digit becomes ``-`` (so
    ``/home/u/my.proj_x y`` is ``-home-u-my-proj-x-y`` and an emoji is ``--``); a
    name longer than 200 units keeps its first 200 plus ``-`` and a base-36 hash of
    the cwd. 0.15.0 replaced only ``/`` and missed every cwd with ``.``, ``_`` or a space.
    """
    name = "".join(chr(unit) if unit < 128 and chr(unit).isalnum() else "-" for unit in _utf16_units(cwd))
    if len(name) <= CLAUDE_NAME_MAX:
        return name
    return f"{name[:CLAUDE_NAME_MAX]}-{_java_hash_base36(cwd)}"


def transcript_dirs(home: Path, env: Mapping[str, str]) -> tuple[Path, Path]:
    """``(Claude Code's projects/, Codex's sessions/)`` for ``env``, with ``home`` as the home directory.

    ``CLAUDE_CONFIG_DIR`` and ``CODEX_HOME`` move them, exactly as they move the
    clients' own files (see :mod:`oxtail_mcp.home`).
    """
    homed = ChainMap({"HOME": str(home)}, dict(env))
    return claude_config_dir(homed) / "projects", codex_home(homed) / "sessions"


def is_transcript_session_id(session_id: str | None) -> bool:
    """Whether ``session_id`` may become part of a transcript file name: letters, digits, ``-``, ``_``.

    Both hosts use UUIDs; an id with ``.``, ``/`` or anything else outside that
    set, or longer than 128 characters, never becomes a path, so a claimed
    ``../<other project>/<uuid>`` cannot reach another project's transcript.
    """
    return bool(session_id) and bool(TRANSCRIPT_SESSION_ID.match(session_id or ""))


def claude_transcript_path(
    home: Path, cwd: str, session_id: str, env: Mapping[str, str] = os.environ
) -> str | None:
    """``<claude config>/projects/<encoded cwd>/<id>.jsonl``: computed, not searched; None for a bad id."""
    if not is_transcript_session_id(session_id):
        return None
    return str(transcript_dirs(home, env)[0] / encode_cwd(cwd) / f"{session_id}.jsonl")


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


def codex_sessions_dir(home: Path, env: Mapping[str, str] = os.environ) -> Path:
    """Codex's ``sessions/`` (``$CODEX_HOME/sessions`` when set, else ``~/.codex/sessions``)."""
    return transcript_dirs(home, env)[1]


def sorted_names(directory: Path) -> list[str]:
    """Entry names of ``directory``, sorted (the OS order is unspecified); [] if unreadable."""
    try:
        return sorted(os.listdir(directory))
    except OSError:
        return []


def codex_first_line(path: Path, max_bytes: int = CODEX_FIRST_LINE_MAX) -> dict[str, Any] | None:
    """The first line of a rollout as a JSON object, read in blocks up to ``max_bytes``; None otherwise.

    Codex 0.171.0 inlines its base instructions in the ``session_meta`` line
    (about 27 KB), so the whole line is read; a first line longer than the cap,
    or one that is not a JSON object, is None.
    """
    try:
        with open(path, "rb") as stream:
            head = bytearray()
            while len(head) <= max_bytes and b"\n" not in head:
                block = stream.read(min(_FIRST_LINE_BLOCK, max_bytes + 1 - len(head)))
                if not block:
                    break
                head += block
    except OSError:
        return None
    line, newline, _ = bytes(head).partition(b"\n")
    if len(line) > max_bytes or (not newline and len(head) > max_bytes):
        return None
    return _parse_object(line)


def codex_meta_id(meta: dict[str, Any] | None) -> str | None:
    """``payload.id`` of a ``session_meta`` line (the thread id), if it is a string."""
    payload = meta.get("payload") if meta else None
    value = payload.get("id") if isinstance(payload, dict) else None
    return value if isinstance(value, str) else None


def codex_name_id(name: str) -> str | None:
    """The id a rollout file name ends with (``rollout-<time>-<uuid>.jsonl``), lowercase; None if none."""
    match = ROLLOUT_NAME_ID.search(name)
    return match.group(1).lower() if match else None


def find_codex_transcript(
    home: Path, session_id: str, now_ms: int, env: Mapping[str, str] = os.environ
) -> str | None:
    """The recent rollout of exactly this session, or None.

    A file named ``…-<uuid>.jsonl`` (as Codex names them) is this session's
    iff that whole UUID is the id (either case); any other ``*.jsonl`` is iff
    its ``session_meta`` id is. Names are visited in sorted order. The
    reference matched any name *containing* the id, so a claimed ``rollout``
    (or the tail of a peer's UUID) found another project's rollout; an id that
    cannot be a file name (see :func:`is_transcript_session_id`) finds nothing.
    """
    if not is_transcript_session_id(session_id):
        return None
    base = codex_sessions_dir(home, env)
    unnamed: list[Path] = []
    for rel in recent_date_dirs(now_ms):
        directory = base / rel
        for name in sorted_names(directory):
            if not name.endswith(".jsonl"):
                continue
            name_id = codex_name_id(name)
            if name_id is None:
                unnamed.append(directory / name)
            elif same_session_id(name_id, session_id):
                return str(directory / name)
    for path in unnamed:
        meta_id = codex_meta_id(codex_first_line(path))
        if meta_id is not None and same_session_id(meta_id, session_id):
            return str(path)
    return None


def transcript_path_for(
    client_type: str,
    home: Path,
    cwd: str,
    session_id: str | None,
    now_ms: int,
    *,
    env: Mapping[str, str] = os.environ,
) -> str | None:
    """The transcript path for an identity: computed for Claude Code, searched for Codex, else None.

    None too for an id that may not name a file (:func:`is_transcript_session_id`).
    """
    if not session_id:
        return None
    if client_type == "claude-code":
        return claude_transcript_path(home, cwd, session_id, env)
    if client_type == "codex":
        return find_codex_transcript(home, session_id, now_ms, env)
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


def clamp(value: float | None, default: int, low: int, high: int) -> int:
    """A numeric tool argument: absent or non-finite gives ``default``, else it is floored into range."""
    if value is None or isinstance(value, bool) or not math.isfinite(value):
        return default
    return max(low, min(high, math.floor(value)))


def clamp_limit(value: float | None) -> int:
    """``limit``: absent or non-finite → 20; otherwise floored into [1, 1000] (so 0 reads one message)."""
    return clamp(value, DEFAULT_LIMIT, LIMIT_MIN, LIMIT_MAX)


def clamp_max_bytes(value: float | None) -> int:
    """``max_bytes``: absent or non-finite → 24000; otherwise floored into [256, 1000000]."""
    return clamp(value, DEFAULT_MAX_BYTES, MAX_BYTES_MIN, MAX_BYTES_MAX)


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

    A missing file reads as no messages with ``found=False`` (the host may not
    have written it yet); other I/O errors propagate to the caller.
    """
    count = clamp_limit(limit)
    budget = clamp_max_bytes(max_bytes)
    parse = parser_for(client_type)
    try:
        stream = open(path, "rb")  # noqa: SIM115 - closed by the with block below
    except (FileNotFoundError, NotADirectoryError):
        return TranscriptResult([], False, False, False, 0, True, found=False)
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
