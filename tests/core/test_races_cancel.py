"""Machine 5: cancelling an ask at any step while its reply arrives (R8, R45, R46, R40, R42).

Machine 2 (asker A, replier B, out-of-band readers) plus two rules: ``cancel``
asks A's driver to throw :class:`~oxtail_core.errors.Cancelled` into the flow
at its next wait (where a real driver's cancellation lands: ``effects.run`` on
Ctrl-C, ``run_async`` on task cancellation), and ``busy`` makes A's next
``take``/``recover``/``depth``/``merge`` raise StoreBusy (a contended inbox:
the flow must treat it as "could not look", never as "no reply"). Checked
after every step, besides G1/G2/R1 and machine 2's R38/R47:

- a cancelled ask ends in Cancelled or AskAborted (never swallowed, never another error);
- once the ask has ended, for whatever reason, it holds nothing in flight: a reply
  it took was either returned (settled) or put back -- AskAborted -- with the same id,
  waiting again in A's inbox (R8/R45: cancellation never loses a reply);
- a cancel that lands before the deadline writes no pending record (R46).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis.stateful import precondition, rule, run_state_machine_as_test

from oxtail_core.ask import ask_peer
from oxtail_core.errors import AskAborted, Cancelled, StoreBusy
from oxtail_core.results import Asked
from oxtail_core.testing import StoreFactory, budget, drive
from tests.core.test_races_ask import B_SID, AskRace
from tests.support.stores import store_params

GUARDED = frozenset({"take", "recover", "depth", "merge"})


class CancelRace(AskRace):
    def __init__(self, factory: StoreFactory) -> None:
        super().__init__(factory)
        self.ask_batches: dict[str, list[str]] = {}  # batch id -> ids, taken by the ask
        self.cancelled: dict[str, Any] = {}  # ask label -> outcome
        self.puts_by_ask: list[tuple[int, int]] = []  # (now, ask start) per pending_put by the ask
        self.cancel_requested: set[str] = set()
        self.current_label = ""
        self.ask_started = 0

    def _observe(self, actor: str, method: str, args: tuple[Any, ...], result: Any) -> None:
        super()._observe(actor, method, args, result)
        if actor == "ask:A" and method == "take" and result is not None:
            self.ask_batches[result.batch_id] = [e.id for e in result.envelopes]
        if actor == "ask:A" and method == "pending_put":
            self.puts_by_ask.append((self.clock.now_ms(), self.ask_started))

    @precondition(lambda self: self.free("ask:A") and self.n_asks < 2)
    @rule()
    def start_ask(self) -> None:
        self.n_asks += 1
        label = f"ask#{self.n_asks}"
        self.ask_started = self.clock.now_ms()
        ctx, me = self.ctxs["A"], self.me["A"]

        def op() -> Any:
            result = drive(ask_peer(ctx, me, B_SID, label), ctx, self.sched.current())  # type: ignore[arg-type]
            if isinstance(result, Asked) and result.batch is not None:
                ctx.store.settle(result.batch)
            return result

        def done(result: Any) -> None:
            actor_cancelled = label in self.cancel_requested
            if isinstance(result, Asked):
                if result.reply is not None:
                    assert result.reply.reply_to == result.request_id
                self.asked[result.request_id] = result
            else:
                assert actor_cancelled, f"an uncancelled ask ended with {result!r}"
                assert isinstance(result, (Cancelled, AskAborted)), result
                self.cancelled[label] = result

        self.current_label = label
        self.launch("ask:A", op, done)

    @precondition(lambda self: not self.free("ask:A"))
    @rule()
    def cancel(self) -> None:
        actor, _ = self.slots["ask:A"]
        actor.cancel_requested = True
        self.cancel_requested.add(self.current_label)

    @precondition(lambda self: not self.free("ask:A"))
    @rule()
    def busy(self) -> None:
        self.store.inject("ask:A", GUARDED, StoreBusy("injected: inbox lock contended"))

    def extra_checks(self) -> None:
        super().extra_checks()
        if self.free("ask:A"):
            held = [b for b in self.ask_batches if b in self.flight]
            assert not held, f"R45: the ended ask still holds batches {held} in flight"
        timeout = self.SETTINGS.ask_timeout_ms
        for now, started in self.puts_by_ask:
            assert now - started >= timeout, "R46: a pending record written before the deadline"


@pytest.mark.parametrize("factory", store_params())
def test_cancel_never_loses_the_reply(factory: StoreFactory) -> None:
    run_state_machine_as_test(lambda: CancelRace(factory), settings=budget(factory, 60, 80))
