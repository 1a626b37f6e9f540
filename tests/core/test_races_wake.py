"""Machine 4: strict reply wakes racing each other (dedupe, rate limit, R55-R59).

Target A has a verified pane (``%1`` in the RecordingWaker) and its hooks wrote
a fresh ``idle`` marker. Three other processes (B1, B2 of one agent, C) send A
messages with ``reply_to`` set and no pending ask, so ``wake`` unset takes
the strict gate, ``"auto"`` the lenient one and ``"off"`` none. Rules also
flip A's marker (busy / idle), take the pane away and back (a gate that
passes but types nothing), and let time pass. Every keystroke is attributed
to the actor whose step typed it. Checked after every step, besides G1/G2/R1:

- ``wake:"off"`` never types;
- R55: per ``reply_to``, strict wakes that typed are at least the dedupe TTL
  apart (the single-winner ``dedupe_claim``), whatever the interleaving;
- R56: a strict wake that typed at t2 while another typed at t1 < t2 with
  t2 - t1 < MIN_INTERVAL must have read the rate record before the first
  one's stamp was written (decisions that overlap may both pass, as in the
  reference: the rate record is not a single-winner slot; sequential ones never);
- R59 (ours): a rate stamp is written only by a strict wake that typed, and a
  strict wake that typed nothing gives its dedupe slot back; so at the end the
  dedupe slot of (A, R) exists iff a strict wake for R typed, and the rate
  record equals the decision time of the last strict wake that typed.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule, run_state_machine_as_test

from oxtail_core.memory import RecordingWaker
from oxtail_core.messaging import send_message
from oxtail_core.model import ActivityMarker, WakeReason, WakeStatus
from oxtail_core.results import Sent
from oxtail_core.settings import Settings
from oxtail_core.testing import RaceMachine, StoreFactory, budget, drive
from oxtail_core.testing.races import sid
from tests.support.stores import store_params

A_SID = sid(1)
REPLY_TOS = ("r1", "r2")


class AttributingWaker(RecordingWaker):
    """Remembers which actor typed each keystroke, and when."""

    def __init__(self, machine: WakeRace) -> None:
        super().__init__({"%1"})
        self.machine = machine
        self.typed: list[tuple[str, str, int]] = []  # (flow, key, now)

    def send_text(self, target: str, text: str) -> bool:
        self.typed.append((self.machine.flow_of_current(), "text", self.machine.clock.now_ms()))
        return super().send_text(target, text)

    def send_enter(self, target: str) -> bool:
        self.typed.append((self.machine.flow_of_current(), "enter", self.machine.clock.now_ms()))
        return super().send_enter(target)


@attrs.define
class Flow:
    name: str
    reply_to: str
    wake: Any
    decided_at: int | None = None  # the clock its wake decision read (right after pending_take)
    rate_read_seq: int | None = None  # position of its rate_get in the global call order
    outcome: Sent | None = None


class WakeRace(RaceMachine):
    SETTINGS = Settings(min_interval_ms=400, dedupe_ttl_ms=1_000, debounce_ms=150)

    def __init__(self, factory: StoreFactory) -> None:
        super().__init__(factory)
        self.waker = AttributingWaker(self)
        self.join("A", 100, A_SID, tmux_pane="%1")
        self.join("B1", 201, sid(2))
        self.join("B2", 202, sid(2))
        self.join("C", 300, sid(3))
        for name in ("A", "B1", "B2", "C"):
            self.ctxs[name] = self.context()  # with the attributing waker
        self.inner.activity_put(A_SID, ActivityMarker("idle", self.clock.now_ms()))
        self.flows: dict[str, Flow] = {}
        self.slot_flow: dict[str, str] = {}
        self.rate_puts: list[tuple[str, int, int]] = []  # (flow, at_ms, seq)
        self.seq = 0
        self.n = 0

    def flow_of_current(self) -> str:
        actor = self.sched.current()
        assert actor is not None, "keystrokes from outside any actor"
        return self.slot_flow[actor.name]

    def _observe(self, actor: str, method: str, args: tuple[Any, ...], result: Any) -> None:
        super()._observe(actor, method, args, result)
        self.seq += 1
        flow = self.flows.get(self.slot_flow.get(actor, ""))
        if flow is None:
            return
        if method == "pending_take":  # the strict gate reads its clock right after this call
            flow.decided_at = self.clock.now_ms()
        elif method == "rate_get":
            flow.rate_read_seq = self.seq
        elif method == "rate_put":
            self.rate_puts.append((flow.name, args[1], self.seq))

    @precondition(lambda self: any(self.free(f"send:{p}") for p in ("B1", "B2", "C")))
    @rule(
        sender=st.sampled_from(["B1", "B2", "C"]),
        reply_to=st.sampled_from(REPLY_TOS),
        wake=st.sampled_from([None, None, "auto", "off"]),
    )
    def send_reply(self, sender: str, reply_to: str, wake: Any) -> None:
        slot = f"send:{sender}"
        if not self.free(slot):
            return
        self.n += 1
        flow = Flow(f"{sender}#{self.n}", reply_to, wake)
        self.flows[flow.name] = flow
        self.slot_flow[slot] = flow.name
        ctx, me = self.ctxs[sender], self.me[sender]

        def op() -> Any:
            make = send_message(ctx, me, A_SID, "re", reply_to=reply_to, wake=wake)
            return drive(make, ctx, self.sched.current())  # type: ignore[arg-type]

        def done(result: Any) -> None:
            assert isinstance(result, Sent), result
            assert result.wake.reason is not WakeReason.LATE_REPLY, "no pending ask exists here"
            flow.outcome = result

        self.launch(slot, op, done)

    @rule(status=st.sampled_from(["idle", "busy"]))
    def marker(self, status: str) -> None:
        self.inner.activity_put(A_SID, ActivityMarker(status, self.clock.now_ms()))

    @rule()
    def toggle_pane(self) -> None:
        self.waker.panes ^= {"%1"}

    @rule(ms=st.sampled_from([100, 300, 600]))
    def tick(self, ms: int) -> None:
        self.clock.advance(ms)

    # Invariants ---------------------------------------------------------------------------------
    def typers(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for flow, key, now in self.waker.typed:
            if key == "text":
                out.setdefault(flow, []).append(now)
        return out

    def extra_checks(self) -> None:
        typers = self.typers()
        for name in typers:
            assert self.flows[name].wake != "off", f'wake:"off" flow {name} typed a wake'
            assert len(typers[name]) == 1, f"{name} typed more than one wake line"
        strict = {n: self.flows[n] for n in typers if self.flows[n].wake is None}
        for flow in strict.values():
            assert flow.decided_at is not None
            if flow.outcome is not None:
                assert flow.outcome.wake.status is WakeStatus.FIRED
        ttl, interval = self.SETTINGS.dedupe_ttl_ms, self.SETTINGS.min_interval_ms
        ordered = sorted(strict.values(), key=lambda f: (f.decided_at or 0, f.name))
        for i, first in enumerate(ordered):
            for second in ordered[i + 1 :]:
                gap = (second.decided_at or 0) - (first.decided_at or 0)
                if first.reply_to == second.reply_to:
                    assert gap >= ttl, f"R55: two wakes for ({A_SID}, {first.reply_to}) {gap} ms apart"
                if gap < interval:
                    stamp = [seq for f, _, seq in self.rate_puts if f == first.name]
                    read = second.rate_read_seq
                    assert read is not None
                    assert not stamp or read < stamp[0], (
                        f"R56: {second.name} read the rate record after {first.name}'s stamp "
                        f"and still woke {gap} ms later"
                    )
        for name, _, _ in self.rate_puts:
            assert name in strict, f"R59: {name} stamped the rate record without typing"

    def final_checks(self) -> None:
        super().final_checks()
        strict = [self.flows[n] for n in self.typers() if self.flows[n].wake is None]
        now = self.clock.now_ms()
        for reply_to in REPLY_TOS:
            fired = [f for f in strict if f.reply_to == reply_to]
            slot = self.inner.dedupe_get(A_SID, reply_to)
            if slot is not None and now - slot < self.SETTINGS.dedupe_ttl_ms:
                assert fired, f"R59: dedupe slot ({A_SID}, {reply_to}) kept by a wake that typed nothing"
        rate = self.inner.rate_get(A_SID)
        if rate is not None:
            assert any(f.decided_at == rate for f in strict), "R59: rate record without a typed wake"


@pytest.mark.parametrize("factory", store_params())
def test_strict_wakes_dedupe_and_rate_limit(factory: StoreFactory) -> None:
    run_state_machine_as_test(lambda: WakeRace(factory), settings=budget(factory, 80, 40))
