"""Transcript location, line → message mapping, budgets and the tail scan (discovery §8.3-8.7)."""

from __future__ import annotations

import io
import json
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oxtail_core.wire import dumps, utf8len
from oxtail_mcp.transcripts import files as tr
from oxtail_mcp.transcripts.files import Message, read_transcript
from tests.support import transcripts as fx

NOW_MS = int(datetime(2026, 5, 8, 13, 30, tzinfo=UTC).timestamp() * 1000)


def texts(result: tr.TranscriptResult) -> list[str]:
    return [m.text for m in result.messages]


def flags(result: tr.TranscriptResult) -> tuple[bool, bool, bool, int | None, bool]:
    return (
        result.truncated,
        result.count_truncated,
        result.bytes_truncated,
        result.total_messages,
        result.total_messages_exact,
    )


@pytest.fixture
def local_tz() -> Iterator[None]:
    """Run with local time far west of UTC, so UTC and local dates differ in the evening."""
    mp = pytest.MonkeyPatch()
    mp.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    yield
    mp.undo()
    time.tzset()


# --------------------------------------------------------------------------- location


def test_claude_path_maps_every_non_alphanumeric_character_to_a_dash(tmp_path: Path) -> None:
    assert tr.claude_transcript_path(tmp_path, "/home/u/my.proj_x y", "abc", {}) == str(
        tmp_path / ".claude" / "projects" / "-home-u-my-proj-x-y" / "abc.jsonl"
    )


@pytest.mark.parametrize(
    ("cwd", "encoded"),
    [
        # Expected values computed by Claude Code 2.1.197's own function, run under node.
        ("/home/u/my.proj_x y", "-home-u-my-proj-x-y"),
        ("/home/ü/🦊x", "-home-----x"),  # JavaScript counts the fox as two UTF-16 units
        ("/Users/first.last/site.com", "-Users-first-last-site-com"),
    ],
)
def test_encode_cwd_is_claude_codes_rule(cwd: str, encoded: str) -> None:
    assert tr.encode_cwd(cwd) == encoded


def test_a_cwd_over_200_characters_is_cut_and_hashed_as_claude_code_does() -> None:
    long = "/home/u/" + "deep.dir_" * 30
    encoded = tr.encode_cwd(long)
    assert len(encoded) == 200 + len("-6osvy3")
    assert encoded[195:] == "r-dee-6osvy3"


def test_claude_config_dir_moves_the_transcript(tmp_path: Path) -> None:
    env = {"CLAUDE_CONFIG_DIR": str(tmp_path / "alt")}
    assert tr.transcript_path_for("claude-code", tmp_path, "/p", "abc", NOW_MS, env=env) == str(
        tmp_path / "alt" / "projects" / "-p" / "abc.jsonl"
    )


@pytest.mark.parametrize(
    "session_id",
    ["../-other-proj/" + fx.CLAUDE_ID, "..", "a/b", "a.b", "", " " + fx.CLAUDE_ID, "x" * 129, "\u0000"],
)
def test_an_id_that_is_not_a_plain_name_never_becomes_a_transcript_path(
    tmp_path: Path, session_id: str
) -> None:
    day = fx.codex_day_dir(tmp_path, "2026/05/07")
    fx.write_jsonl(day / fx.rollout_name(fx.CODEX_ID), [fx.codex_meta()])
    for client_type in ("claude-code", "codex"):
        assert tr.transcript_path_for(client_type, tmp_path, "/p", session_id, NOW_MS, env={}) is None


def test_codex_search_matches_the_whole_id_never_a_substring(tmp_path: Path) -> None:
    day = fx.codex_day_dir(tmp_path, "2026/05/07")
    target = fx.write_jsonl(day / fx.rollout_name(fx.CODEX_ID), [fx.codex_meta()])
    for part in ("rollout", "2026", fx.CODEX_ID[-12:], fx.CODEX_ID[:8], fx.CODEX_ID[1:]):
        assert tr.find_codex_transcript(tmp_path, part, NOW_MS, {}) is None
    assert tr.find_codex_transcript(tmp_path, fx.CODEX_ID, NOW_MS, {}) == str(target)


def test_codex_search_falls_back_to_the_session_meta_id_of_an_oddly_named_file(tmp_path: Path) -> None:
    day = fx.codex_day_dir(tmp_path, "2026/05/07")
    fx.write_jsonl(day / "imported.jsonl", [fx.codex_meta("t1")])
    fx.write_jsonl(day / "other.jsonl", [fx.codex_meta("t2")])
    assert tr.find_codex_transcript(tmp_path, "t1", NOW_MS, {}) == str(day / "imported.jsonl")
    assert tr.find_codex_transcript(tmp_path, "t", NOW_MS, {}) is None


def test_codex_home_moves_the_rollout_search(tmp_path: Path) -> None:
    moved = tmp_path / "ch" / "sessions" / "2026/05/07"
    target = fx.write_jsonl(moved / fx.rollout_name(fx.CODEX_ID), [fx.codex_meta()])
    env = {"CODEX_HOME": str(tmp_path / "ch")}
    assert tr.find_codex_transcript(tmp_path, fx.CODEX_ID, NOW_MS, env) == str(target)
    assert tr.find_codex_transcript(tmp_path, fx.CODEX_ID, NOW_MS, {}) is None


def test_recent_date_dirs_utc_then_local(local_tz: None) -> None:
    # 2026-05-08 03:00 UTC is 2026-05-07 20:00 in Los Angeles.
    now = int(datetime(2026, 5, 8, 3, 0, tzinfo=UTC).timestamp() * 1000)
    assert tr.recent_date_dirs(now) == ["2026/05/08", "2026/05/07", "2026/05/06", "2026/05/05"]


def test_recent_date_dirs_dedupes_when_calendars_agree(local_tz: None) -> None:
    now = int(datetime(2026, 1, 3, 20, 0, tzinfo=UTC).timestamp() * 1000)  # 12:00 in LA, same day
    assert tr.recent_date_dirs(now) == ["2026/01/03", "2026/01/02", "2026/01/01"]


def test_codex_search_finds_recent_rollout_by_its_id(tmp_path: Path) -> None:
    day = fx.codex_day_dir(tmp_path, "2026/05/07")
    fx.write_jsonl(day / "notes.txt", ["x"])
    fx.write_jsonl(day / fx.rollout_name("11111111-2222-3333-4444-555555555555"), [fx.codex_meta()])
    target = fx.write_jsonl(day / fx.rollout_name(fx.CODEX_ID), [fx.codex_meta()])
    assert tr.find_codex_transcript(tmp_path, fx.CODEX_ID, NOW_MS, {}) == str(target)
    assert tr.find_codex_transcript(tmp_path, fx.CODEX_ID.upper(), NOW_MS, {}) == str(target)
    assert tr.transcript_path_for("codex", tmp_path, "/any", fx.CODEX_ID, NOW_MS, env={}) == str(target)


def test_codex_search_misses_old_days_and_missing_base(tmp_path: Path) -> None:
    assert tr.find_codex_transcript(tmp_path, fx.CODEX_ID, NOW_MS, {}) is None
    fx.write_jsonl(fx.codex_day_dir(tmp_path, "2026/05/04") / fx.rollout_name(fx.CODEX_ID), [fx.codex_meta()])
    assert tr.find_codex_transcript(tmp_path, fx.CODEX_ID, NOW_MS, {}) is None


def test_transcript_path_for_needs_id_and_known_type(tmp_path: Path) -> None:
    assert tr.transcript_path_for("claude-code", tmp_path, "/p", "", NOW_MS, env={}) is None
    assert tr.transcript_path_for("claude-code", tmp_path, "/p", None, NOW_MS, env={}) is None
    assert tr.transcript_path_for("unknown", tmp_path, "/p", "abc", NOW_MS, env={}) is None
    assert tr.transcript_path_for("claude-code", tmp_path, "/p", "abc", NOW_MS, env={}) == str(
        tmp_path / ".claude/projects/-p/abc.jsonl"
    )


# --------------------------------------------------------------------------- line → message


def test_claude_sample_yields_three_messages(tmp_path: Path) -> None:
    path = fx.write_jsonl(tmp_path / "c.jsonl", fx.claude_sample())
    result = read_transcript(str(path), "claude-code", include_timestamps=True)
    assert [m.as_dict() for m in result.messages] == [
        {"role": "user", "text": "alpha", "timestamp": "2026-05-08T13:28:00.000Z"},
        {"role": "user", "text": "run the unit tests", "timestamp": "2026-05-08T13:28:05.000Z"},
        {"role": "assistant", "text": "Running them now.", "timestamp": "2026-05-08T13:28:07.000Z"},
    ]
    assert result.skipped_lines == 0


def test_claude_joins_text_blocks_and_drops_tools() -> None:
    message = tr.claude_message(fx.claude_assistant_with_tools(["first", "second"]))
    assert message == Message("assistant", "first\nsecond", fx.TS)


def test_claude_role_comes_from_message_not_type() -> None:
    line = fx.claude_text("user", "hi")
    line["message"]["role"] = "assistant"
    assert tr.claude_message(line) == Message("assistant", "hi", fx.TS)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (fx.claude_tool_result(), None),
        ({"type": "summary", "message": {"role": "user", "content": "x"}}, None),
        ({"type": "user", "message": {"role": "system", "content": "x"}}, None),
        ({"type": "user", "message": "not an object"}, None),
        ({"type": "user", "message": {"role": "user", "content": 42}}, None),
        ({"type": "user", "message": {"role": "user", "content": [{"type": "text", "text": 7}]}}, None),
        ({"type": "user", "message": {"role": "user", "content": "   "}}, Message("user", "   ", None)),
    ],
)
def test_claude_line_shapes(line: dict[str, object], expected: Message | None) -> None:
    assert tr.claude_message(line) == expected


def test_codex_sample_yields_two_messages(tmp_path: Path) -> None:
    path = fx.write_jsonl(tmp_path / "r.jsonl", fx.codex_sample())
    result = read_transcript(str(path), "codex", include_timestamps=True)
    assert [m.as_dict() for m in result.messages] == [
        {"role": "user", "text": "real first user message", "timestamp": "2026-05-08T13:29:00.000Z"},
        {"role": "assistant", "text": "Done — tests pass.", "timestamp": "2026-05-08T13:29:30.000Z"},
    ]


def test_codex_mixed_message_keeps_real_blocks_only() -> None:
    line = fx.codex_message(
        "user", fx.ENV_CONTEXT, "please fix the bug", "  \n# AGENTS.md instructions for /x"
    )
    assert tr.codex_message(line) == Message("user", "please fix the bug", fx.TS)


def test_codex_prose_mentioning_tag_is_kept() -> None:
    prose = "can you check the <environment_context> tag handling"
    assert tr.codex_message(fx.codex_message("user", prose)) == Message("user", prose, fx.TS)


@pytest.mark.parametrize(
    ("text", "injected"),
    [
        ("# AGENTS.md instructions for /repo\nbody", True),
        ("\n\t  # AGENTS.md instructions for /repo", True),
        ("  <environment_context><cwd>/x</cwd></environment_context>\n", True),
        ("<environment_context> but no closing tag", False),
        ("see # AGENTS.md instructions for /repo", False),
        ("", False),
        ("   ", False),
    ],
)
def test_injected_block_test(text: str, injected: bool) -> None:
    assert tr.is_injected_block(text) is injected


@pytest.mark.parametrize(
    "line",
    [
        fx.codex_message("developer", "rules"),
        fx.codex_message("system", "rules"),
        fx.codex_function_call(),
        fx.codex_meta(),
        {"type": "response_item", "payload": {"type": "message", "role": "user", "content": "plain string"}},
        {"type": "response_item", "payload": "nope"},
        {"type": "event_msg", "payload": {"type": "message", "role": "user", "content": []}},
        fx.codex_message("user", fx.AGENTS_PREAMBLE, fx.ENV_CONTEXT),
        fx.codex_message("user", ""),
    ],
)
def test_codex_non_messages(line: dict[str, object]) -> None:
    assert tr.codex_message(line) is None


def test_codex_whitespace_text_is_real_text() -> None:
    line = fx.codex_message("user", "   ", fx.AGENTS_PREAMBLE)
    assert tr.codex_message(line) == Message("user", "   ", fx.TS)


def test_codex_reader_chosen_only_for_codex() -> None:
    assert tr.parser_for("codex") is tr.codex_message
    for other in ("claude-code", "unknown", None):
        assert tr.parser_for(other) is tr.claude_message


# --------------------------------------------------------------------------- hostile input


HOSTILE: list[fx.Line] = [
    "",
    "   ",
    "{not json",
    "[1, 2, 3]",
    '"just a string"',
    "42",
    "null",
    '{"type":"user","message":{"role":"user","content":"nan"},"n":NaN}',
    "[" * 100_000 + "]" * 100_000,
    b'{"type":"user","message":{"role":"user","content":"bad \xff\xfe bytes"},"timestamp":"t"}',
    b"\xff\xfe\xfd not even json",
    '{"type":"user","message":{"role":"user","content":"lone \\ud83d surrogate"}}',
    fx.claude_text("assistant", "emoji 🦊 and CJK 漢字テスト"),
]


@pytest.mark.parametrize("tail_scan", [False, True])
def test_hostile_lines_are_skipped_and_the_rest_served(tmp_path: Path, tail_scan: bool) -> None:
    lines = [fx.claude_text("user", "before"), *HOSTILE, fx.claude_text("assistant", "after")]
    path = fx.write_jsonl(tmp_path / "h.jsonl", lines)
    result = read_transcript(str(path), "claude-code", tail_scan=tail_scan, limit=1000)
    assert texts(result) == [
        "before",
        "bad \ufffd\ufffd bytes",
        "lone \ud83d surrogate",
        "emoji 🦊 and CJK 漢字テスト",
        "after",
    ]
    assert result.total_messages == 5
    # not JSON: '{not json', NaN, the 100k-deep nesting, raw junk bytes; not objects: array, string, 42, null
    assert result.skipped_lines == 8
    # The response must still encode: the lone surrogate is escaped, everything else raw.
    encoded = dumps([m.as_dict() for m in result.messages])
    assert "\\ud83d" in encoded and "🦊" in encoded and "漢字" in encoded


def test_directory_instead_of_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError):
        read_transcript(str(tmp_path), "claude-code")


@pytest.mark.parametrize("tail_scan", [False, True])
def test_missing_and_empty_files_are_empty_and_exact(tmp_path: Path, tail_scan: bool) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    for path in (tmp_path / "missing.jsonl", tmp_path / "no-dir" / "x.jsonl", empty):
        result = read_transcript(str(path), "codex", tail_scan=tail_scan)
        assert result.messages == []
        assert flags(result) == (False, False, False, 0, True)


# --------------------------------------------------------------------------- budgets


@pytest.mark.parametrize(
    ("value", "limit", "max_bytes"),
    [
        (None, 20, 24_000),
        (0, 1, 256),
        (-5, 1, 256),
        (2.7, 2, 256),
        (300.9, 300, 300),
        (10_000_000, 1000, 1_000_000),
        (float("nan"), 20, 24_000),
        (float("inf"), 20, 24_000),
        (float("-inf"), 20, 24_000),
    ],
)
def test_clamps(value: float | None, limit: int, max_bytes: int) -> None:
    assert tr.clamp_limit(value) == limit
    assert tr.clamp_max_bytes(value) == max_bytes


def test_two_short_messages_defaults_then_timestamps(tmp_path: Path) -> None:
    path = fx.write_jsonl(
        tmp_path / "t.jsonl", [fx.claude_text("user", "a"), fx.claude_text("assistant", "b")]
    )
    result = read_transcript(str(path), "claude-code")
    assert [m.as_dict() for m in result.messages] == [
        {"role": "user", "text": "a", "timestamp": None},
        {"role": "assistant", "text": "b", "timestamp": None},
    ]
    assert flags(result) == (False, False, False, 2, True)
    stamped = read_transcript(str(path), "claude-code", include_timestamps=True)
    assert [m.timestamp for m in stamped.messages] == ["2026-05-08T13:28:00.000Z"] * 2


def test_limit_keeps_newest(tmp_path: Path) -> None:
    path = fx.write_jsonl(tmp_path / "t.jsonl", [fx.claude_text("user", f"msg {i}") for i in range(30)])
    result = read_transcript(str(path), "claude-code", limit=5)
    assert texts(result) == [f"msg {i}" for i in range(25, 30)]
    assert flags(result) == (True, True, False, 30, True)


def test_one_big_message_is_cut_with_marker(tmp_path: Path) -> None:
    path = fx.write_jsonl(tmp_path / "t.jsonl", [fx.claude_text("user", "y" * 5000)])
    result = read_transcript(str(path), "claude-code", max_bytes=1000)
    assert texts(result) == ["y" * 1000 + "…[+4000B truncated]"]
    assert utf8len(result.messages[0].text) <= 1040
    assert flags(result) == (True, False, True, 1, True)


def test_byte_floor_applies_inside_reader(tmp_path: Path) -> None:
    lines = [fx.claude_text("user", c * 100) for c in "abc"]
    path = fx.write_jsonl(tmp_path / "t.jsonl", lines)
    result = read_transcript(str(path), "claude-code", max_bytes=150)
    assert texts(result) == ["a" * 56 + "…[+44B truncated]", "b" * 100, "c" * 100]
    assert flags(result) == (True, False, True, 3, True)


def test_exact_fit_is_not_truncation_and_zero_remaining_drops_silently(tmp_path: Path) -> None:
    two = [fx.claude_text("user", "b" * 100), fx.claude_text("assistant", "c" * 156)]
    path = fx.write_jsonl(tmp_path / "two.jsonl", two)
    result = read_transcript(str(path), "claude-code", max_bytes=256)
    assert texts(result) == ["b" * 100, "c" * 156]
    assert flags(result) == (False, False, False, 2, True)
    path = fx.write_jsonl(tmp_path / "three.jsonl", [fx.claude_text("user", "a" * 10), *two])
    result = read_transcript(str(path), "claude-code", max_bytes=256)
    assert texts(result) == ["b" * 100, "c" * 156]
    assert flags(result) == (True, False, True, 3, True)


def test_multibyte_never_split(tmp_path: Path) -> None:
    path = fx.write_jsonl(tmp_path / "e.jsonl", [fx.claude_text("user", "😀" * 1000)])
    result = read_transcript(str(path), "claude-code", max_bytes=1001)
    text = result.messages[0].text
    head, marker = text.split("…", 1)
    assert head == "😀" * 250 and utf8len(head) == 1000
    assert marker == "[+3000B truncated]"
    assert "\ufffd" not in text


def test_utf8_prefix_counts_lone_surrogates_as_three_bytes() -> None:
    assert tr.utf8_prefix("ab\ud800cd", 4) == "ab"
    assert tr.utf8_prefix("ab\ud800cd", 5) == "ab\ud800"
    assert tr.utf8_prefix("漢字", 5) == "漢"
    assert tr.utf8_prefix("漢字", 0) == ""


def test_limit_zero_and_huge_limit(tmp_path: Path) -> None:
    path = fx.write_jsonl(tmp_path / "t.jsonl", [fx.claude_text("user", f"m{i}") for i in range(1005)])
    assert texts(read_transcript(str(path), "claude-code", limit=0)) == ["m1004"]
    big = read_transcript(str(path), "claude-code", limit=10_000_000, max_bytes=1_000_000)
    assert len(big.messages) == 1000 and big.messages[0].text == "m5"
    nan = read_transcript(str(path), "claude-code", limit=float("nan"), max_bytes=float("inf"))
    assert len(nan.messages) == 20 and not nan.bytes_truncated


def test_codex_turns_under_both_budgets(tmp_path: Path) -> None:
    turns = [
        fx.codex_message("user" if i % 2 == 0 else "assistant", f"m{i}-" + "z" * 1000, timestamp=fx.ts(i))
        for i in range(8)
    ]
    path = fx.write_jsonl(tmp_path / fx.rollout_name(fx.CODEX_ID), [fx.codex_meta(), *turns])
    result = read_transcript(str(path), "codex", limit=3, max_bytes=2500)
    assert flags(result) == (True, True, True, 8, True)
    assert len(result.messages) == 3
    assert result.messages[-1].text == "m7-" + "z" * 1000
    assert result.messages[0].text.startswith("m5-")
    assert result.messages[0].text.endswith("…[+509B truncated]")
    assert all(m.timestamp is None for m in result.messages)
    newest = read_transcript(str(path), "codex", limit=1, include_timestamps=True)
    assert [m.as_dict() for m in newest.messages] == [
        {"role": "assistant", "text": "m7-" + "z" * 1000, "timestamp": "2026-05-08T13:28:07.000Z"}
    ]


# --------------------------------------------------------------------------- tail scan


def test_tail_scan_stops_at_limit(tmp_path: Path) -> None:
    path = fx.write_jsonl(tmp_path / "t.jsonl", [fx.claude_text("user", f"turn {i}") for i in range(10)])
    result = read_transcript(str(path), "claude-code", tail_scan=True, limit=2)
    assert texts(result) == ["turn 8", "turn 9"]
    assert flags(result) == (True, True, False, None, False)
    everything = read_transcript(str(path), "claude-code", tail_scan=True, limit=1000)
    assert texts(everything) == [f"turn {i}" for i in range(10)]
    assert flags(everything) == (False, False, False, 10, True)


def test_tail_scan_session_meta_first_is_inexact(tmp_path: Path) -> None:
    path = fx.write_jsonl(
        tmp_path / "r.jsonl",
        [fx.codex_meta(), fx.codex_message("user", "q"), fx.codex_message("assistant", "a")],
    )
    tail = read_transcript(str(path), "codex", tail_scan=True, limit=2)
    assert texts(tail) == ["q", "a"]
    assert flags(tail) == (True, True, False, None, False)
    full = read_transcript(str(path), "codex", limit=2)
    assert flags(full) == (False, False, False, 2, True)


def test_tail_scan_exact_when_first_line_is_the_limit_message(tmp_path: Path) -> None:
    path = fx.write_jsonl(tmp_path / "t.jsonl", [fx.claude_text("user", "x"), fx.claude_text("user", "y")])
    result = read_transcript(str(path), "claude-code", tail_scan=True, limit=2)
    assert texts(result) == ["x", "y"]
    assert flags(result) == (False, False, False, 2, True)


def _mixed_lines() -> list[fx.Line]:
    lines: list[fx.Line] = []
    for i in range(40):
        lines.append(fx.claude_text("user" if i % 3 else "assistant", f"{i} 🦊漢字 é" + "😀" * (i % 7)))
        if i % 5 == 0:
            lines += ["{broken", "", fx.claude_tool_result()]
    return lines


@pytest.mark.parametrize("chunk", [1, 16, 17, 23, 64, 4096])
@pytest.mark.parametrize("trailing_newline", [True, False])
def test_tail_scan_equals_full_scan(tmp_path: Path, chunk: int, trailing_newline: bool) -> None:
    path = fx.write_jsonl(tmp_path / "m.jsonl", _mixed_lines(), trailing_newline=trailing_newline)
    for limit in (1000, 7):
        for budget in (1_000_000, 300):
            kwargs = {"limit": limit, "max_bytes": budget, "include_timestamps": True}
            full = read_transcript(str(path), "claude-code", **kwargs)  # type: ignore[arg-type]
            tail = read_transcript(str(path), "claude-code", tail_scan=True, chunk=chunk, **kwargs)  # type: ignore[arg-type]
            assert tail.messages == full.messages
            assert tail.bytes_truncated == full.bytes_truncated
            if limit == 1000:
                assert flags(tail) == flags(full)
                assert tail.skipped_lines == full.skipped_lines == 8


def test_reverse_lines_never_split_multibyte_characters() -> None:
    data = "α\n😀😀\n漢字テスト\nend".encode()
    stream = io.BytesIO(data)
    lines = list(tr.iter_lines_reversed(stream, len(data), chunk=16))
    assert [(line.decode() if line is not None else None, first) for line, first in lines] == [
        ("end", False),
        ("漢字テスト", False),
        ("😀😀", False),
        ("α", True),
    ]


# --------------------------------------------------------------------------- huge files


LONG = b"short\n" + b"L" * 100 + b"\n" + b"x" * 40 + b"\nok"


def test_over_long_lines_are_yielded_as_none_forward() -> None:
    assert list(tr.iter_lines(io.BytesIO(LONG), max_line=50)) == [b"short", None, b"x" * 40, b"ok"]


def test_over_long_lines_are_yielded_as_none_backward() -> None:
    got = [line for line, _ in tr.iter_lines_reversed(io.BytesIO(LONG), len(LONG), 16, 50)]
    assert got == [b"ok", b"x" * 40, None, b"short"]


def test_over_long_first_line_backward() -> None:
    data = b"F" * 60 + b"\nok\n"
    got = list(tr.iter_lines_reversed(io.BytesIO(data), len(data), 16, 50))
    assert got == [(b"", False), (b"ok", False), (None, True)]


@pytest.mark.parametrize("tail_scan", [False, True])
def test_runaway_line_longer_than_cap_is_skipped(tmp_path: Path, tail_scan: bool) -> None:
    path = tmp_path / "runaway.jsonl"
    with open(path, "wb") as out:
        out.write(fx.encode_line(fx.claude_text("user", "first")) + b"\n")
        out.write(b'{"type":"user","message":{"role":"user","content":"')
        out.write(b"q" * (tr.MAX_LINE_BYTES + 1024))
        out.write(b'"}}\n')
        out.write(fx.encode_line(fx.claude_text("assistant", "last")) + b"\n")
    result = read_transcript(str(path), "claude-code", tail_scan=tail_scan, limit=10)
    assert texts(result) == ["first", "last"]
    assert result.skipped_lines == 1


@pytest.fixture(scope="module")
def huge_transcript(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    path = tmp_path_factory.mktemp("huge") / "huge.jsonl"
    count = fx.write_huge_claude(path, 30 * 1024 * 1024, ["tail one 🦊", "tail two", "tail three 漢字"])
    return path, count


def test_huge_file_full_scan(huge_transcript: tuple[Path, int]) -> None:
    path, count = huge_transcript
    assert path.stat().st_size >= 30 * 1024 * 1024
    result = read_transcript(str(path), "claude-code", limit=3)
    assert texts(result) == ["tail one 🦊", "tail two", "tail three 漢字"]
    assert flags(result) == (True, True, False, count, True)
    assert result.skipped_lines == count - 3


def test_huge_file_tail_scan_reads_only_the_end(huge_transcript: tuple[Path, int]) -> None:
    path, _ = huge_transcript
    started = time.perf_counter()
    result = read_transcript(str(path), "claude-code", limit=3, tail_scan=True)
    elapsed = time.perf_counter() - started
    assert texts(result) == ["tail one 🦊", "tail two", "tail three 漢字"]
    assert flags(result) == (True, True, False, None, False)
    assert elapsed < 0.5


# --------------------------------------------------------------------------- properties

_texts = st.text(min_size=0, max_size=40)
_junk = st.sampled_from(["", "{bad", "[]", "  ", '{"type":"summary"}'])


@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(
        st.one_of(_texts.map(lambda t: ("msg", t)), _junk.map(lambda j: ("junk", j))), max_size=30
    ),
    chunk=st.integers(min_value=1, max_value=120),
    limit=st.integers(min_value=1, max_value=40),
    budget=st.integers(min_value=256, max_value=2000),
    trailing=st.booleans(),
)
def test_tail_scan_agrees_with_full_scan(
    lines: list[tuple[str, str]], chunk: int, limit: int, budget: int, trailing: bool
) -> None:
    rendered: list[fx.Line] = [
        json.dumps(fx.claude_text("user", value)) if kind == "msg" else value for kind, value in lines
    ]
    with tempfile.TemporaryDirectory() as tmp:
        path = fx.write_jsonl(Path(tmp) / "p.jsonl", rendered, trailing_newline=trailing)
        full = read_transcript(str(path), "claude-code", limit=limit, max_bytes=budget)
        tail = read_transcript(
            str(path), "claude-code", limit=limit, max_bytes=budget, tail_scan=True, chunk=chunk
        )
    assert tail.messages == full.messages
    assert tail.bytes_truncated == full.bytes_truncated
    if not tail.count_truncated:
        assert flags(tail) == flags(full)
    originals = [value for kind, value in lines if kind == "msg" and value][-limit:]
    kept = [m.text for m in full.messages]
    # Everything but the oldest kept message is intact, and intact text never exceeds the budget.
    assert kept[1:] == originals[len(originals) - len(kept) + 1 :]
    intact = kept if not full.bytes_truncated else kept[1:]
    assert sum(utf8len(t) for t in intact) <= budget
    if not full.bytes_truncated:
        assert kept == originals
