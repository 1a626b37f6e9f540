"""The hook-drop adoption rule (selfheal §3.2), on drops written to a temp state dir, with the server's
ancestors and the clock given: S23, S26-S29, S31 and the cases the reference left ambiguous."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oxtail_mcp.identity import hookdrop
from oxtail_mcp.identity import session as d
from oxtail_mcp.identity.hookdrop import Adoption, adopt

STARTED_AT = 1_800_000_000
NOW_MS = STARTED_AT * 1000 + 60_000
CLAUDE = (4242, 1_799_999_000.25)  # (pid, start) of "our" Claude Code process
OTHER = (5151, 1_799_999_500.5)
ID_A = "aaaaaaaa-1111-2222-3333-444444444444"
ID_B = "bbbbbbbb-1111-2222-3333-444444444444"


@pytest.fixture
def cwd(tmp_path: Path) -> str:
    project = tmp_path / "proj"
    project.mkdir()
    return str(project)


def put(
    state: Path,
    session_id: str,
    cwd: str,
    proc: tuple[int, float] | None = CLAUDE,
    *,
    written_at: float = STARTED_AT,
    name: str | None = None,
    **extra: Any,
) -> Path:
    drop: dict[str, Any] = {
        "schema_version": 1,
        "ppid": proc[0] if proc else 1,
        "ppid_sig": "",
        "written_at": written_at,
        "payload": {"session_id": session_id, "cwd": cwd},
        "client": "claude-code",
    }
    if proc is not None:
        drop["client_start"] = proc[1]
    drop.update(extra)
    path = state / "session-starts" / (name or session_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(drop))
    return path


def run(
    state: Path, cwd: str, *, ancestors: Any = (CLAUDE,), now_ms: int = NOW_MS, kind: str = "claude-code"
):
    return adopt(
        kind, cwd, started_at=STARTED_AT, state_dir=state, now_ms=now_ms, ancestors=lambda: ancestors
    )


def test_no_drop_abstains_and_retries_may_help(tmp_path: Path, cwd: str) -> None:
    assert run(tmp_path, cwd) == Adoption(None, None, hookdrop.REASON_NO_DROP)


def test_the_drop_of_an_ancestor_is_adopted_with_high_confidence(tmp_path: Path, cwd: str) -> None:
    put(tmp_path, ID_A, cwd)
    assert run(tmp_path, cwd, ancestors=[(77, 1.0), CLAUDE]) == Adoption(ID_A, "high", None)


def test_a_start_time_within_the_tick_tolerance_confirms_and_one_beyond_does_not(
    tmp_path: Path, cwd: str
) -> None:
    put(tmp_path, ID_A, cwd, written_at=STARTED_AT - 600)  # old: only confirmation can adopt it
    assert run(tmp_path, cwd, ancestors=[(CLAUDE[0], CLAUDE[1] + 0.01)]).session_id == ID_A
    recycled = run(tmp_path, cwd, ancestors=[(CLAUDE[0], CLAUDE[1] + 5)])  # same pid, another process
    assert recycled.session_id is None and recycled.reason == hookdrop.REASON_LEFTOVER


def test_a_double_spaced_lstart_signature_plays_no_part(tmp_path: Path, cwd: str) -> None:
    """S23: the reference's writer kept ``Tue Jun  9`` raw; we compare start times, never that text."""
    put(tmp_path, ID_A, cwd, ppid_sig="Tue Jun  9 10:11:12 2026")
    assert run(tmp_path, cwd).session_id == ID_A


def test_a_reference_drop_without_a_start_time_can_only_win_unconfirmed(tmp_path: Path, cwd: str) -> None:
    put(tmp_path, ID_A, cwd, proc=None, ppid_sig="Tue Jun  9 10:11:12 2026")
    assert run(tmp_path, cwd) == Adoption(ID_A, "medium", None)


def test_dot_temps_and_unreadable_drops_are_never_read_nor_removed(tmp_path: Path, cwd: str) -> None:
    """S26: a half-written drop sits under a dot-name; it is skipped, and left alone."""
    temp = put(tmp_path, ID_A, cwd, name=f".{ID_A}.tmp.123.abcd")
    (temp.parent / "garbage").write_text("{not json")
    (temp.parent / "big").write_bytes(b" " * (hookdrop.MAX_DROP_BYTES + 1))
    os.symlink(temp, temp.parent / "link")
    assert run(tmp_path, cwd).reason == hookdrop.REASON_NO_DROP
    assert sorted(p.name for p in temp.parent.iterdir()) == sorted([temp.name, "garbage", "big", "link"])


def test_two_sessions_in_one_cwd_each_adopt_the_drop_of_their_own_client(tmp_path: Path, cwd: str) -> None:
    """S27."""
    put(tmp_path, ID_A, cwd, CLAUDE)
    put(tmp_path, ID_B, cwd, OTHER)
    assert run(tmp_path, cwd, ancestors=[CLAUDE]).session_id == ID_A
    assert run(tmp_path, cwd, ancestors=[OTHER]).session_id == ID_B
    broken = run(tmp_path, cwd, ancestors=[(9, 9.0)])
    assert broken == Adoption(None, None, hookdrop.reason_unmatched(2), structural=True)


def test_a_neighbours_fresh_drop_waits_ten_seconds_and_an_old_one_is_never_adopted(
    tmp_path: Path, cwd: str
) -> None:
    """S28: our own drop is late; the only drop is somebody else's."""
    put(tmp_path, ID_A, cwd, OTHER, written_at=STARTED_AT + 1)
    early = run(tmp_path, cwd, now_ms=STARTED_AT * 1000 + 9_999)
    assert early == Adoption(None, None, hookdrop.REASON_TOO_EARLY)
    assert run(tmp_path, cwd, now_ms=STARTED_AT * 1000 + 10_000) == Adoption(ID_A, "medium", None)
    put(tmp_path, ID_A, cwd, OTHER, written_at=STARTED_AT - 121)
    assert run(tmp_path, cwd, now_ms=NOW_MS + 86_400_000) == Adoption(None, None, hookdrop.REASON_LEFTOVER)


def test_written_at_zero_is_never_fresh_and_never_pruned_and_a_month_old_drop_is(
    tmp_path: Path, cwd: str
) -> None:
    """S29."""
    zero = put(tmp_path, ID_A, cwd, OTHER, written_at=0)
    assert run(tmp_path, cwd).reason == hookdrop.REASON_LEFTOVER
    old = put(tmp_path, ID_B, cwd, OTHER, written_at=STARTED_AT - 31 * 86_400)
    run(tmp_path, cwd)
    assert zero.exists() and not old.exists()


def test_a_symlinked_project_path_matches_after_realpath(tmp_path: Path, cwd: str) -> None:
    """S31."""
    link = tmp_path / "link"
    link.symlink_to(cwd)
    put(tmp_path, ID_A, str(link))
    assert run(tmp_path, cwd).session_id == ID_A
    assert run(tmp_path, str(link)).session_id == ID_A


def test_after_clear_the_newest_drop_of_the_same_client_process_wins(tmp_path: Path, cwd: str) -> None:
    """``/clear`` starts a new session in the same Claude Code process: both drops are confirmed."""
    put(tmp_path, ID_A, cwd, written_at=STARTED_AT)
    put(tmp_path, ID_B, cwd, written_at=STARTED_AT + 30)
    assert run(tmp_path, cwd) == Adoption(ID_B, "high", None)


def test_confirmed_drops_of_two_client_processes_are_ambiguous(tmp_path: Path, cwd: str) -> None:
    put(tmp_path, ID_A, cwd, CLAUDE)
    put(tmp_path, ID_B, cwd, OTHER)
    assert run(tmp_path, cwd, ancestors=[CLAUDE, OTHER]) == Adoption(None, None, hookdrop.reason_ambiguous(2))


def test_a_codex_drop_is_not_adopted_by_a_claude_server_and_vice_versa(tmp_path: Path, cwd: str) -> None:
    put(tmp_path, ID_A, cwd, client="codex")
    assert run(tmp_path, cwd).reason == hookdrop.REASON_NO_DROP
    assert run(tmp_path, cwd, kind="codex") == Adoption(ID_A, "high", None)
    unknown = run(tmp_path, cwd, kind="unknown")
    assert unknown == Adoption(None, None, hookdrop.REASON_UNKNOWN, structural=True)


def test_one_session_written_by_both_hooks_counts_once(tmp_path: Path, cwd: str) -> None:
    """The reference's sessionstart.sh and ours, for one session: one candidate, ours confirmed."""
    put(tmp_path, ID_A, cwd, proc=None, name="reference-name")
    put(tmp_path, ID_A, cwd)
    assert run(tmp_path, cwd, ancestors=[(1, 1.0)]) == Adoption(ID_A, "medium", None)
    assert run(tmp_path, cwd) == Adoption(ID_A, "high", None)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "a b", "x" * 129, ""])
def test_an_id_that_could_not_name_a_transcript_is_never_adopted(tmp_path: Path, cwd: str, bad: str) -> None:
    put(tmp_path, bad or "empty", cwd, name="bad")
    path = tmp_path / "session-starts" / "bad"
    drop = json.loads(path.read_text())
    drop["payload"]["session_id"] = bad
    path.write_text(json.dumps(drop))
    assert run(tmp_path, cwd).reason == hookdrop.REASON_NO_DROP


def test_diagnose_runs_hook_drop_between_env_and_birth_time_and_it_wins(tmp_path: Path, cwd: str) -> None:
    put(tmp_path / ".oxtail", ID_A, cwd)
    diagnosis = d.diagnose(
        "claude-code",
        cwd,
        started_at=STARTED_AT,
        env={},
        home=tmp_path,
        now_ms=NOW_MS,
        ancestors=lambda: [CLAUDE],
    )
    assert list(diagnosis.per_strategy) == ["env", "hook-drop", "birth-time"]
    assert diagnosis.winning_dict() == {
        "session_id": ID_A,
        "source": "hook-drop",
        "confidence": "high",
        "strategy": "hook-drop",
    }
    known = d.known_id_diagnosis(ID_A, "hook-drop").winning_dict()
    assert known is not None and known["confidence"] == "medium"


def test_only_the_newest_drops_are_read_so_a_crowded_directory_still_finds_a_fresh_one(
    tmp_path: Path, cwd: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hookdrop, "MAX_DROPS", 3)
    stale = []
    for n in range(5):
        path = put(tmp_path, f"old-{n}", "/elsewhere", OTHER, name=f"old{n}")
        os.utime(path, (STARTED_AT - 40 * 86_400 + n, STARTED_AT - 40 * 86_400 + n))
        stale.append(path)
    fresh = put(tmp_path, ID_A, cwd, name="zzz-fresh")  # sorts last by name, first by mtime
    os.utime(fresh, (STARTED_AT, STARTED_AT))
    assert run(tmp_path, cwd).session_id == ID_A
    assert [p.exists() for p in stale] == [False, False, False, True, True]  # past the cap and a month old


PROCS = [(4242, 1_799_999_000.25), (5151, 1_799_999_500.5), (6060, 1_799_999_900.0)]
SESSIONS = [f"{n:08x}-1111-2222-3333-444444444444" for n in range(1, 6)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    drops=st.lists(
        st.tuples(
            st.sampled_from(SESSIONS),
            st.booleans(),  # our cwd?
            st.sampled_from(["claude-code", "codex"]),
            st.none() | st.sampled_from(PROCS),
            st.integers(STARTED_AT - 600, STARTED_AT + 600) | st.just(0),
        ),
        max_size=6,
    ),
    chain=st.lists(st.sampled_from(PROCS), max_size=3),
    since_start_ms=st.integers(0, 60_000),
)
def test_an_adoption_is_always_one_the_rule_allows(
    tmp_path_factory: pytest.TempPathFactory,
    drops: list[tuple[str, bool, str, tuple[int, float] | None, int]],
    chain: list[tuple[int, float]],
    since_start_ms: int,
) -> None:
    """Whatever the drops, ancestors and clock: a high hit is confirmed by an ancestor, a medium hit is
    the only candidate and neither stale nor too early, and nothing of another cwd or client is taken."""
    state = tmp_path_factory.mktemp("state")
    ours, other = str(state / "proj"), str(state / "other")
    os.mkdir(ours)
    for n, (session, here, kind, proc, at) in enumerate(drops):
        put(state, session, ours if here else other, proc, written_at=at, name=f"d{n}", client=kind)
    got = run(state, ours, ancestors=chain, now_ms=STARTED_AT * 1000 + since_start_ms)
    if got.session_id is None:
        return
    mine = [
        (proc, at)
        for s, here, kind, proc, at in drops
        if s == got.session_id and here and kind == "claude-code"
    ]
    assert mine, "adopted a session with no drop for this cwd and client type"
    if got.confidence == "high":
        assert any(proc is not None and proc in chain for proc, _ in mine)
    else:
        candidates = {s for s, here, kind, _, _ in drops if here and kind == "claude-code"}
        assert got.confidence == "medium" and candidates == {got.session_id}
        assert since_start_ms >= 10_000
        assert any(at * 1000 >= STARTED_AT * 1000 - 120_000 for _, at in mine)
