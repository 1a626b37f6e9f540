"""The transcript facts liveness is judged on (oxtail_mcp/transcripts/activity.py): the file's age and
whether its latest tool call has a result yet; bounded, and blind to anything but a regular file."""

from __future__ import annotations

import json
import os
from pathlib import Path

from oxtail_mcp.transcripts.activity import SCAN_MAX_BYTES, SCAN_MAX_LINES, ToolCall, transcript_activity


def claude_line(*blocks: dict) -> str:
    return json.dumps({"type": "assistant", "message": {"role": "assistant", "content": list(blocks)}})


def codex_line(payload: dict) -> str:
    return json.dumps({"type": "response_item", "payload": payload})


def write(path: Path, lines: list[str], mtime: float = 1_000_000.0) -> str:
    path.write_text("\n".join(lines) + "\n")
    os.utime(path, (mtime, mtime))
    return str(path)


def test_a_claude_tool_call_without_its_result_is_running_and_with_it_is_not(tmp_path: Path) -> None:
    call = claude_line(
        {"type": "text", "text": "running it"}, {"type": "tool_use", "id": "t1", "name": "Bash"}
    )
    result = json.dumps(
        {"type": "user", "message": {"content": [{"type": "tool_result", "tool_use_id": "t1"}]}}
    )
    running = write(tmp_path / "a.jsonl", ['{"type":"summary"}', call], mtime=1_000_000)
    assert transcript_activity(running, "claude-code", 1_000_030.5) == transcript_activity(
        running, "claude-code", 1_000_030.5
    )
    got = transcript_activity(running, "claude-code", 1_000_030.5)
    assert got.age_s == 30.5 and got.tool == ToolCall("Bash", running=True)
    done = write(tmp_path / "b.jsonl", [call, result, "torn {"], mtime=1_000_000)
    assert transcript_activity(done, "claude-code", 1_000_000).tool == ToolCall("Bash", running=False)


def test_a_codex_call_is_answered_by_its_call_id_only(tmp_path: Path) -> None:
    older = codex_line({"type": "function_call", "name": "exec_command", "call_id": "c1"})
    newer = codex_line(
        {"type": "function_call", "name": "read_my_messages", "namespace": "mcp__oxtail", "call_id": "c2"}
    )
    other = codex_line({"type": "function_call_output", "call_id": "c1"})
    path = write(tmp_path / "r.jsonl", [older, newer, other])
    assert transcript_activity(path, "codex", 1_000_000).tool == ToolCall(
        "mcp__oxtail.read_my_messages", True
    )
    answered = write(
        tmp_path / "s.jsonl", [newer, codex_line({"type": "function_call_output", "call_id": "c2"})]
    )
    assert transcript_activity(answered, "codex", 1_000_000).tool == ToolCall(
        "mcp__oxtail.read_my_messages", False
    )


def test_no_tool_call_within_the_bounds_is_unknown_not_idle(tmp_path: Path) -> None:
    call = claude_line({"type": "tool_use", "id": "t1", "name": "Bash"})
    chatter = [claude_line({"type": "text", "text": "x"})] * (SCAN_MAX_LINES + 5)
    assert (
        transcript_activity(write(tmp_path / "lines.jsonl", [call, *chatter]), "claude-code", 1e6).tool
        is None
    )
    padding = claude_line({"type": "text", "text": "y" * (SCAN_MAX_BYTES + 10)})
    assert (
        transcript_activity(write(tmp_path / "bytes.jsonl", [call, padding]), "claude-code", 1e6).tool is None
    )
    assert transcript_activity(write(tmp_path / "none.jsonl", ["{}"]), "claude-code", 1e6).tool is None


def test_a_transcript_dated_too_far_ahead_has_no_age(tmp_path: Path) -> None:
    path = write(tmp_path / "f.jsonl", ["{}"], mtime=1_000_010)
    assert transcript_activity(path, "claude-code", 1_000_000).age_s is None  # 10 s ahead
    assert transcript_activity(path, "claude-code", 1_000_009).age_s == 0  # within the 2 s tolerance


def test_a_fifo_a_device_a_symlink_or_nothing_give_no_facts_and_never_block(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    real = Path(
        write(tmp_path / "real.jsonl", [claude_line({"type": "tool_use", "id": "t", "name": "Bash"})])
    )
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    for path in (str(fifo), "/dev/zero", str(link), str(tmp_path / "missing.jsonl"), None):
        got = transcript_activity(path, "claude-code", 1e6)
        assert (got.age_s, got.tool) == (None, None), path
