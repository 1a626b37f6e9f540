"""Machine 8: cross-host wakes through the relay, withdraw vs claim vs relay crash vs takeover.

Peer A runs on host ``h2`` with a verified pane (``%1``) and a fresh idle marker; B and C run on
``h1`` and send A replies: ``wake`` unset takes the strict gate (a dedupe slot is claimed and
carried in the request), ``"auto"`` the lenient one. Their wakes go to ``h2``'s stream. Two relay
slots on ``h2`` read the stream (``wake_next``) and handle what they read with the real
:func:`oxtail_core.relay.handle`; a relay can be crashed mid-request (its thread is never resumed,
its pending requests are taken over once idle long enough), time can pass (takeovers, stale
requests, the senders' bounds), and A's pane can vanish. Every keystroke is attributed to the
request its relay was handling. Checked after every step, besides G1/G2/R1:

- a request reported ``skipped_*`` to its sender was never typed (nor is it later);
- a request reported ``fired`` was typed;
- every typed request had exactly one winning claim, and was typed once;
- a strict wake's dedupe slot is given back only if its request was never typed; and at the end
  it was given back unless it was typed or a crashed relay holds its claim (the one wake that
  may be lost, never doubled, redis-store.md §6.5).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import attrs
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule, run_state_machine_as_test

from oxtail_core.context import Context
from oxtail_core.memory import MemoryHost, MemoryStore, RecordingWaker
from oxtail_core.messaging import send_message
from oxtail_core.model import ActivityMarker, ClientInfo, RegistryEntry, WakeStatus
from oxtail_core.protocols import WakeRelay
from oxtail_core.relay import handle
from oxtail_core.results import Sent
from oxtail_core.routing import publish
from oxtail_core.settings import Settings
from oxtail_core.testing import RaceMachine, StoreFactory, budget, caught_within, drive, race_settings
from oxtail_core.testing.races import sid
from oxtail_core.testing.stores import factory_param, memory_factory

A_SID = sid(1)
HOME, AWAY = "h1", "h2"


class Machine(MemoryHost):
    """A MemoryHost that is one named machine of a shared store."""

    def __init__(self, host_id: str) -> None:
        super().__init__()
        self.host_id = host_id


class AttributingWaker(RecordingWaker):
    """Remembers which request each keystroke was typed for."""

    def __init__(self, machine: RelayRace) -> None:
        super().__init__({"%1"})
        self.machine = machine
        self.typed: Counter[str] = Counter()
        self.entered: Counter[str] = Counter()

    def send_text(self, target: str, text: str) -> bool:
        self.typed[self.machine.req_of_current()] += 1
        return super().send_text(target, text)

    def send_enter(self, target: str) -> bool:
        self.entered[self.machine.req_of_current()] += 1
        return super().send_enter(target)


@attrs.define
class Wake:
    name: str
    strict: bool
    req: str | None = None
    slot: tuple[str, str, int] | None = None
    status: WakeStatus | None = None


def peer(pid: int, session_id: str, host: str, **kw: Any) -> RegistryEntry:
    return RegistryEntry(
        server_pid=pid,
        started_at=1_800_000_000,
        client=ClientInfo(type="claude-code", session_id=session_id, cwd=f"/{host}/proj"),
        host_id=host,
        project_id="proj",
        **kw,
    )


class RelayRace(RaceMachine):
    SETTINGS = Settings(relay_outcome_ms=1_000, relay_silent_ms=600, debounce_ms=1, min_interval_ms=1)

    def __init__(self, factory: StoreFactory) -> None:
        super().__init__(factory)
        assert isinstance(self.inner, WakeRelay)
        relay_state = getattr(self.inner, "relay", None)
        if relay_state is not None:  # the MemoryStore times leases and takeovers by the test's clock
            relay_state.now_ms = self.clock.now_ms
        self.waker = AttributingWaker(self)
        self.homes = {HOME: Machine(HOME), AWAY: Machine(AWAY)}
        self.main_ctx = self.ctx_on(AWAY, stepped=False)
        for name, me in (
            ("A", peer(100, A_SID, AWAY, tmux_pane="%1")),
            ("B", peer(200, sid(2), HOME)),
            ("C", peer(300, sid(3), HOME)),
        ):
            publish(self.main_ctx, me)
            self.me[name] = me
            self.ctxs[name] = self.ctx_on(me.host_id or HOME)
        self.inner.activity_put(A_SID, ActivityMarker("idle", self.clock.now_ms()))
        self.inner.wake_next(AWAY, "boot", 0)  # a relay's lease on h2
        self.wakes: dict[str, Wake] = {}
        self.slot_wake: dict[str, str] = {}
        self.handling: dict[str, str] = {}  # relay slot -> the request it handles now
        self.by_req: dict[str, Wake] = {}
        self.claims: dict[str, set[str]] = {}  # req -> consumers whose claim won
        self.released: set[tuple[str, str, int]] = set()
        self.crashed_consumers: set[str] = set()
        self.consumer_of: dict[str, str] = {}
        self.takeovers = 0
        self.n = 0

    def ctx_on(self, host: str, *, stepped: bool = True) -> Context:
        return Context(
            store=self.store if stepped else self.inner,
            waker=self.waker,
            clock=self.clock,
            host=self.homes[host],
            settings=self.SETTINGS,
        )

    def req_of_current(self) -> str:
        actor = self.sched.current()
        assert actor is not None and actor.name in self.handling, "keystrokes outside any relay"
        return self.handling[actor.name]

    def _observe(self, actor: str, method: str, args: tuple[Any, ...], result: Any) -> None:
        super()._observe(actor, method, args, result)
        if method == "wake_enqueue":
            wake = self.wakes[self.slot_wake[actor]]
            wake.req, wake.slot = args[1].req, args[1].slot
            self.by_req[args[1].req] = wake
        elif method == "wake_claim" and result == "won":
            self.claims.setdefault(args[0], set()).add(args[1])
        elif method == "wake_next":
            self.takeovers += sum(d.taken_over for d in result)
        elif method == "dedupe_release":
            self.released.add((args[0], args[1], args[2]))

    # Rules --------------------------------------------------------------------------------------
    @precondition(lambda self: any(self.free(f"send:{p}") for p in ("B", "C")))
    @rule(sender=st.sampled_from(["B", "C"]), strict=st.booleans())
    def send(self, sender: str, strict: bool) -> None:
        slot = f"send:{sender}"
        if not self.free(slot):
            return
        self.n += 1
        wake = Wake(f"{sender}#{self.n}", strict)
        self.wakes[wake.name] = wake
        self.slot_wake[slot] = wake.name
        ctx, me = self.ctxs[sender], self.me[sender]
        self.inner.activity_put(A_SID, ActivityMarker("idle", self.clock.now_ms()))

        def op() -> Any:
            make = send_message(ctx, me, A_SID, "re", reply_to=f"r{self.n}", wake=None if strict else "auto")
            return drive(make, ctx, self.sched.current())  # type: ignore[arg-type]

        def done(result: Any) -> None:
            assert isinstance(result, Sent), result
            wake.status = result.wake.status

        self.launch(slot, op, done)

    @precondition(lambda self: any(self.free(f"relay:{r}") for r in ("R1", "R2")))
    @rule(relay=st.sampled_from(["R1", "R2"]))
    def relay(self, relay: str) -> None:
        slot = f"relay:{relay}"
        if not self.free(slot):
            return
        self.n += 1
        consumer = f"{relay}-{self.n}"
        self.consumer_of[slot] = consumer
        ctx = self.ctx_on(AWAY)

        def op() -> None:
            assert isinstance(ctx.store, WakeRelay)
            for delivery in ctx.store.wake_next(AWAY, consumer, 0):
                self.handling[slot] = delivery.request.req if delivery.request else ""
                drive(handle(ctx, AWAY, consumer, delivery), ctx, self.sched.current())  # type: ignore[arg-type]
            self.handling.pop(slot, None)

        self.launch(slot, op, lambda _: None)

    @precondition(lambda self: any(s.startswith("relay:") for s in self.parked()))
    @rule(data=st.data(), really=st.integers(0, 2))
    def crash_relay(self, data: st.DataObject, really: int) -> None:
        if really:  # one draw in three: a crash stops a relay mid-request, most steps advance it
            return
        slot = data.draw(st.sampled_from([s for s in self.parked() if s.startswith("relay:")]))
        self.crashed_consumers.add(self.consumer_of[slot])
        actor, _ = self.slots.pop(slot)
        self.sched.abandon(actor)
        self.handling.pop(slot, None)

    @rule(ms=st.sampled_from([200, 1_000, 2_500]))
    def tick(self, ms: int) -> None:
        self.clock.advance(ms)
        self.inner.wake_next(AWAY, "boot", 0)  # the host still has a live relay (its lease)

    @rule()
    def toggle_pane(self) -> None:
        self.waker.panes ^= {"%1"}

    # Invariants ---------------------------------------------------------------------------------
    def extra_checks(self) -> None:
        typed = self.waker.typed
        for req, n in typed.items():
            assert n == 1, f"{req} typed {n} times"
            assert len(self.claims.get(req, ())) == 1, f"{req} typed with claims {self.claims.get(req)}"
        for req, wake in self.by_req.items():
            if wake.status is not None and wake.status.value.startswith("skipped"):
                assert not typed[req], f"{wake.name} reported {wake.status} but {req} was typed"
            if wake.status is WakeStatus.FIRED:
                assert typed[req] and self.waker.entered[req], f"{wake.name} reported fired, nothing typed"
            if wake.slot is not None and wake.slot in self.released:
                assert not typed[req], f"{wake.name}'s slot was given back but {req} was typed"

    def final_checks(self) -> None:
        super().final_checks()
        for req, wake in self.by_req.items():
            if wake.slot is None or self.waker.typed[req]:
                continue
            held_by_crashed = bool(self.claims.get(req, set()) & self.crashed_consumers)
            assert wake.slot in self.released or held_by_crashed, (
                f"{wake.name}: nothing typed, the slot stays, and no crashed relay holds the claim"
            )


@pytest.mark.parametrize("store_factory", [factory_param("memory", memory_factory)])
def test_relayed_wakes_type_only_under_one_claim_and_report_only_what_happened(
    store_factory: StoreFactory,
) -> None:
    run_state_machine_as_test(lambda: RelayRace(store_factory), settings=budget(store_factory, 60, 40))


class WithdrawAlwaysWins(MemoryStore):
    """A planted bug: the sender's withdrawal ignores a relay's claim (no single winner)."""

    def wake_withdraw(self, req: str) -> bool:
        super().wake_withdraw(req)
        return True


def test_the_relay_machine_catches_a_withdrawal_that_is_not_single_winner() -> None:
    def run() -> None:
        factory = lambda: (WithdrawAlwaysWins(), lambda: None)  # noqa: E731
        run_state_machine_as_test(lambda: RelayRace(factory), settings=race_settings(200, 40, shrink=False))

    caught_within(5, run, "but")
