"""The remote branch of the wake funnel and the relay's per-request flow, on a MemoryStore and a
fake clock (no time passes: the senders' bounds are jumped over), one scenario per row of
:data:`oxtail_core.gates.RELAY_GATE`, :data:`~oxtail_core.gates.RELAY_ENDS` and
:data:`~oxtail_core.gates.RELAY_SIDE`."""

from __future__ import annotations

from typing import Any

import pytest

from oxtail_core import gates
from oxtail_core.clock import FakeClock
from oxtail_core.context import Context
from oxtail_core.effects import WaitForWake, run
from oxtail_core.errors import StoreError
from oxtail_core.memory import MemoryHost, MemoryStore, RecordingWaker
from oxtail_core.model import WAKE_TEXT, ActivityMarker, ClientInfo, RegistryEntry, WakeStatus
from oxtail_core.protocols import WakeDelivery, WakeReport, WakeRequest
from oxtail_core.relay import handle
from oxtail_core.settings import Settings
from oxtail_core.trace import ListTracer
from oxtail_core.wake import strict_reply_wake, wake_peer

A_SID = "00000000-0000-4000-8000-000000000001"


class Machine(MemoryHost):
    def __init__(self, host_id: str) -> None:
        super().__init__()
        self.host_id = host_id


def entry(
    pid: int = 100, *, host: str = "h2", pane: str | None = "%1", client: str = "claude-code"
) -> RegistryEntry:
    return RegistryEntry(
        server_pid=pid,
        started_at=1_800_000_000,
        client=ClientInfo(type=client, session_id=A_SID, cwd="/p"),  # type: ignore[arg-type]
        tmux_pane=pane,
        host_id=host,
        process_start=12.5,
    )


class World:
    """One store, a sender on h1, a relay on h2 whose terminal has pane %1."""

    def __init__(self, **settings: Any) -> None:
        self.clock = FakeClock()
        self.store = MemoryStore()
        self.store.relay.now_ms = self.clock.now_ms
        self.tracer = ListTracer()
        self.settings = Settings(**settings)
        self.sender = Context(
            self.store, RecordingWaker(), self.clock, Machine("h1"), self.settings, self.tracer
        )
        self.relay_waker = RecordingWaker({"%1"})
        self.relay = Context(
            self.store, self.relay_waker, self.clock, Machine("h2"), self.settings, self.tracer
        )
        self.peer = entry()
        self.store.registry_put(self.peer)
        self.store.activity_put(A_SID, ActivityMarker("idle", self.clock.now_ms()))

    def lease(self) -> list[WakeDelivery]:
        return self.store.wake_next("h2", "r1", 0)

    def serve_at(self, when_ms: int, consumer: str = "r1") -> None:
        """The relay reads and handles what waits, at ``when_ms`` (during the sender's wait)."""

        def act() -> None:
            for delivery in self.store.wake_next("h2", consumer, 0):
                run(handle(self.relay, "h2", consumer, delivery), self.store, self.clock)

        self.clock.at(when_ms, act)

    def wake(self, peer: RegistryEntry | None = None) -> WakeStatus:
        return run(wake_peer(self.sender, peer or self.peer), self.store, self.clock)

    def events(self, name: str) -> list[dict[str, Any]]:
        return [fields for event, fields in self.tracer.events if event == name]


def test_a_relay_types_the_wake_line_into_the_verified_pane_and_the_sender_reports_fired() -> None:
    w = World()
    w.lease()
    w.serve_at(w.clock.now_ms() + 5)
    assert w.wake() is WakeStatus.FIRED
    assert w.relay_waker.keys == [("%1", WAKE_TEXT), ("%1", "Enter")]
    assert w.sender.waker.keys == []  # type: ignore[attr-defined]


def test_a_relayed_wake_of_a_hookless_peer_is_fired_unconfirmed_as_a_local_one_would_be() -> None:
    w = World()
    w.store = MemoryStore()  # no marker at all: a hookless peer
    w.store.relay.now_ms = w.clock.now_ms
    w.sender.store = w.relay.store = w.store
    w.store.registry_put(w.peer)
    w.lease()
    w.serve_at(w.clock.now_ms() + 5)
    assert w.wake() is WakeStatus.FIRED_UNCONFIRMED
    assert w.relay_waker.keys == [("%1", WAKE_TEXT), ("%1", "Enter")]


def test_without_a_relay_lease_the_sender_reports_no_target_at_once_and_queues_nothing() -> None:
    w = World()
    start = w.clock.now_ms()
    assert w.wake() is WakeStatus.SKIPPED_NO_TARGET
    assert w.clock.now_ms() == start
    assert w.lease() == []
    assert w.events("ask_peer_wake_relayed")[0]["end"] == "no-relay"


def test_a_silent_relay_is_withdrawn_from_after_bound1_and_never_types_afterwards() -> None:
    w = World(relay_outcome_ms=300)
    w.lease()
    start = w.clock.now_ms()
    assert w.wake() is WakeStatus.SKIPPED_NO_TARGET
    assert w.clock.now_ms() - start == 300
    (delivery,) = w.store.wake_next("h2", "late", 0)
    assert run(handle(w.relay, "h2", "late", delivery), w.store, w.clock) is None
    assert w.relay_waker.keys == []
    assert w.events("ask_peer_wake_relayed")[0]["end"] == "relay-timeout"


def test_a_relay_that_claimed_and_went_silent_makes_the_wake_fired_unconfirmed_after_bound2() -> None:
    w = World(relay_outcome_ms=300, relay_silent_ms=200)
    w.lease()

    def claim_then_die() -> None:
        (delivery,) = w.store.wake_next("h2", "dying", 0)
        assert delivery.request is not None
        assert w.store.wake_claim(delivery.request.req, "dying") == "won"

    w.clock.at(w.clock.now_ms() + 10, claim_then_die)
    start = w.clock.now_ms()
    assert w.wake() is WakeStatus.FIRED_UNCONFIRMED
    assert w.clock.now_ms() - start == 500
    assert w.events("ask_peer_wake_relayed")[0]["end"] == "relay-silent"


def test_a_takeover_of_a_claimed_request_reports_unconfirmed_and_never_types_twice() -> None:
    w = World(relay_outcome_ms=3_000)
    w.lease()

    def claim_then_die() -> None:
        (delivery,) = w.store.wake_next("h2", "dying", 0)
        assert delivery.request is not None
        w.store.wake_claim(delivery.request.req, "dying")

    w.clock.at(w.clock.now_ms() + 10, claim_then_die)
    w.serve_at(w.clock.now_ms() + 1_000, "successor")  # too early: not idle long enough
    w.serve_at(w.clock.now_ms() + 2_100, "successor")
    assert w.wake() is WakeStatus.FIRED_UNCONFIRMED
    assert w.relay_waker.keys == []


def test_a_takeover_of_an_unclaimed_request_types_it_once() -> None:
    w = World(relay_outcome_ms=3_000)
    w.lease()
    w.clock.at(w.clock.now_ms() + 10, lambda: w.store.wake_next("h2", "dying", 0))  # read, never acked
    w.serve_at(w.clock.now_ms() + 2_100, "successor")
    assert w.wake() is WakeStatus.FIRED
    assert w.relay_waker.keys == [("%1", WAKE_TEXT), ("%1", "Enter")]


def test_the_relay_types_nothing_for_another_incarnation_or_host_and_never_the_request_s_pane() -> None:
    w = World()
    w.lease()
    forged = [
        WakeRequest("00000000000000f1", pid=100, started_at=1_800_000_001, process_start=12.5),
        WakeRequest("00000000000000f2", pid=100, started_at=1_800_000_000, process_start=99.0),
        WakeRequest("00000000000000f3", pid=101, started_at=1_800_000_000, process_start=12.5),
    ]
    w.store.registry_put(entry(101, host="h1"))  # the same pid and start on another host
    for request in forged:
        assert w.store.wake_enqueue("h2", request)
    reports = [run(handle(w.relay, "h2", "r1", d), w.store, w.clock) for d in w.lease()]
    assert reports == [WakeReport("skipped", "not-registered")] * 3
    assert w.relay_waker.keys == []


def test_the_relay_skips_a_stale_request_and_an_unverified_pane() -> None:
    w = World()
    w.lease()
    assert w.store.wake_enqueue("h2", WakeRequest("00000000000000a1", 100, 1_800_000_000, 12.5, ttl_ms=100))
    w.clock.advance(101)
    (stale,) = w.lease()
    assert run(handle(w.relay, "h2", "r1", stale), w.store, w.clock) == WakeReport("skipped", "stale")
    w.relay_waker.panes.clear()
    assert w.store.wake_enqueue("h2", WakeRequest("00000000000000a2", 100, 1_800_000_000, 12.5))
    (gone,) = w.lease()
    assert run(handle(w.relay, "h2", "r1", gone), w.store, w.clock) == WakeReport(
        "skipped", "no-verified-pane"
    )
    assert w.relay_waker.keys == []


def test_the_relay_clamps_the_codex_gap() -> None:
    w = World()
    w.lease()
    codex = entry(client="codex")
    w.store.registry_put(codex)
    assert w.store.wake_enqueue(
        "h2", WakeRequest("00000000000000c1", 100, 1_800_000_000, 12.5, flavor="codex", gap_ms=10**9)
    )
    (delivery,) = w.lease()
    start = w.clock.now_ms()
    assert run(handle(w.relay, "h2", "r1", delivery), w.store, w.clock) == WakeReport("typed")
    assert w.clock.now_ms() - start == gates.RELAY_CLAMP_GAP_MS[1]


def test_a_strict_relayed_wake_is_finalized_by_the_relay_and_a_withdrawn_one_by_the_sender() -> None:
    w = World(relay_outcome_ms=300, min_interval_ms=1, debounce_ms=1)
    w.lease()
    w.serve_at(w.clock.now_ms() + 5)
    claimed_at = w.clock.now_ms()
    assert run(strict_reply_wake(w.sender, w.peer, "r1"), w.store, w.clock) is WakeStatus.FIRED
    assert w.store.rate_get(A_SID) == claimed_at
    assert w.store.dedupe_get(A_SID, "r1") == claimed_at
    w.clock.advance(10)
    w.store.activity_put(A_SID, ActivityMarker("idle", w.clock.now_ms()))
    assert run(strict_reply_wake(w.sender, w.peer, "r2"), w.store, w.clock) is WakeStatus.SKIPPED_NO_TARGET
    assert w.store.dedupe_get(A_SID, "r2") is None  # withdrawn: given back by the sender


def test_a_refused_request_is_a_store_error_and_its_slot_is_taken_back() -> None:
    w = World()
    w.lease()

    def refuse(host: str, request: WakeRequest) -> bool:
        raise StoreError("redis refused")

    w.store.wake_enqueue = refuse  # type: ignore[method-assign]
    assert w.wake() is WakeStatus.SKIPPED_STORE_ERROR
    assert w.events("ask_peer_wake_relayed")[0]["end"] == "relay-unreachable"


def test_a_local_peer_never_goes_through_the_relay() -> None:
    w = World()
    w.sender.waker.panes.add("%1")  # type: ignore[attr-defined]
    local = entry(host="h1")
    assert w.wake(local) is WakeStatus.FIRED
    assert w.sender.waker.keys == [("%1", WAKE_TEXT), ("%1", "Enter")]  # type: ignore[attr-defined]
    assert w.lease() == []


@pytest.mark.parametrize("pane", [None])
def test_a_remote_peer_without_a_registered_pane_is_no_target_without_a_request(pane: str | None) -> None:
    w = World()
    w.lease()
    assert w.wake(entry(pane=pane)) is WakeStatus.SKIPPED_NO_TARGET
    assert w.lease() == []


def test_the_sender_waits_with_a_yielded_effect_never_inside_a_store_call() -> None:
    w = World()
    w.lease()
    flow = wake_peer(w.sender, w.peer)
    effect = next(flow)
    assert isinstance(effect, WaitForWake) and effect.until_ms == w.clock.now_ms() + 1_500
    flow.close()
