"""Session-id detection: env and birth-time strategies, the diagnosis, enrichment, handshake merge (§7)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from oxtail_core.model import ClientInfo
from oxtail_core.wire import dumps
from oxtail_mcp.identity import session as d
from oxtail_mcp.identity.session import Abstain, Diagnosis, Hit
from tests.support import transcripts as fx

STARTED_AT = int(datetime(2026, 5, 8, 8, 21, 40, tzinfo=UTC).timestamp())
NOW_MS = STARTED_AT * 1000 + 60_000
CWD = "/home/dev/proj"
ID_A = "aaaaaaaa-1111-2222-3333-444444444444"
ID_B = "bbbbbbbb-1111-2222-3333-444444444444"
ID_C = "cccccccc-1111-2222-3333-444444444444"

CLAUDE_ENV_REASON = (
    "CLAUDE_CODE_SESSION_ID not in MCP env. Claude Code strips it from MCP children (verified across the "
    "full process tree); this is structural, not a bug. The var IS available inside Bash tool subshells."
)
CLAUDE_EMPTY_REASON = (
    "no transcript files in ~/.claude/projects/<encoded-cwd> for this cwd; "
    "agent may not have started a transcript yet."
)


def born(path: Path, ms: int) -> Path:
    """Create ``path`` (if needed) and give it ``ms`` as its birth time (mtime: Linux reports no birth)."""
    if not path.exists():
        fx.write_jsonl(path, [fx.claude_text("user", "x")])
    os.utime(path, ns=(ms * 1_000_000, ms * 1_000_000))
    return path


def claude_file(home: Path, session_id: str, ms: int, cwd: str = CWD) -> Path:
    return born(fx.claude_dir(home, cwd) / f"{session_id}.jsonl", ms)


# --------------------------------------------------------------------------- env strategy


def test_env_claude_hit_and_structural_abstain() -> None:
    assert d.env_strategy("claude-code", {"CLAUDE_CODE_SESSION_ID": ID_A}) == Hit(ID_A, "env", "high")
    for env in ({}, {"CLAUDE_CODE_SESSION_ID": ""}):
        outcome = d.env_strategy("claude-code", env)
        assert outcome == Abstain(CLAUDE_ENV_REASON, structural=True)
        assert list(outcome.as_dict()) == ["abstain", "structural", "reason"]


def test_env_codex_prefers_thread_id() -> None:
    env = {"CODEX_THREAD_ID": ID_A, "CODEX_COMPANION_SESSION_ID": ID_B}
    assert d.env_strategy("codex", env) == Hit(ID_A, "env", "high")
    assert d.env_strategy("codex", {"CODEX_COMPANION_SESSION_ID": ID_B}) == Hit(ID_B, "env", "high")
    abstain = d.env_strategy("codex", {"CODEX_SESSION_ID": ID_A})
    assert abstain.as_dict() == {"abstain": True, "reason": "CODEX_THREAD_ID is not in MCP env."}


def test_env_unknown_never_hits() -> None:
    env = {"CLAUDE_CODE_SESSION_ID": ID_A, "CODEX_THREAD_ID": ID_B}
    assert d.env_strategy("unknown", env).as_dict() == {
        "abstain": True,
        "reason": "client type unknown — no env var configured for this client.",
    }


# --------------------------------------------------------------------------- birth-time, claude


def birth(home: Path, started_at: int = STARTED_AT) -> d.Outcome:
    return d.birth_time_strategy("claude-code", CWD, started_at, home, NOW_MS)


def test_birth_one_second_after_start_hits(tmp_path: Path) -> None:
    claude_file(tmp_path, ID_A, STARTED_AT * 1000 + 1000)
    assert birth(tmp_path) == Hit(ID_A, "birth-time", "medium")
    assert birth(tmp_path).as_dict() == {"session_id": ID_A, "source": "birth-time", "confidence": "medium"}


def test_birth_window_bounds(tmp_path: Path) -> None:
    start = STARTED_AT * 1000
    claude_file(tmp_path, ID_A, start)  # delta 0: not post-start
    assert birth(tmp_path) == Abstain(
        "1 transcript(s) in dir but none post-date this MCP server's started_at; "
        "transcript hasn't been created yet (retries scheduled)."
    )
    claude_file(tmp_path, ID_A, start + 1)
    assert birth(tmp_path) == Hit(ID_A, "birth-time", "medium")
    claude_file(tmp_path, ID_A, start + 300_000)
    assert birth(tmp_path) == Hit(ID_A, "birth-time", "medium")
    claude_file(tmp_path, ID_A, start + 300_001)
    assert isinstance(birth(tmp_path), Abstain)


def test_birth_before_start_and_six_minutes_after_abstain(tmp_path: Path) -> None:
    claude_file(tmp_path, ID_A, STARTED_AT * 1000 - 5000)
    claude_file(tmp_path, ID_B, STARTED_AT * 1000 + 360_000)
    outcome = birth(tmp_path)
    assert outcome == Abstain(
        "2 transcript(s) in dir but none post-date this MCP server's started_at; "
        "transcript hasn't been created yet (retries scheduled)."
    )
    assert not outcome.structural


def test_birth_three_in_window_is_structurally_ambiguous(tmp_path: Path) -> None:
    for i, sid in enumerate((ID_A, ID_B, ID_C)):
        claude_file(tmp_path, sid, STARTED_AT * 1000 + 1000 * (i + 1))
    outcome = birth(tmp_path)
    assert outcome.as_dict() == {
        "abstain": True,
        "structural": True,
        "reason": "3 post-start transcripts in 5min window — ambiguous (multiple agents in this project). "
        "Cannot safely guess which is ours; call register_my_session.",
    }


def test_birth_no_directory_or_no_jsonl(tmp_path: Path) -> None:
    assert birth(tmp_path) == Abstain(CLAUDE_EMPTY_REASON)
    fx.write_jsonl(fx.claude_dir(tmp_path, CWD) / "notes.txt", ["x"])
    assert birth(tmp_path) == Abstain(CLAUDE_EMPTY_REASON)


def test_birth_worked_example_two_servers(tmp_path: Path) -> None:
    day = datetime(2026, 5, 8, tzinfo=UTC)

    def at(h: int, m: int, s: int) -> int:
        return int(day.replace(hour=h, minute=m, second=s).timestamp())

    claude_file(tmp_path, ID_A, at(8, 23, 10) * 1000)
    claude_file(tmp_path, ID_B, at(8, 23, 59) * 1000)
    older = birth(tmp_path, at(8, 21, 40))
    assert isinstance(older, Abstain) and older.structural and older.reason.startswith("2 post-start")
    assert birth(tmp_path, at(8, 23, 27)) == Hit(ID_B, "birth-time", "medium")


def test_birth_unknown_type() -> None:
    outcome = d.birth_time_strategy("unknown", CWD, STARTED_AT, Path("/nonexistent"), NOW_MS)
    assert outcome == Abstain("client type unknown — no transcript directory to scan.")


# --------------------------------------------------------------------------- birth-time, codex


def rollout(home: Path, name: str, first_line: fx.Line, ms: int) -> Path:
    ymd = datetime.fromtimestamp(NOW_MS / 1000, UTC).strftime("%Y/%m/%d")
    path = fx.write_jsonl(fx.codex_day_dir(home, ymd) / name, [first_line, fx.codex_message("user", "hi")])
    return born(path, ms)


def test_codex_candidates_filter_by_name_and_first_line_cwd(tmp_path: Path) -> None:
    ms = STARTED_AT * 1000 + 2000
    rollout(tmp_path, fx.rollout_name(ID_A), fx.codex_meta(ID_A, CWD), ms)
    rollout(tmp_path, fx.rollout_name(ID_B), fx.codex_meta(ID_B, "/elsewhere"), ms)
    rollout(tmp_path, fx.rollout_name(ID_C.upper()), fx.codex_meta(ID_C, CWD), ms)
    rollout(tmp_path, "rollout-no-uuid.jsonl", fx.codex_meta(ID_C, CWD), ms)
    rollout(tmp_path, f"rollout-{ID_C}.json", fx.codex_meta(ID_C, CWD), ms)
    rollout(tmp_path, f"x-{ID_C}-{ID_B}.jsonl", "{not json", ms)
    rollout(tmp_path, f"big-{ID_C}.jsonl", fx.codex_meta(ID_C, CWD) | {"pad": "p" * 300_000}, ms)
    assert d.codex_candidates(tmp_path, CWD, NOW_MS) == [(ID_A, ms)]
    assert d.birth_time_strategy("codex", CWD, STARTED_AT, tmp_path, NOW_MS) == Hit(
        ID_A, "birth-time", "medium"
    )


def codex_0171_meta(session_id: str, cwd: str) -> dict[str, object]:
    """A session_meta line shaped like Codex 0.171.0's: the base instructions inlined, ~27 KB in all."""
    instructions = "You are Codex, based on GPT. You are running as a coding agent in the Codex CLI. " * 330
    return {
        "timestamp": "2026-05-08T08:21:42.000Z",
        "type": "session_meta",
        "payload": {
            "id": session_id,
            "timestamp": "2026-05-08T08:21:42.000Z",
            "cwd": cwd,
            "originator": "codex_cli_rs",
            "cli_version": "0.171.0",
            "source": "vscode",
            "model_provider": "openai",
            "base_instructions": {"text": instructions},
        },
    }


def test_a_real_sized_codex_session_meta_line_identifies_the_thread(tmp_path: Path) -> None:
    meta = codex_0171_meta(ID_A, CWD)
    assert 26_000 < len(dumps(meta)) < 28_000
    rollout(tmp_path, fx.rollout_name(ID_A), meta, STARTED_AT * 1000 + 2000)
    assert d.birth_time_strategy("codex", CWD, STARTED_AT, tmp_path, NOW_MS, env={}) == Hit(
        ID_A, "birth-time", "medium"
    )


def test_an_unreadable_first_line_is_counted_not_called_missing(tmp_path: Path) -> None:
    meta = codex_0171_meta(ID_A, CWD) | {"pad": "p" * (300 * 1024)}
    rollout(tmp_path, fx.rollout_name(ID_A), meta, STARTED_AT * 1000 + 2000)
    outcome = d.birth_time_strategy("codex", CWD, STARTED_AT, tmp_path, NOW_MS, env={})
    assert isinstance(outcome, Abstain)
    assert outcome.reason.endswith(
        "1 rollout(s) there had a first line that is not JSON or is over 262144 bytes, and were skipped."
    )


def test_codex_home_moves_the_birth_time_scan(tmp_path: Path) -> None:
    elsewhere = tmp_path / "codex-elsewhere"
    ymd = datetime.fromtimestamp(NOW_MS / 1000, UTC).strftime("%Y/%m/%d")
    path = fx.write_jsonl(elsewhere / "sessions" / ymd / fx.rollout_name(ID_A), [codex_0171_meta(ID_A, CWD)])
    born(path, STARTED_AT * 1000 + 2000)
    env = {"CODEX_HOME": str(elsewhere)}
    assert d.birth_time_strategy("codex", CWD, STARTED_AT, tmp_path, NOW_MS, env=env) == Hit(
        ID_A, "birth-time", "medium"
    )
    missing = d.birth_time_strategy("codex", CWD, STARTED_AT, tmp_path, NOW_MS, env={})
    assert isinstance(missing, Abstain) and "~/.codex/sessions/<recent>" in missing.reason
    moved = d.birth_time_strategy("codex", "/other", STARTED_AT, tmp_path, NOW_MS, env=env)
    assert isinstance(moved, Abstain) and f"{elsewhere / 'sessions'}/<recent>" in moved.reason


def test_claude_config_dir_moves_the_birth_time_scan(tmp_path: Path) -> None:
    config = tmp_path / "alt"
    cwd = "/home/dev/my.proj_x y"
    born(config / "projects" / "-home-dev-my-proj-x-y" / f"{ID_A}.jsonl", STARTED_AT * 1000 + 2000)
    env = {"CLAUDE_CONFIG_DIR": str(config)}
    assert d.birth_time_strategy("claude-code", cwd, STARTED_AT, tmp_path, NOW_MS, env=env) == Hit(
        ID_A, "birth-time", "medium"
    )
    assert d.birth_time_strategy("claude-code", cwd, STARTED_AT, tmp_path, NOW_MS, env={}) == Abstain(
        CLAUDE_EMPTY_REASON
    )
    client, _ = d.enrich(ClientInfo(type="claude-code", cwd=cwd), STARTED_AT, env, tmp_path, NOW_MS)
    assert client.transcript_path == str(config / "projects" / "-home-dev-my-proj-x-y" / f"{ID_A}.jsonl")


def test_codex_candidate_id_is_first_uuid_in_name(tmp_path: Path) -> None:
    rollout(tmp_path, f"rollout-{ID_B}-{ID_A}.jsonl", fx.codex_meta(ID_A, CWD), STARTED_AT * 1000 + 5)
    assert [sid for sid, _ in d.codex_candidates(tmp_path, CWD, NOW_MS)] == [ID_B]


def test_codex_missing_directories(tmp_path: Path) -> None:
    reason = (
        "no transcript files in ~/.codex/sessions/<recent> for this cwd; "
        "agent may not have started a transcript yet."
    )
    assert d.birth_time_strategy("codex", CWD, STARTED_AT, tmp_path, NOW_MS) == Abstain(reason)
    (tmp_path / ".codex" / "sessions").mkdir(parents=True)
    assert d.birth_time_strategy("codex", CWD, STARTED_AT, tmp_path, NOW_MS) == Abstain(reason)


# --------------------------------------------------------------------------- diagnosis


def test_diagnosis_unresolved_claude_matches_spec_text(tmp_path: Path) -> None:
    diagnosis = d.diagnose("claude-code", CWD, started_at=STARTED_AT, env={}, home=tmp_path, now_ms=NOW_MS)
    assert dumps(diagnosis.as_dict()) == (
        '{"per_strategy":{'
        '"env":{"abstain":true,"structural":true,'
        '"reason":"CLAUDE_CODE_SESSION_ID not in MCP env. Claude Code '
        "strips it from MCP children (verified across the full process tree); this is structural, not a bug. "
        'The var IS available inside Bash tool subshells."},'
        '"hook-drop":{"abstain":true,"reason":"no SessionStart drop for this cwd — sessionstart.sh hook not '
        "installed, or it hasn't fired yet (retries scheduled).\"},"
        '"birth-time":{"abstain":true,"reason":"no transcript files in ~/.claude/projects/<encoded-cwd> for '
        'this cwd; agent may not have started a transcript yet."}},'
        '"winning":null,'
        '"next_step":{"tool":"register_my_session","instruction":"Read your own session id from a Bash tool '
        'subshell, then call register_my_session({ session_id }).",'
        '"bash_command":"echo $CLAUDE_CODE_SESSION_ID"}}'
    )
    assert not diagnosis.all_structural()


def test_diagnosis_codex_next_step(tmp_path: Path) -> None:
    diagnosis = d.diagnose("codex", CWD, started_at=STARTED_AT, env={}, home=tmp_path, now_ms=NOW_MS)
    assert diagnosis.as_dict()["next_step"]["bash_command"] == "echo $CODEX_THREAD_ID"
    for outcome in diagnosis.as_dict()["per_strategy"].values():
        assert outcome.get("session_id") or outcome["reason"]


def test_diagnosis_env_wins_first_and_both_run(tmp_path: Path) -> None:
    claude_file(tmp_path, ID_B, STARTED_AT * 1000 + 1000)
    diagnosis = d.diagnose(
        "claude-code",
        CWD,
        started_at=STARTED_AT,
        env={"CLAUDE_CODE_SESSION_ID": ID_A},
        home=tmp_path,
        now_ms=NOW_MS,
    )
    out = diagnosis.as_dict()
    assert list(out) == ["per_strategy", "winning", "next_step"]
    assert list(out["per_strategy"]) == ["env", "hook-drop", "birth-time"]
    assert out["per_strategy"]["birth-time"] == {
        "session_id": ID_B,
        "source": "birth-time",
        "confidence": "medium",
    }
    assert out["winning"] == {"session_id": ID_A, "source": "env", "confidence": "high", "strategy": "env"}
    assert list(out["winning"]) == ["session_id", "source", "confidence", "strategy"]
    assert out["next_step"] is None


def test_birth_time_winner_and_trace_fields(tmp_path: Path) -> None:
    claude_file(tmp_path, ID_B, STARTED_AT * 1000 + 1000)
    diagnosis = d.diagnose("claude-code", CWD, started_at=STARTED_AT, env={}, home=tmp_path, now_ms=NOW_MS)
    assert diagnosis.winning_dict() == {
        "session_id": ID_B,
        "source": "birth-time",
        "confidence": "medium",
        "strategy": "birth-time",
    }
    fields = diagnosis.trace_fields("retry+1000ms")
    assert list(fields) == ["trigger", "winning_strategy", "session_id", "per_strategy", "next_step"]
    assert (fields["trigger"], fields["winning_strategy"], fields["session_id"]) == (
        "retry+1000ms",
        "birth-time",
        ID_B,
    )


def test_all_structural_only_when_every_strategy_is(tmp_path: Path) -> None:
    for sid in (ID_A, ID_B):
        claude_file(tmp_path, sid, STARTED_AT * 1000 + 1000)
    waiting = d.diagnose("claude-code", CWD, started_at=STARTED_AT, env={}, home=tmp_path, now_ms=NOW_MS)
    assert not waiting.all_structural()  # no SessionStart drop yet: the hook-drop retries may still help
    drops = tmp_path / ".oxtail" / "session-starts"
    drops.mkdir(parents=True)
    for sid in (ID_A, ID_B):  # two unconfirmed drops for this cwd: hook-drop cannot decide either
        payload = {"session_id": sid, "cwd": CWD}
        drop = {"schema_version": 1, "ppid": 1, "written_at": STARTED_AT, "payload": payload}
        (drops / sid).write_text(json.dumps(drop))
    ambiguous = d.diagnose("claude-code", CWD, started_at=STARTED_AT, env={}, home=tmp_path, now_ms=NOW_MS)
    assert ambiguous.all_structural()
    codex = d.diagnose("codex", CWD, started_at=STARTED_AT, env={}, home=tmp_path, now_ms=NOW_MS)
    assert not codex.all_structural()
    assert not Diagnosis().all_structural()


def test_known_id_and_skipped_diagnoses() -> None:
    assert dumps(d.known_id_diagnosis(ID_A, None).as_dict()) == (
        '{"per_strategy":{},"winning":{"session_id":"' + ID_A + '","source":"self-register",'
        '"confidence":"high","strategy":"self-register"},"next_step":null}'
    )
    assert d.known_id_diagnosis(ID_A, "sticky-claim").as_dict()["winning"]["strategy"] == "sticky-claim"
    assert Diagnosis().as_dict() == {"per_strategy": {}, "winning": None, "next_step": None}


# --------------------------------------------------------------------------- enrichment


def test_enrich_skips_known_id_and_unknown_type(tmp_path: Path) -> None:
    claude_file(tmp_path, ID_B, STARTED_AT * 1000 + 1000)
    held = ClientInfo(type="claude-code", session_id=ID_A, session_id_source="self-register", cwd=CWD)
    assert d.enrich(held, STARTED_AT, {}, tmp_path, NOW_MS) == (held, None)
    unknown = ClientInfo(type="unknown", cwd=CWD)
    assert d.enrich(unknown, STARTED_AT, {"CLAUDE_CODE_SESSION_ID": ID_A}, tmp_path, NOW_MS) == (
        unknown,
        None,
    )


def test_enrich_adopts_winner_with_transcript(tmp_path: Path) -> None:
    path = claude_file(tmp_path, ID_B, STARTED_AT * 1000 + 1000)
    client, diagnosis = d.enrich(ClientInfo(type="claude-code", cwd=CWD), STARTED_AT, {}, tmp_path, NOW_MS)
    assert client == ClientInfo(
        type="claude-code",
        session_id=ID_B,
        transcript_path=str(path),
        session_id_source="birth-time",
        cwd=CWD,
    )
    assert diagnosis is not None and diagnosis.winning_strategy == "birth-time"


def test_enrich_empty_id_counts_as_missing(tmp_path: Path) -> None:
    client = ClientInfo(type="claude-code", session_id="", cwd=CWD)
    enriched, diagnosis = d.enrich(client, STARTED_AT, {}, tmp_path, NOW_MS)
    assert enriched == client
    assert diagnosis is not None and diagnosis.winning is None


# --------------------------------------------------------------------------- handshake merge


def test_merge_without_live_id_takes_fresh_wholesale(tmp_path: Path) -> None:
    live = ClientInfo(type="unknown", cwd=CWD)
    fresh = ClientInfo(
        type="claude-code", session_id=ID_A, transcript_path="/t", session_id_source="env", cwd=CWD
    )
    assert d.merge_handshake(live, fresh, tmp_path, NOW_MS) == d.Merge(fresh, True)
    assert d.merge_handshake(live, live, tmp_path, NOW_MS) == d.Merge(live, False)


def test_merge_keeps_live_id_and_reports_the_other(tmp_path: Path) -> None:
    live = ClientInfo(type="claude-code", session_id=ID_A, session_id_source="self-register", cwd=CWD)
    fresh = ClientInfo(type="claude-code", session_id=ID_B, session_id_source="env", cwd=CWD)
    merged = d.merge_handshake(live, fresh, tmp_path, NOW_MS)
    assert merged.client.session_id == ID_A and merged.client.session_id_source == "self-register"
    assert merged.client.transcript_path == str(fx.claude_dir(tmp_path, CWD) / f"{ID_A}.jsonl")
    assert merged.changed
    assert merged.preserved == {
        "existing_session_id": ID_A,
        "existing_source": "self-register",
        "detected_session_id": ID_B,
        "detected_source": "env",
    }


def test_merge_same_id_in_other_case_is_not_a_conflict(tmp_path: Path) -> None:
    live = ClientInfo(type="claude-code", session_id=ID_A, session_id_source="env", cwd=CWD)
    fresh = ClientInfo(type="claude-code", session_id=ID_A.upper(), session_id_source="env", cwd=CWD)
    assert d.merge_handshake(live, fresh, tmp_path, NOW_MS).preserved is None


def test_merge_unknown_fresh_type_and_empty_cwd_keep_live(tmp_path: Path) -> None:
    live = ClientInfo(
        type="codex", session_id=ID_A, transcript_path="/old", session_id_source="sticky-claim", cwd=CWD
    )
    merged = d.merge_handshake(live, ClientInfo(type="unknown", cwd=""), tmp_path, NOW_MS)
    # Codex search finds nothing, so the live path survives; nothing changed at all.
    assert merged == d.Merge(live, False)


def test_merge_refines_type_of_a_claimed_unknown_client(tmp_path: Path) -> None:
    live = ClientInfo(type="unknown", session_id=ID_A, session_id_source="self-register", cwd=CWD)
    fresh = ClientInfo(type="claude-code", cwd="/home/dev/other")
    merged = d.merge_handshake(live, fresh, tmp_path, NOW_MS)
    assert merged.client == ClientInfo(
        type="claude-code",
        session_id=ID_A,
        transcript_path=str(fx.claude_dir(tmp_path, "/home/dev/other") / f"{ID_A}.jsonl"),
        session_id_source="self-register",
        cwd="/home/dev/other",
    )
    assert merged.changed and merged.preserved is None


@pytest.mark.parametrize("structural", [True, False])
def test_abstain_key_order(structural: bool) -> None:
    keys = list(Abstain("r", structural).as_dict())
    assert keys == (["abstain", "structural", "reason"] if structural else ["abstain", "reason"])
