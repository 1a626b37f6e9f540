"""Waiter-heal as a state machine: claims vs receipts vs replies vs restarts (selfheal §2, A51).

Hypothesis interleaves delegations from A to B, the clock, B reading its mail (receipts), B
completing work (the late reply consumes the expectation), answers that landed in A's ledger
without consuming it (S19), restarts of A's server, and watchdog ticks from two sibling servers
of A. After every tick the invariants of §2.2 must hold.
"""

from __future__ import annotations

import itertools

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from oxtail_core import Settings
from oxtail_core.effects import run
from oxtail_core.model import WAKE_TEXT, Envelope, PendingAsk
from oxtail_core.peer import Peer
from oxtail_core.results import OpenWork, Sent
from oxtail_core.selfheal import waiter_heal_tick
from tests.support.world import A, B, World, make_world

S = Settings()


class WaiterHeal(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.w: World = make_world()
        self.owners: list[Peer] = [self.w.join(1, A, pane="%1"), self.w.join(11, A, pane="%1")]
        self.next_pid = 100
        self.b = self.w.join(2, B, pane="%2")
        self.w.mark(B, "idle", age_ms=1_000)
        self.delegations: list[str] = []  # message ids
        self.pokes: list[int] = []  # when a watchdog typed into B's pane
        self.answered_ids = 0

    def pane_lines(self) -> int:
        return sum(1 for target, text in self.w.waker.keys if target == "%2" and text == "Enter")

    def expectations(self) -> list[PendingAsk]:
        return [p for p in self.w.store.pending_list() if p.requester == A and p.message_id]

    @rule()
    def delegate(self) -> None:
        sent = self.owners[0].send(B, "task", action_required=True, wake="auto")
        assert isinstance(sent, Sent) and sent.obligation_durable
        self.delegations.append(sent.message_id)

    @rule()
    def b_completes_one(self) -> None:
        """The ordinary path: the completion's reply_to consumes the expectation (late reply)."""
        self.b.read_messages()
        work = self.b.open_work()
        assert isinstance(work, OpenWork)
        if work.items:
            self.b.complete_work(work.items[0].id, "done")

    @rule(ms=st.sampled_from([1_000, 30_000, 60_000, 90_000, 240_000, 600_000]))
    def advance(self, ms: int) -> None:
        self.w.clock.advance(ms)
        self.w.mark(B, "idle", age_ms=1_000)

    @rule()
    def b_reads(self) -> None:
        self.b.read_messages()

    @precondition(lambda self: bool(self.delegations))
    @rule(data=st.data())
    def answer_lands_in_ledger(self, data: st.DataObject) -> None:
        """S19: an answer is in A's ledger but its consuming send crashed before the take."""
        records = self.expectations()
        if not records:
            return
        record = data.draw(st.sampled_from(records))
        self.answered_ids += 1
        answer = Envelope(id=f"{0xA000 + self.answered_ids:016x}", body="done", reply_to=record.request_id)
        self.w.store.ledger_record(A, answer, 1000)

    @rule()
    def restart_owner(self) -> None:
        self.owners[0].leave()
        self.next_pid += 1
        self.owners[0] = self.w.join(self.next_pid, A, pane="%1")

    @rule(which=st.integers(0, 1))
    def tick(self, which: int) -> None:
        now = self.w.clock.now_ms()
        answered = self.w.store.ledger_reply_tos(A)
        due = [
            p
            for p in self.expectations()
            if p.request_id not in answered
            and self.w.store.receipt_get(p.message_id) is None
            and (now - p.at_ms) // 1000 * 1000 >= S.waiter_heal_grace_ms
            and p.attempts < S.waiter_heal_cap
        ]
        before = self.pane_lines()
        result = run(
            waiter_heal_tick(self.w.ctx, self.owners[which].me, off=False), self.w.store, self.w.clock
        )
        typed = self.pane_lines() - before
        assert typed == result.fired <= 1  # one target: the claim allows one poke per tick at most
        if typed:
            assert due, "a poke needs a pre-receipt, unanswered, past-grace, under-cap expectation"
            self.pokes.append(now)
        remaining = {p.request_id for p in self.expectations()}
        assert not (remaining & answered), "an answered expectation is consumed by the tick"

    @invariant()
    def pokes_are_a_throttle_apart(self) -> None:
        assert all(b - a >= S.waiter_heal_throttle_ms for a, b in itertools.pairwise(self.pokes))

    @invariant()
    def attempts_never_exceed_the_cap(self) -> None:
        assert all(p.attempts <= S.waiter_heal_cap for p in self.expectations())

    @invariant()
    def only_keystrokes_are_wake_lines(self) -> None:
        assert all(text in (WAKE_TEXT, "Enter") for _, text in self.w.waker.keys)


WaiterHeal.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestWaiterHealMachine = WaiterHeal.TestCase
