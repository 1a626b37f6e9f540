"""Machine 3: replies racing one pending ask, a third party with the same reply_to, and GC.

Set-up (main thread): A asked B (the question is in B's ledger) and timed out,
so a pending record (A, R, peer=B) exists. Then, interleaved per store call:
two replies by B (``reply_to_message``, ``wake`` unset / auto / off), a message
from C with ``reply_to = R`` (``send_message``), a GC pass (``record_pending``
of another ask, which first runs ``pending_gc``), and time passing (pending
TTL 300 ms). Checked after every step, besides G1/G2/R1:

- R47: the record is taken at most once, and at most one message takes the late path;
- R54 (ours): C never consumes the record and never gets ``late_reply_to_pending``;
- R51: a late path is taken only by a consume that found the record younger than the TTL;
  a consume that found it expired reports no late reason;
- at the end, if nobody took it and no GC ran past its age, the record is still there.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule, run_state_machine_as_test

from oxtail_core.delivery import deliver, mint
from oxtail_core.messaging import reply_to_message, send_message
from oxtail_core.model import WakeReason
from oxtail_core.pending import record_pending
from oxtail_core.results import Replied, Sent
from oxtail_core.settings import Settings
from oxtail_core.testing import RaceMachine, StoreFactory, budget, drive
from oxtail_core.testing.races import sid
from tests.support.stores import store_params

LATE = (WakeReason.LATE_REPLY, WakeReason.LATE_REPLY_SUPPRESSED)
A_SID, B_SID, C_SID = sid(1), sid(2), sid(3)
REQUEST = "00000000000000aa"


class PendingRace(RaceMachine):
    SETTINGS = Settings(pending_ttl_ms=300)

    def __init__(self, factory: StoreFactory) -> None:
        super().__init__(factory)
        self.join("A", 100, A_SID)
        self.join("B", 200, B_SID)
        self.join("C", 300, C_SID)
        question = mint(self.main_ctx, "q", A_SID, request_id=REQUEST)
        deliver(self.main_ctx, self.me["B"], question)
        self.question = question.id
        self.born = self.clock.now_ms()
        assert record_pending(self.main_ctx, A_SID, REQUEST, B_SID, self.born)
        self.takes: list[tuple[str, int]] = []  # (actor, now) of every pending_take that got the record
        self.gc_cutoffs: list[int] = []
        self.outcomes: dict[str, WakeReason | None] = {}
        self.slot_names: dict[str, str] = {}  # slot -> the flow running (or last run) in it
        self.last_call_at: dict[str, int] = {}
        self.n = 0

    def _observe(self, actor: str, method: str, args: tuple[Any, ...], result: Any) -> None:
        super()._observe(actor, method, args, result)
        # The flow read its clock right after its previous store call (the append), so that is
        # the "now" its consume judged the record's age by.
        decided_at, self.last_call_at[actor] = self.last_call_at.get(actor), self.clock.now_ms()
        if method == "pending_take" and result is not None and args[1] == REQUEST:
            assert decided_at is not None
            self.takes.append((self.slot_names.get(actor, actor), decided_at))
        if method == "pending_gc":
            self.gc_cutoffs.append(args[0])

    def _launch_flow(self, slot: str, make: Any) -> None:
        self.n += 1
        name = f"{slot}#{self.n}"

        def op() -> Any:
            return drive(make(), self.ctxs[slot.split(":")[1]], self.sched.current())  # type: ignore[arg-type]

        def done(result: Any) -> None:
            assert isinstance(result, (Replied, Sent)), result
            self.outcomes[name] = result.wake.reason

        self.slot_names[slot] = name
        self.last_call_at.pop(slot, None)
        self.launch(slot, op, done)

    @precondition(lambda self: self.free("reply1:B") or self.free("reply2:B"))
    @rule(wake=st.sampled_from([None, "auto", "off"]))
    def b_replies(self, wake: Any) -> None:
        slot = "reply1:B" if self.free("reply1:B") else "reply2:B"
        ctx, me = self.ctxs["B"], self.me["B"]
        self._launch_flow(slot, lambda: reply_to_message(ctx, me, self.question, "answer", wake=wake))

    @precondition(lambda self: self.free("send:C"))
    @rule(wake=st.sampled_from([None, "auto", "off"]))
    def c_sends_same_reply_to(self, wake: Any) -> None:
        ctx, me = self.ctxs["C"], self.me["C"]
        self._launch_flow(
            "send:C", lambda: send_message(ctx, me, A_SID, "noise", reply_to=REQUEST, wake=wake)
        )

    @precondition(lambda self: self.free("gc:A"))
    @rule()
    def gc(self) -> None:
        ctx = self.ctxs["A"]
        self.n += 1
        other = f"{0xBB00 + self.n:016x}"
        self.launch(
            "gc:A", lambda: record_pending(ctx, A_SID, other, B_SID, ctx.clock.now_ms()), lambda ok: None
        )

    @rule(ms=st.sampled_from([100, 200]))
    def tick(self, ms: int) -> None:
        self.clock.advance(ms)

    def extra_checks(self) -> None:
        assert len(self.takes) <= 1, (
            f"R47: the pending record was taken {len(self.takes)} times: {self.takes}"
        )
        for actor, _ in self.takes:
            assert not actor.startswith("send:C"), "R54: a third party consumed the pending ask"
        late = [name for name, reason in self.outcomes.items() if reason in LATE]
        assert len(late) <= 1, f"R47: several late paths {late}"
        for name in late:
            assert not name.startswith("send:C"), f"R54: third party got {self.outcomes[name]}"
            assert self.takes and self.takes[0][0] == name, f"{name} took the late path without the record"
        if self.takes and self.takes[0][0] in self.outcomes:
            taker, at = self.takes[0]
            live = at - self.born < self.SETTINGS.pending_ttl_ms
            assert (self.outcomes[taker] in LATE) == live, (
                f"R51: {taker} consumed the record at age {at - self.born} and got {self.outcomes[taker]}"
            )

    def final_checks(self) -> None:
        super().final_checks()
        record = self.inner.pending_take(A_SID, REQUEST, None)
        gc_past = any(cutoff >= self.born for cutoff in self.gc_cutoffs)
        if not self.takes and not gc_past:
            assert record is not None, "the pending ask vanished: nobody took it and no GC reached it"
        if self.takes:
            assert record is None, "a taken record is still there"


@pytest.mark.parametrize("factory", store_params())
def test_replies_race_one_pending_ask(factory: StoreFactory) -> None:
    run_state_machine_as_test(lambda: PendingRace(factory), settings=budget(factory, 80, 40))
