"""ClientInfo from the environment (discovery §2.1) and from the MCP handshake name (§2.2)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from oxtail_core.model import ClientInfo
from oxtail_mcp.identity.client import detect_from_env, detect_from_handshake
from tests.support import transcripts as fx

NOW_MS = int(datetime(2026, 5, 8, 13, 30, tzinfo=UTC).timestamp() * 1000)
CWD = "/home/dev/proj"
SID = "aaaaaaaa-1111-2222-3333-444444444444"


def test_claude_code_with_id(tmp_path: Path) -> None:
    info = detect_from_env({"CLAUDECODE": "1", "CLAUDE_CODE_SESSION_ID": SID}, CWD, tmp_path, NOW_MS)
    assert info == ClientInfo(
        type="claude-code",
        session_id=SID,
        transcript_path=str(tmp_path / ".claude/projects/-home-dev-proj" / f"{SID}.jsonl"),
        session_id_source="env",
        cwd=CWD,
    )


def test_claude_code_without_id(tmp_path: Path) -> None:
    info = detect_from_env({"CLAUDECODE": "1"}, CWD, tmp_path, NOW_MS)
    assert info == ClientInfo(type="claude-code", cwd=CWD)


def test_claude_code_empty_id_is_kept_as_empty(tmp_path: Path) -> None:
    info = detect_from_env({"CLAUDECODE": "1", "CLAUDE_CODE_SESSION_ID": ""}, CWD, tmp_path, NOW_MS)
    assert info.session_id == ""
    assert info.transcript_path is None and info.session_id_source is None


def test_values_are_trimmed(tmp_path: Path) -> None:
    info = detect_from_env(
        {"CLAUDECODE": " 1\n", "CLAUDE_CODE_SESSION_ID": f"  {SID}\n"}, CWD, tmp_path, NOW_MS
    )
    assert (info.type, info.session_id, info.session_id_source) == ("claude-code", SID, "env")
    assert info.transcript_path is not None and info.transcript_path.endswith(f"/{SID}.jsonl")
    blank = detect_from_env({"CLAUDECODE": "1", "CLAUDE_CODE_SESSION_ID": "   "}, CWD, tmp_path, NOW_MS)
    assert blank.session_id == "" and blank.session_id_source is None


@pytest.mark.parametrize("value", ["true", "0", "", "11"])
def test_claudecode_must_be_exactly_one(tmp_path: Path, value: str) -> None:
    info = detect_from_env({"CLAUDECODE": value, "CLAUDE_CODE_SESSION_ID": SID}, CWD, tmp_path, NOW_MS)
    assert info == ClientInfo(type="unknown", cwd=CWD)


@pytest.mark.parametrize(
    "marker", ["CODEX_HOME", "CODEX_THREAD_ID", "CODEX_COMPANION_SESSION_ID", "CODEX_RUNTIME"]
)
def test_any_codex_marker_means_codex(tmp_path: Path, marker: str) -> None:
    assert detect_from_env({marker: "x"}, CWD, tmp_path, NOW_MS).type == "codex"


def test_whitespace_only_codex_marker_is_not_truthy(tmp_path: Path) -> None:
    assert detect_from_env({"CODEX_HOME": "  "}, CWD, tmp_path, NOW_MS).type == "unknown"


def test_claude_wins_over_codex_markers(tmp_path: Path) -> None:
    assert (
        detect_from_env({"CLAUDECODE": "1", "CODEX_THREAD_ID": "t"}, CWD, tmp_path, NOW_MS).type
        == "claude-code"
    )


def test_codex_id_preference_and_transcript_search(tmp_path: Path) -> None:
    rollout = fx.write_jsonl(
        fx.codex_day_dir(tmp_path, "2026/05/08") / fx.rollout_name(fx.CODEX_ID), [fx.codex_meta()]
    )
    env = {"CODEX_THREAD_ID": fx.CODEX_ID, "CODEX_COMPANION_SESSION_ID": "companion"}
    assert detect_from_env(env, CWD, tmp_path, NOW_MS) == ClientInfo(
        type="codex", session_id=fx.CODEX_ID, transcript_path=str(rollout), session_id_source="env", cwd=CWD
    )
    companion = detect_from_env({"CODEX_COMPANION_SESSION_ID": "companion"}, CWD, tmp_path, NOW_MS)
    assert (companion.session_id, companion.transcript_path, companion.session_id_source) == (
        "companion",
        None,
        "env",
    )


def test_codex_session_id_variable_is_not_consulted(tmp_path: Path) -> None:
    info = detect_from_env({"CODEX_RUNTIME": "1", "CODEX_SESSION_ID": SID}, CWD, tmp_path, NOW_MS)
    assert info == ClientInfo(type="codex", cwd=CWD)
    assert detect_from_env({"CODEX_SESSION_ID": SID}, CWD, tmp_path, NOW_MS).type == "unknown"


def test_nothing_set_is_unknown(tmp_path: Path) -> None:
    assert detect_from_env({}, CWD, tmp_path, NOW_MS) == ClientInfo(type="unknown", cwd=CWD)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("claude-code", "claude-code"),
        ("Claude Code", "claude-code"),
        ("codex-mcp-client", "codex"),
        ("CODEX", "codex"),
        ("claude-codex-bridge", "claude-code"),
        ("cursor", "unknown"),
        ("", "unknown"),
        (None, "unknown"),
    ],
)
def test_handshake_name(tmp_path: Path, name: str | None, expected: str) -> None:
    assert detect_from_handshake(name, {}, CWD, tmp_path, NOW_MS).type == expected


def test_handshake_takes_id_from_env_rules(tmp_path: Path) -> None:
    # CLAUDECODE is absent, but the handshake says Claude: the id variable is still honored.
    info = detect_from_handshake("claude-code", {"CLAUDE_CODE_SESSION_ID": SID}, CWD, tmp_path, NOW_MS)
    assert (info.type, info.session_id, info.session_id_source) == ("claude-code", SID, "env")
    codex = detect_from_handshake("codex", {"CODEX_THREAD_ID": "t1"}, CWD, tmp_path, NOW_MS)
    assert (codex.type, codex.session_id) == ("codex", "t1")


def test_unrecognized_handshake_falls_back_to_env(tmp_path: Path) -> None:
    info = detect_from_handshake("some-ide", {"CODEX_THREAD_ID": "t2"}, CWD, tmp_path, NOW_MS)
    assert (info.type, info.session_id) == ("codex", "t2")
