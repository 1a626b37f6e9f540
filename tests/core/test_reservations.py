"""Reservation flows on a fake clock: never blocking, renewals, TTL, holder death with its grace,
release, and the guard's rule (who blocks a path)."""

from __future__ import annotations

import pytest

from oxtail_core import Context, FakeClock
from oxtail_core.memory import MemoryHost, MemoryStore, RecordingWaker
from oxtail_core.peer import Peer
from oxtail_core.reservations import GRACE_DEFAULT_MS, TTL_MAX_S, TTL_MIN_S, blocking, covering
from oxtail_core.reserving import NOTICE_WINDOW_MS, Notices, current, notify_holders, release, reserve
from oxtail_core.routing import publish
from oxtail_core.testing.races import entry
from oxtail_core.wildmatch import PatternError

PROJECT = "/work/p"
A_SID, B_SID = "aaaaaaaa-0000-4000-8000-000000000001", "bbbbbbbb-0000-4000-8000-000000000002"


class World:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.host = MemoryHost()
        self.ctx = Context(store=MemoryStore(), waker=RecordingWaker(), clock=self.clock, host=self.host)
        self.a = entry(101, A_SID, tmux_session="alpha")
        self.b = entry(102, B_SID, tmux_session="beta")
        publish(self.ctx, self.a)
        publish(self.ctx, self.b)


@pytest.fixture
def w() -> World:
    return World()


def test_a_reserve_grants_free_patterns_and_reports_the_holder_of_taken_ones(w: World) -> None:
    got = reserve(w.ctx, w.a, PROJECT, ["src/*.py"], reason="refactor")
    assert got.view() == {"granted": ["src/*.py"], "conflicts": [], "expires_at": got.expires_at}
    assert got.expires_at == w.clock.now_ms() + 3_600_000
    theirs = reserve(w.ctx, w.b, PROJECT, ["src/a.py", "docs/"])
    assert theirs.view() == {
        "granted": ["docs/"],
        "conflicts": [
            {
                "pattern": "src/a.py",
                "holder_session_id": A_SID,
                "holder_tmux": "alpha",
                "client_type": "claude-code",
                "reason": "refactor",
                "exclusive": True,
                "expires_at": got.expires_at,
            }
        ],
        "expires_at": w.clock.now_ms() + 3_600_000,
    }


def test_shared_reservations_coexist_but_an_exclusive_one_conflicts_with_them(w: World) -> None:
    assert reserve(w.ctx, w.a, PROJECT, ["docs/**"], exclusive=False).granted == ("docs/**",)
    assert reserve(w.ctx, w.b, PROJECT, ["docs/guide.md"], exclusive=False).granted == ("docs/guide.md",)
    taken = reserve(w.ctx, w.b, PROJECT, ["docs/api.md"], exclusive=True)
    assert taken.granted == () and taken.conflicts[0].held.holder_session_id == A_SID


def test_my_own_reservations_never_conflict_and_re_reserving_renews(w: World) -> None:
    first = reserve(w.ctx, w.a, PROJECT, ["src/**"], ttl_s=600)
    w.clock.advance(500_000)
    again = reserve(w.ctx, w.a, PROJECT, ["src/**", "src/a.py"], ttl_s=600, reason="still at it")
    assert again.granted == ("src/**", "src/a.py") and again.conflicts == ()
    assert first.expires_at is not None and again.expires_at == first.expires_at + 500_000
    held = {r.pattern: r for r in current(w.ctx, PROJECT)}
    assert held["src/**"].expires_at == again.expires_at and held["src/**"].reason == "still at it"
    w.clock.advance(200_000)  # past the first TTL, inside the renewed one
    assert [r.pattern for r in current(w.ctx, PROJECT)] == ["src/**", "src/a.py"]


def test_a_reservation_ends_at_its_ttl(w: World) -> None:
    reserve(w.ctx, w.a, PROJECT, ["a.py"], ttl_s=60)
    w.clock.advance(59_999)
    assert reserve(w.ctx, w.b, PROJECT, ["a.py"]).granted == ()
    w.clock.advance(1)
    assert reserve(w.ctx, w.b, PROJECT, ["a.py"]).granted == ("a.py",)


def test_the_ttl_is_clamped_to_its_bounds(w: World) -> None:
    now = w.clock.now_ms()
    assert reserve(w.ctx, w.a, PROJECT, ["x"], ttl_s=1).expires_at == now + TTL_MIN_S * 1000
    assert reserve(w.ctx, w.a, PROJECT, ["x"], ttl_s=10**9).expires_at == now + TTL_MAX_S * 1000


def test_the_holders_death_ends_its_reservations_after_the_grace_not_before(w: World) -> None:
    reserve(w.ctx, w.a, PROJECT, ["src/*.py"])
    w.host.kill(w.a.server_pid)
    stopped = reserve(w.ctx, w.b, PROJECT, ["src/a.py"])  # first seen without a server: the grace starts
    assert stopped.granted == () and stopped.conflicts[0].held.orphaned_at == w.clock.now_ms()
    w.clock.advance(GRACE_DEFAULT_MS - 1)
    assert reserve(w.ctx, w.b, PROJECT, ["src/a.py"]).granted == ()
    w.clock.advance(1)
    assert reserve(w.ctx, w.b, PROJECT, ["src/a.py"]).granted == ("src/a.py",)
    assert [r.holder_session_id for r in current(w.ctx, PROJECT)] == [B_SID]


def test_a_server_restart_within_the_grace_keeps_the_sessions_reservations(w: World) -> None:
    reserve(w.ctx, w.a, PROJECT, ["src/*.py"])
    w.host.kill(w.a.server_pid)
    assert current(w.ctx, PROJECT)[0].orphaned_at == w.clock.now_ms()
    w.clock.advance(GRACE_DEFAULT_MS // 2)
    publish(w.ctx, entry(201, A_SID))  # the same session, a new server
    w.clock.advance(GRACE_DEFAULT_MS)
    (kept,) = current(w.ctx, PROJECT)
    assert kept.holder_session_id == A_SID and kept.orphaned_at is None
    assert reserve(w.ctx, w.b, PROJECT, ["src/a.py"]).granted == ()


def test_release_drops_the_named_patterns_or_all_of_mine_and_never_anyone_elses(w: World) -> None:
    reserve(w.ctx, w.a, PROJECT, ["a", "b", "c"])
    reserve(w.ctx, w.b, PROJECT, ["d"])
    assert release(w.ctx, w.a, PROJECT, ["b", "zzz"]) == ["b"]
    assert release(w.ctx, w.b, PROJECT, ["a"]) == []
    assert release(w.ctx, w.a, PROJECT) == ["a", "c"]
    assert [r.pattern for r in current(w.ctx, PROJECT)] == ["d"]


def test_projects_do_not_see_each_others_reservations(w: World) -> None:
    reserve(w.ctx, w.a, PROJECT, ["src/**"])
    assert reserve(w.ctx, w.b, "/work/other", ["src/a.py"]).granted == ("src/a.py",)


def test_a_session_without_an_id_cannot_reserve(w: World) -> None:
    with pytest.raises(ValueError, match="claim_session"):
        reserve(w.ctx, entry(300, None), PROJECT, ["a"])


def test_a_malformed_pattern_refuses_the_whole_call_and_reserves_nothing(w: World) -> None:
    with pytest.raises(PatternError, match="unclosed"):
        reserve(w.ctx, w.a, PROJECT, ["ok.py", "bad["])
    assert current(w.ctx, PROJECT) == []


def test_the_guard_rule_blocks_only_other_sessions_exclusive_reservations_covering_the_path(
    w: World,
) -> None:
    reserve(w.ctx, w.a, PROJECT, ["src/*.py"])
    reserve(w.ctx, w.b, PROJECT, ["docs/"], exclusive=False)
    records = current(w.ctx, PROJECT)
    assert [r.holder_session_id for r in blocking(records, "src/a.py", B_SID)] == [A_SID]
    assert blocking(records, "src/a.py", A_SID) == []
    assert [r.holder_session_id for r in blocking(records, "src/a.py", None)] == [A_SID]
    assert blocking(records, "src/sub/a.py", B_SID) == []
    assert blocking(records, "docs/x.md", A_SID) == []  # shared: shown, never refused
    assert [r.pattern for r in covering(records, "src")] == ["src/*.py"]
    assert [r.pattern for r in covering(records, "docs/*.md")] == ["docs/"]


def test_a_holder_is_told_once_per_collision_by_the_session_that_was_refused(w: World) -> None:
    reserve(w.ctx, w.a, PROJECT, ["src/*.py"], reason="refactor")
    notices = Notices()
    refused = reserve(w.ctx, w.b, PROJECT, ["src/a.py"])
    assert notify_holders(w.ctx, w.b, refused, notices) == 1
    assert notify_holders(w.ctx, w.b, reserve(w.ctx, w.b, PROJECT, ["src/a.py"]), notices) == 0
    assert notify_holders(w.ctx, w.b, reserve(w.ctx, w.b, PROJECT, ["src/b.py"]), notices) == 1
    holder = Peer(w.ctx, w.a)
    (first, second) = holder.read_messages().messages
    assert first.from_session_id == B_SID
    assert "reserve src/a.py, which your exclusive reservation src/*.py holds until" in first.body
    assert "release_paths" in first.body and "src/b.py" in second.body
    holder.reply(first.id, "done in five minutes")
    assert [m.body for m in Peer(w.ctx, w.b).read_messages().messages] == ["done in five minutes"]
    w.clock.advance(NOTICE_WINDOW_MS)
    assert notify_holders(w.ctx, w.b, reserve(w.ctx, w.b, PROJECT, ["src/a.py"]), notices) == 1
