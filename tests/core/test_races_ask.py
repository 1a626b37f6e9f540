"""Machine 2: ask_peer's timeout vs a late reply (R38, R39, R41, R47), at Store-call granularity.

Asker A runs the real ``ask_peer`` flow on a short timeout (grace 100 ms,
timeout 200 ms; the stepped clock moves 100 ms per wait, so the deadline is a
few polls away). Replier B replies by id to any question whose append
returned, up to twice concurrently (an answer and a correction, R32), with
``wake`` unset, ``"auto"`` or ``"off"``. A may also read its inbox out of band
(R41), B reads its own. Checked after every step, besides G1/G2/R1:

- R47: at most one reply per request takes the late-reply path;
- R38: once an ask has timed out and a reply to it has finished sending,
  that reply was taken by another reader (R41) or some reply to the request
  took the late path -- never neither;
- a late path is only taken after the asker wrote its pending record;
- a returned reply is correlated (from B, ``reply_to`` = the request id).
"""

from __future__ import annotations

import threading
from typing import Any

import attrs
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule, run_state_machine_as_test

from oxtail_core.ask import ask_peer
from oxtail_core.memory import MemoryStore
from oxtail_core.messaging import reply_to_message
from oxtail_core.model import PendingAsk, WakeReason
from oxtail_core.results import Asked, Replied
from oxtail_core.routing import session_inbox
from oxtail_core.settings import Settings
from oxtail_core.testing import (
    RaceMachine,
    Scheduler,
    StoreFactory,
    budget,
    caught_within,
    drive,
    race_settings,
)
from oxtail_core.testing.races import sid
from tests.support.stores import store_params

LATE = (WakeReason.LATE_REPLY, WakeReason.LATE_REPLY_SUPPRESSED)
A_SID, B_SID = sid(1), sid(2)


@attrs.define
class Reply:
    question: str
    request_id: str
    message_id: str
    reason: WakeReason | None


class AskRace(RaceMachine):
    SETTINGS = Settings(ask_grace_ms=100, ask_timeout_ms=200, ask_poll_ms=100)

    def __init__(self, factory: StoreFactory) -> None:
        super().__init__(factory)
        self.join("A", 100, A_SID)
        self.join("B", 200, B_SID)
        self.asked: dict[str, Asked] = {}  # request_id -> finished ask
        self.replies: list[Reply] = []
        self.pending_puts: set[str] = set()
        self.consumed: dict[str, list[str]] = {}  # request_id -> actors whose pending_take got the record
        self.n_asks = 0

    def _observe(self, actor: str, method: str, args: tuple[Any, ...], result: Any) -> None:
        super()._observe(actor, method, args, result)
        if method == "pending_put":
            self.pending_puts.add(args[0].request_id)
        if method == "pending_take" and result is not None:
            self.consumed.setdefault(args[1], []).append(actor)

    # Operations -----------------------------------------------------------------------------------
    @precondition(lambda self: self.free("ask:A") and self.n_asks < 2)
    @rule()
    def start_ask(self) -> None:
        self.n_asks += 1
        ctx, me = self.ctxs["A"], self.me["A"]

        def op() -> Any:
            result = drive(ask_peer(ctx, me, B_SID, f"q{self.n_asks}"), ctx, self.sched.current())  # type: ignore[arg-type]
            if isinstance(result, Asked) and result.batch is not None:
                ctx.store.settle(result.batch)
            return result

        def done(result: Any) -> None:
            assert isinstance(result, Asked), result
            if result.reply is not None:
                assert result.reply.from_session_id == B_SID
                assert result.reply.reply_to == result.request_id, "a returned reply must be correlated"
            self.asked[result.request_id] = result

        self.launch("ask:A", op, done)

    def questions(self) -> list[str]:
        """Questions whose append to B's inbox returned (B may reply by id from then on)."""
        b = session_inbox(B_SID)
        return [m for m, where in self.appended.items() if where == b and self.envelopes[m].request_id]

    @precondition(lambda self: self.questions() and (self.free("reply1:B") or self.free("reply2:B")))
    @rule(data=st.data(), wake=st.sampled_from([None, "auto", "off"]))
    def start_reply(self, data: st.DataObject, wake: Any) -> None:
        slot = "reply1:B" if self.free("reply1:B") else "reply2:B"
        question = data.draw(st.sampled_from(self.questions()), label="question")
        request_id = self.envelopes[question].request_id
        assert request_id is not None
        ctx, me = self.ctxs["B"], self.me["B"]

        def op() -> Any:
            return drive(reply_to_message(ctx, me, question, "answer", wake=wake), ctx, self.sched.current())  # type: ignore[arg-type]

        def done(result: Any) -> None:
            assert isinstance(result, Replied), result
            assert result.correlated
            self.replies.append(Reply(question, request_id, result.message_id, result.wake.reason))

        self.launch(slot, op, done)

    @precondition(lambda self: self.free("read:A") or self.free("read:B"))
    @rule(who=st.sampled_from(["A", "B"]))
    def start_read(self, who: str) -> None:
        slot = f"read:{who}"
        if not self.free(slot):
            return
        self.launch(slot, self.reader(who), lambda got: None)

    # Invariants ---------------------------------------------------------------------------------
    def extra_checks(self) -> None:
        by_request: dict[str, list[Reply]] = {}
        for reply in self.replies:
            by_request.setdefault(reply.request_id, []).append(reply)
        for request_id, takers in self.consumed.items():
            assert len(takers) <= 1, f"R47: pending ask {request_id} consumed {len(takers)} times by {takers}"
        for request_id, replies in by_request.items():
            late = [r for r in replies if r.reason in LATE]
            assert len(late) <= 1, f"R47: {len(late)} late wakes for one pending ask: {late}"
            if late:
                assert request_id in self.pending_puts, "R38: late path without a pending record"
            asked = self.asked.get(request_id)
            if asked is None or not asked.timed_out:
                continue
            by_replier = [a for a in self.consumed.get(request_id, []) if a.startswith("reply")]
            for reply in replies:
                readers = [a for a in self.taken_by.get(reply.message_id, []) if a != "ask:A"]
                assert by_replier or readers, (
                    f"R38: reply {reply.message_id} to timed-out ask {request_id} was neither returned "
                    "nor woke the asker (late_reply_to_pending)\n" + "\n".join(self.log)
                )


@pytest.mark.parametrize("factory", store_params())
def test_ask_timeout_vs_late_reply(factory: StoreFactory) -> None:
    run_state_machine_as_test(lambda: AskRace(factory), settings=budget(factory, 60, 80))


class RacyPendingStore(MemoryStore):
    """The planted bug: pending_take as a read, then (another actor may run here) a delete.

    Two concurrent consumers can both read the record, so both get it: not single-winner.
    """

    def __init__(self) -> None:
        super().__init__()
        self.sched: Scheduler | None = None

    def attach_scheduler(self, sched: Scheduler) -> None:
        self.sched = sched

    def pending_take(self, requester: str, request_id: str, replier: str | None) -> PendingAsk | None:
        with self._lock:
            record = self._pending.get((requester, request_id))
        if record is None or (replier is not None and record.peer not in (None, replier)):
            return None
        if self.sched is not None and threading.current_thread() is not threading.main_thread():
            self.sched.gate("pending_take:delete")
        with self._lock:
            self._pending.pop((requester, request_id), None)
        return record


def racy_factory() -> tuple[Any, Any]:
    return RacyPendingStore(), lambda: None


class FocusedAskRace(AskRace):
    """Machine 2 with fewer distractions, so the planted bug is found fast and reliably: one
    ask, no out-of-band readers (they only ever make replies *not* race for the record)."""

    QUANTUM_MS = 200

    def start_read(self, who: str) -> None:  # not a rule here
        raise AssertionError("unused")

    @precondition(lambda self: self.n_asks == 0)
    @rule()
    def start_ask(self) -> None:
        super().start_ask()


def test_planted_non_single_winner_pending_take_is_caught() -> None:
    """A pending_take that is not single-winner lets two replies both take the late path: R47 fails."""
    caught_within(
        5,
        lambda: run_state_machine_as_test(
            lambda: FocusedAskRace(racy_factory), settings=race_settings(300, 40, shrink=False)
        ),
        "R47",
    )
