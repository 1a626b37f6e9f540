"""The reservation part of the Store contract (issue 12): what every backend promises for
``reservations_update`` / ``reservations_list``, as tests any backend runs unchanged.

Mix it into a contract test class next to :class:`~oxtail_core.testing.StoreContract`
(``class TestMyStoreContract(StoreContract, ReservationContract)``); it needs the same
``store_factory`` fixture.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from oxtail_core.reservations import Reservation, release_step, reserve_step, sweep_step
from oxtail_core.testing.stores import StoreFactory

PROJECT = "/work/project"
NOW = 1_800_000_000_000
HOUR = 3_600_000


def held(pattern: str, holder: str = "A", *, exclusive: bool = True, **kw: Any) -> Reservation:
    fields: dict[str, Any] = {
        "pattern": pattern,
        "holder_session_id": holder,
        "exclusive": exclusive,
        "reserved_at": NOW,
        "expires_at": NOW + HOUR,
    }
    return Reservation(**(fields | kw))


def reserve(store: Any, *wanted: Reservation, live: Sequence[str] = ("A", "B", "C")) -> Any:
    return store.reservations_update(PROJECT, reserve_step(list(wanted), NOW, frozenset(live), 10_000))


class ReservationContract:
    @pytest.fixture
    def store(self, store_factory: StoreFactory) -> Iterator[Any]:
        store, cleanup = store_factory()
        try:
            yield store
        finally:
            cleanup()

    def test_an_update_keeps_what_its_step_returns_and_returns_its_result(self, store: Any) -> None:
        assert store.reservations_list(PROJECT) == []
        seen: list[Sequence[Reservation]] = []

        def step(current: Sequence[Reservation]) -> tuple[list[Reservation], str]:
            seen.append(tuple(current))
            return [held("src/*.py")], "done"

        assert store.reservations_update(PROJECT, step) == "done"
        assert seen == [()]
        assert store.reservations_list(PROJECT) == [held("src/*.py")]

    def test_every_field_of_a_reservation_round_trips(self, store: Any) -> None:
        full = held(
            "docs/**",
            "0f8e3a4c-1111-4222-8333-944455556666",
            exclusive=False,
            reason="rewriting the guide — ünïcode",
            holder_tmux="work",
            client_type="codex",
            orphaned_at=NOW - 5,
        )
        bare = held("a.py", "B")
        store.reservations_update(PROJECT, lambda _: ([full, bare], None))
        assert store.reservations_list(PROJECT) == [full, bare]

    def test_projects_are_kept_apart_whatever_their_names(self, store: Any) -> None:
        names = [PROJECT, PROJECT + "/", "../../etc/passwd", "", "x\ny", "/w/ä"]
        for i, name in enumerate(names):
            store.reservations_update(name, lambda _, i=i: ([held(f"f{i}")], None))
        for i, name in enumerate(names):
            assert [r.pattern for r in store.reservations_list(name)] == [f"f{i}"]

    def test_a_step_that_keeps_nothing_empties_the_project(self, store: Any) -> None:
        reserve(store, held("src/a.py"))
        assert store.reservations_update(PROJECT, release_step("A", None, NOW, frozenset("A"), 1)) == [
            "src/a.py"
        ]
        assert store.reservations_list(PROJECT) == []

    def test_a_conflicting_reserve_is_reported_and_changes_nothing(self, store: Any) -> None:
        assert reserve(store, held("src/*.py")).granted == ("src/*.py",)
        result = reserve(store, held("src/a.py", "B"))
        assert result.granted == ()
        assert [(c.pattern, c.held.holder_session_id) for c in result.conflicts] == [("src/a.py", "A")]
        assert store.reservations_list(PROJECT) == [held("src/*.py")]

    def test_a_sweep_drops_ended_reservations_and_stamps_orphans(self, store: Any) -> None:
        store.reservations_update(
            PROJECT, lambda _: ([held("a", "A"), held("b", "B", expires_at=NOW - 1), held("c", "C")], None)
        )
        kept = store.reservations_update(PROJECT, sweep_step(NOW, frozenset({"A"}), 10_000))
        assert [(r.pattern, r.orphaned_at) for r in kept] == [("a", None), ("c", NOW)]
        assert store.reservations_list(PROJECT) == kept

    def test_concurrent_overlapping_exclusive_reserves_grant_exactly_one(
        self, store_factory: StoreFactory
    ) -> None:
        store, cleanup = store_factory()
        holders = [f"S{i}" for i in range(8)]
        results: dict[str, Any] = {}
        start = threading.Barrier(len(holders))

        def run(holder: str) -> None:
            start.wait()
            results[holder] = reserve(store, held("src/**", holder), live=holders)

        try:
            threads = [threading.Thread(target=run, args=(h,)) for h in holders]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            winners = [h for h, r in results.items() if r.granted]
            assert len(results) == len(holders)
            assert len(winners) == 1
            assert all(
                [c.held.holder_session_id for c in r.conflicts] == winners
                for h, r in results.items()
                if h not in winners
            )
            assert [r.holder_session_id for r in store.reservations_list(PROJECT)] == winners
        finally:
            cleanup()
