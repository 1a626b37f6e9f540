"""Builders for realistic Claude Code and Codex transcripts (discovery §8.9) and read_session fakes.

Lines are built as dicts and written compactly, one per line, the way the
hosts write them; raw ``str``/``bytes`` lines let a test plant corrupt input.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from oxtail_core.model import ClientInfo, RegistryEntry

TS = "2026-05-08T13:28:00.000Z"
CODEX_ID = "019e7d25-bdb4-7f90-a422-795f18cbd07e"
CLAUDE_ID = "5d0c1e2a-0000-4000-8000-00000000c1a0"

Line = dict[str, Any] | str | bytes


def ts(second: int) -> str:
    """An ISO timestamp ``second`` seconds into 13:28 on the fixture day (seconds may exceed 59)."""
    minute, sec = divmod(second, 60)
    return f"2026-05-08T13:{28 + minute:02d}:{sec:02d}.000Z"


def claude_text(role: str, text: str, timestamp: str | None = TS) -> dict[str, Any]:
    """The unit-test shape: top-level type = role, content = one text block."""
    line: dict[str, Any] = {
        "type": role,
        "message": {"role": role, "content": [{"type": "text", "text": text}]},
    }
    if timestamp is not None:
        line["timestamp"] = timestamp
    return line


def claude_string_user(text: str, timestamp: str = TS) -> dict[str, Any]:
    """A real Claude Code user line whose content is a bare string, with the usual envelope fields."""
    return {
        "parentUuid": None,
        "sessionId": CLAUDE_ID,
        "cwd": "/home/dev/proj",
        "type": "user",
        "message": {"role": "user", "content": text},
        "uuid": "8a1c0f7e-0000-4000-8000-000000000001",
        "timestamp": timestamp,
    }


def claude_assistant_with_tools(texts: list[str], timestamp: str = TS) -> dict[str, Any]:
    """An assistant line with thinking, text and tool_use blocks interleaved."""
    content: list[dict[str, Any]] = [{"type": "thinking", "thinking": "let me think"}]
    for i, text in enumerate(texts):
        content.append({"type": "text", "text": text})
        content.append({"type": "tool_use", "id": f"toolu_0{i}", "name": "Bash", "input": {"command": "ls"}})
    return {
        "type": "assistant",
        "message": {"id": "msg_01", "role": "assistant", "content": content},
        "timestamp": timestamp,
    }


def claude_tool_result(timestamp: str = TS) -> dict[str, Any]:
    """A user line that carries only a tool result (renders as nothing)."""
    return {
        "type": "user",
        "message": {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "ok 12 tests"}],
        },
        "timestamp": timestamp,
    }


def claude_sample() -> list[Line]:
    """The §8.9 Claude Code sample plus summary/system lines; yields exactly three messages."""
    return [
        {"type": "summary", "summary": "Running tests", "leafUuid": "x"},
        claude_text("user", "alpha", "2026-05-08T13:28:00.000Z"),
        claude_string_user("run the unit tests", "2026-05-08T13:28:05.000Z"),
        claude_assistant_with_tools(["Running them now."], "2026-05-08T13:28:07.000Z"),
        claude_tool_result("2026-05-08T13:28:20.000Z"),
        {"type": "system", "content": "compacted", "timestamp": "2026-05-08T13:28:30.000Z"},
        {"sessionId": "birth-time-resolved-uuid", "type": "user", "timestamp": "2026-05-08T13:29:00.000Z"},
    ]


def codex_meta(session_id: str = CODEX_ID, cwd: str = "/home/dev/proj") -> dict[str, Any]:
    """A rollout's first line; its ``payload.cwd`` is what birth-time matches on."""
    return {
        "timestamp": TS,
        "type": "session_meta",
        "payload": {"id": session_id, "cwd": cwd, "cli_version": "0.x"},
    }


def codex_message(role: str, *texts: str, timestamp: str = TS) -> dict[str, Any]:
    """A ``response_item`` message; user blocks are ``input_text``, others ``output_text``."""
    kind = "input_text" if role in ("user", "developer") else "output_text"
    return {
        "type": "response_item",
        "timestamp": timestamp,
        "payload": {"type": "message", "role": role, "content": [{"type": kind, "text": t} for t in texts]},
    }


def codex_function_call(timestamp: str = TS) -> dict[str, Any]:
    """A tool call item (not rendered)."""
    return {
        "type": "response_item",
        "timestamp": timestamp,
        "payload": {
            "type": "function_call",
            "name": "shell",
            "arguments": '{"command":["npm","test"]}',
            "call_id": "call_1",
        },
    }


AGENTS_PREAMBLE = "# AGENTS.md instructions for /repo\n<INSTRUCTIONS>x</INSTRUCTIONS>"
ENV_CONTEXT = "<environment_context><cwd>/repo</cwd></environment_context>"


def codex_sample(cwd: str = "/home/dev/proj") -> list[Line]:
    """The §8.9 Codex rollout; yields exactly two messages."""
    return [
        codex_meta(cwd=cwd),
        codex_message("user", AGENTS_PREAMBLE, ENV_CONTEXT, timestamp="2026-05-08T13:28:00.000Z"),
        codex_message("developer", "<permissions instructions>...</permissions>", timestamp=ts(10)),
        {"type": "turn_context", "payload": {"cwd": cwd}},
        {"type": "event_msg", "payload": {"type": "agent_message", "message": "hi"}},
        codex_message("user", "real first user message", timestamp="2026-05-08T13:29:00.000Z"),
        codex_message("assistant", "Done — tests pass.", timestamp="2026-05-08T13:29:30.000Z"),
        codex_function_call("2026-05-08T13:29:05.000Z"),
    ]


def encode_line(line: Line) -> bytes:
    """One line's bytes (without the newline); dicts are written compactly with raw non-ASCII."""
    if isinstance(line, bytes):
        return line
    if isinstance(line, str):
        return line.encode("utf-8", errors="surrogatepass")
    return json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode("utf-8", errors="surrogatepass")


def write_jsonl(path: Path, lines: Iterable[Line], trailing_newline: bool = True) -> Path:
    """Write ``lines`` as JSONL, creating parent directories."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"\n".join(encode_line(line) for line in lines)
    path.write_bytes(data + (b"\n" if trailing_newline and data else b""))
    return path


def claude_dir(home: Path, cwd: str) -> Path:
    """``~/.claude/projects/<cwd with every non-alphanumeric ASCII character → ->`` (short, BMP cwds)."""
    return home / ".claude" / "projects" / re.sub(r"[^A-Za-z0-9]", "-", cwd)


def codex_day_dir(home: Path, ymd: str) -> Path:
    """``~/.codex/sessions/YYYY/MM/DD``."""
    return home / ".codex" / "sessions" / ymd


def rollout_name(session_id: str, stamp: str = "2026-05-08T13-28-00") -> str:
    """A Codex rollout file name for ``session_id``."""
    return f"rollout-{stamp}-{session_id}.jsonl"


def write_huge_claude(path: Path, target_bytes: int, tail_texts: list[str]) -> int:
    """Stream a transcript of at least ``target_bytes``: bulky tool traffic, then ``tail_texts`` at the end.

    Returns the number of messages the file holds. Each bulk round is an
    assistant message, a ~48 KB tool result (renders nothing) and a malformed
    line, so the file is large but cheap to generate.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = "x" * 48_000
    bulk_result = encode_line(
        {
            "type": "user",
            "message": {"role": "user", "content": [{"type": "tool_result", "content": blob}]},
            "timestamp": TS,
        }
    )
    messages = 0
    written = 0
    with open(path, "wb") as out:
        while written < target_bytes:
            chunk = b"\n".join(
                [
                    encode_line(claude_text("assistant", f"bulk {messages}")),
                    bulk_result,
                    b'{"type":"user","message":',
                ]
            )
            out.write(chunk + b"\n")
            written += len(chunk) + 1
            messages += 1
        for i, text in enumerate(tail_texts):
            out.write(encode_line(claude_text("user" if i % 2 == 0 else "assistant", text)) + b"\n")
            messages += 1
    return messages


def entry(
    pid: int,
    session_id: str | None,
    *,
    tmux: str | None = None,
    cwd: str = "/home/dev/proj",
    client_type: str = "claude-code",
    transcript: str | None = None,
) -> RegistryEntry:
    """A live registry entry for read_session tests."""
    return RegistryEntry(
        server_pid=pid,
        started_at=1_795_608_986,
        client=ClientInfo(
            type=client_type,  # type: ignore[arg-type]
            session_id=session_id,
            transcript_path=transcript,
            session_id_source="self-register" if session_id else None,
            cwd=cwd,
        ),
        tmux_session=tmux,
    )


class FakePanes:
    """A scripted tmux: known sessions with paths and pane paths, canned captures, recorded calls."""

    def __init__(
        self,
        sessions: dict[str, tuple[str, str]] | None = None,
        pane_paths: dict[str, list[str]] | None = None,
        captures: dict[str, str | Exception] | None = None,
    ) -> None:
        self.sessions = sessions or {}
        self.paths = pane_paths or {}
        self.captures = captures or {}
        self.calls: list[tuple[str, ...]] = []

    def resolve(self, name: str) -> tuple[str, str] | None:
        self.calls.append(("resolve", name))
        return self.sessions.get(name)

    def pane_paths(self, session: str) -> list[str]:
        self.calls.append(("pane_paths", session))
        return self.paths.get(session, [])

    def capture(self, session: str, lines: int) -> str:
        self.calls.append(("capture", session, str(lines)))
        outcome = self.captures.get(session, "")
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def under(root: str) -> Any:
    """A scope predicate: in scope iff the path equals ``root`` or lies under it (string test)."""

    def predicate(path: str, resolved_root: str) -> bool:
        assert resolved_root == root
        return path == root or path.startswith(root.rstrip("/") + "/")

    return predicate
