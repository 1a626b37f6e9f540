"""Machine 8: file reservations under every interleaving (issue 12).

Three sessions A, B, C reserve and release overlapping patterns while their
servers die and restart and the clock jumps. A reserve or release is two store
calls (the registry read that decides who is live, then the atomic update),
and Hypothesis chooses what runs between them. Checked after every step:

- the stored set never holds two conflicting reservations (different holders,
  one exclusive, a path both match): concurrent overlapping exclusive reserves
  are never both granted;
- a reserve's conflicts name only reservations that still stood: unexpired, and
  held by a session that was live or orphaned for less than the grace (holder
  death releases, exactly);
- a reserve leaves each granted pattern held by its session until the new
  expiry (renew vs expiry), a release leaves none of the released ones
  (release vs reserve).
"""

from __future__ import annotations

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule, run_state_machine_as_test

from oxtail_core.reservations import Reservation, ReserveResult, conflicts
from oxtail_core.reserving import release, reserve
from oxtail_core.testing import RaceMachine, StoreFactory, budget
from oxtail_core.testing.races import sid
from tests.support.stores import store_params

PROJECT = "/proj"
GRACE = 5_000
PATTERNS = ["src/*.py", "src/a.py", "src/", "docs/**", "docs/a.md", "*.md", "README.md"]
WHO = ["A", "B", "C"]
TTLS = [60, 120, 3_600]


class ReservationRace(RaceMachine):
    def __init__(self, factory: StoreFactory) -> None:
        super().__init__(factory)
        self.pids = {"A": 101, "B": 102, "C": 103}
        for n, who in enumerate(WHO, start=1):
            self.join(who, self.pids[who], sid(n))
        self.restarts = 0

    def alive(self, who: str) -> bool:
        return self.host.is_alive(self.me[who].server_pid, None)

    def stored(self) -> list[Reservation]:
        return self.inner.reservations_list(PROJECT)  # type: ignore[no-any-return]

    @precondition(lambda self: any(self.free(f"res:{w}") for w in WHO))
    @rule(
        who=st.sampled_from(WHO),
        patterns=st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=3),
        exclusive=st.booleans(),
        ttl_s=st.sampled_from(TTLS),
    )
    def reserve(self, who: str, patterns: list[str], exclusive: bool, ttl_s: int) -> None:
        slot = f"res:{who}"
        if not self.free(slot) or not self.alive(who):
            return
        ctx, me = self.ctxs[who], self.me[who]
        started = self.clock.now_ms()  # the flow decides at the time it starts

        def op() -> ReserveResult:
            return reserve(ctx, me, PROJECT, patterns, exclusive=exclusive, ttl_s=ttl_s, grace_ms=GRACE)

        def done(result: ReserveResult) -> None:
            now = started
            assert set(result.granted) | {c.pattern for c in result.conflicts} == set(patterns)
            mine = {r.pattern: r for r in self.stored() if r.held_by(me.session_id or "")}
            for pattern in result.granted:
                assert pattern in mine, f"{pattern} granted to {who} but not held"
                assert mine[pattern].expires_at == result.expires_at
                assert mine[pattern].exclusive is exclusive
            for c in result.conflicts:
                assert not c.held.held_by(me.session_id or "")
                assert c.held.expires_at > now, "a conflict with an expired reservation"
                assert c.held.orphaned_at is None or now - c.held.orphaned_at < GRACE, (
                    "a conflict with a reservation whose holder was gone past the grace"
                )

        self.launch(slot, op, done)

    @precondition(lambda self: any(self.free(f"res:{w}") for w in WHO))
    @rule(who=st.sampled_from(WHO), which=st.none() | st.lists(st.sampled_from(PATTERNS), max_size=2))
    def release(self, who: str, which: list[str] | None) -> None:
        slot = f"res:{who}"
        if not self.free(slot) or not self.alive(who):
            return
        ctx, me = self.ctxs[who], self.me[who]

        def done(released: list[str]) -> None:
            left = {r.pattern for r in self.stored() if r.held_by(me.session_id or "")}
            assert not left & set(released)
            if which is None:
                assert not left, f"release-all left {left}"

        self.launch(slot, lambda: release(ctx, me, PROJECT, which, grace_ms=GRACE), done)

    @rule(who=st.sampled_from(WHO))
    def kill(self, who: str) -> None:
        """The session's server dies (an operation it had under way never finishes)."""
        slot = f"res:{who}"
        if not self.free(slot):
            self.crash_slot(slot, self.me[who].server_pid)
        self.host.kill(self.me[who].server_pid)

    @precondition(lambda self: self.restarts < 4)
    @rule(who=st.sampled_from(WHO))
    def restart(self, who: str) -> None:
        """A new server for the same session (Claude Code reconnecting its MCP server)."""
        if not self.free(f"res:{who}") or self.alive(who):
            return
        self.restarts += 1
        self.former.append(self.me[who])
        self.join(who, 500 + self.restarts, self.me[who].session_id)

    @rule(ms=st.sampled_from([1, 1_000, GRACE - 1, GRACE, 60_000, 3_600_000]))
    def tick(self, ms: int) -> None:
        self.clock.advance(ms)

    def extra_checks(self) -> None:
        records = self.stored()
        for i, a in enumerate(records):
            for b in records[i + 1 :]:
                assert not conflicts(a, b), f"both stored: {a} and {b}"
        keys = [(r.holder_session_id, r.pattern) for r in records]
        assert len(keys) == len(set(keys)), "one session holds a pattern once"


@pytest.mark.parametrize("factory", store_params())
def test_reservations_never_conflict_and_end_exactly_when_the_rules_say(factory: StoreFactory) -> None:
    run_state_machine_as_test(lambda: ReservationRace(factory), settings=budget(factory, 80, 40))


def test_two_overlapping_exclusive_reserves_interleaved_at_every_step_grant_one() -> None:
    """Both read the registry before either updates: still exactly one wins."""
    from oxtail_core.testing import memory_factory

    machine = ReservationRace(memory_factory)
    try:
        machine.reserve("A", ["src/*.py"], True, 3_600)
        machine.reserve("B", ["src/a.py"], True, 3_600)
        machine.advance("res:A")  # A read the registry
        machine.advance("res:B")  # B read the registry
        machine.advance("res:A")  # A's update: granted
        machine.advance("res:B")  # B's update: conflict with A
        assert machine.free("res:A") and machine.free("res:B")
        assert [(r.holder_session_id, r.pattern) for r in machine.stored()] == [(sid(1), "src/*.py")]
        machine.extra_checks()
    finally:
        machine.teardown()
