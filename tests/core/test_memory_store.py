"""MemoryStore keeps the Store contract (the same tests every backend runs, oxtail_core.testing),
and the stepped store of the race machines steps exactly the Store protocol's methods."""

from __future__ import annotations

from typing import Protocol

import pytest

from oxtail_core.memory import MemoryStore
from oxtail_core.protocols import InboxId, Store, WakeRelay
from oxtail_core.testing import (
    STORE_METHODS,
    Scheduler,
    SteppedStore,
    StoreContract,
    StoreFactory,
    memory_factory,
)
from oxtail_core.testing.reservations import ReservationContract
from oxtail_core.testing.stepping import _protocol_methods


class TestMemoryStoreContract(StoreContract, ReservationContract):
    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        return memory_factory


def test_the_stepped_store_gates_every_method_of_the_store_protocol_and_nothing_else() -> None:
    assert {"append", "take", "settle", "restore", "recover", "merge", "registry_entries"} <= STORE_METHODS
    gated: list[str] = []
    scheduler = Scheduler()
    scheduler.gate = gated.append  # type: ignore[method-assign]
    stepped = SteppedStore(MemoryStore(), scheduler)
    for name in sorted(STORE_METHODS):
        assert callable(getattr(MemoryStore, name)), f"MemoryStore lacks {name}"
    stepped.depth(InboxId.for_session("s"))
    stepped.registry_entries()
    assert stepped.in_flight(InboxId.for_session("s")) == []  # not a protocol method: not a step
    assert gated == ["depth", "registry_entries"]


def test_the_gated_methods_are_read_from_the_protocol_so_a_new_store_method_is_a_step_too() -> None:
    class Grown(Store, Protocol):
        def sticky_claim(self, session_id: str) -> bool: ...

    assert _protocol_methods(Grown) == _protocol_methods(Store) | {"sticky_claim"}
    assert _protocol_methods(Store) | _protocol_methods(WakeRelay) == STORE_METHODS  # the relay's too
