"""Machine 1: delivery vs drain vs reply, interleaved at Store-call granularity.

Two senders deliver to a claimed receiver (``send_message``: resolve, mint,
ledger record, append, wake); the receiver reads (``read_messages``: fold,
recover, take) and settles as a separate step, and replies by id
(``reply_to_message``) to any message whose append returned -- the instant a
message is visible a hook may have shown it. A rule makes a
sender's next ledger write fail (R2). Checked after every step (RaceMachine):
G1 no loss, G2 exactly once, R1 every visible or in-flight id resolves in the
receiver's ledger unless its ledger write failed; on each reply: the id
resolved (never ``message-not-found``), except after a failed ledger write,
where the message was still delivered and the reply fails closed (R2).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule, run_state_machine_as_test

from oxtail_core import ask as ask_mod
from oxtail_core import delivery
from oxtail_core import messaging as messaging_mod
from oxtail_core.errors import StoreError
from oxtail_core.messaging import reply_to_message, send_message
from oxtail_core.results import Messages, Refused, Replied, Sent
from oxtail_core.routing import session_inbox
from oxtail_core.testing import (
    RaceMachine,
    StoreFactory,
    budget,
    caught_within,
    drive,
    memory_factory,
    race_settings,
)
from oxtail_core.testing.races import sid
from tests.support.stores import store_params

SENDERS = ("S1", "S2")


class DeliveryRace(RaceMachine):
    def __init__(self, factory: StoreFactory) -> None:
        super().__init__(factory)
        self.join("R", 100, sid(1))
        self.join("S1", 201, sid(2))
        self.join("S2", 202, sid(3))
        self.count = 0
        self.replied_to: list[str] = []

    @precondition(lambda self: any(self.free(f"send:{s}") for s in SENDERS))
    @rule(sender=st.sampled_from(SENDERS), wake=st.sampled_from([None, "auto", "off"]))
    def start_send(self, sender: str, wake: Any) -> None:
        slot = f"send:{sender}"
        if not self.free(slot):
            return
        self.count += 1
        ctx, me, body = self.ctxs[sender], self.me[sender], f"m{self.count}"

        def op() -> Any:
            return drive(send_message(ctx, me, sid(1), body, wake=wake), ctx, self.sched.current())  # type: ignore[arg-type]

        def done(result: Any) -> None:
            assert isinstance(result, Sent), result
            assert result.message_id in self.appended

        self.launch(slot, op, done)

    @precondition(lambda self: self.free("read:R"))
    @rule()
    def start_read(self) -> None:
        op = self.reader("R")

        def done(got: Messages) -> None:
            ids = [m.id for m in got.messages]
            assert len(ids) == len(set(ids))

        self.launch("read:R", op, done)

    @precondition(lambda self: self.free("reply:R") and self.receiver_ids())
    @rule(data=st.data())
    def start_reply(self, data: st.DataObject) -> None:
        message_id = data.draw(st.sampled_from(self.receiver_ids()), label="message_id")
        ctx, me = self.ctxs["R"], self.me["R"]

        def op() -> Any:
            return drive(reply_to_message(ctx, me, message_id, "re"), ctx, self.sched.current())  # type: ignore[arg-type]

        def done(result: Any) -> None:
            if message_id in self.ledger_failed:  # R2: delivered without a handle, fails closed
                assert isinstance(result, Refused) and result.error == "message-not-found", result
                return
            assert isinstance(result, Replied), f"R1: reply to shown id {message_id} gave {result}"
            assert result.in_reply_to == message_id
            self.replied_to.append(message_id)

        self.launch("reply:R", op, done)

    @precondition(lambda self: any(not self.free(f"send:{s}") for s in SENDERS))
    @rule(sender=st.sampled_from(SENDERS))
    def ledger_down(self, sender: str) -> None:
        """R2: the sender's next ledger write fails (lock budget exceeded, disk error)."""
        self.store.inject(f"send:{sender}", frozenset({"ledger_record"}), StoreError("injected"))

    def receiver_ids(self) -> list[str]:
        """Ids whose append to R's inbox returned: from then on a hook may have shown them."""
        inbox = session_inbox(sid(1))
        return [m for m, where in self.appended.items() if where == inbox]


@pytest.mark.parametrize("factory", store_params())
def test_delivery_drain_reply(factory: StoreFactory) -> None:
    run_state_machine_as_test(lambda: DeliveryRace(factory), settings=budget(factory, 60, 50))


def append_then_record(ctx: Any, peer: Any, envelope: Any, *, recorded: Any = None) -> bool:
    """The planted bug: delivery with its two lines swapped (append before the ledger record)."""
    appended = ctx.store.append(delivery.inbox_of(peer), [envelope])
    delivery.record_received(ctx, peer.session_id, envelope)
    if recorded is not None:
        recorded()
    return appended


def test_planted_append_before_record_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Swapping deliver's two lines makes machine 1 fail on R1 (a visible id the ledger lacks)."""
    monkeypatch.setattr(messaging_mod, "deliver", append_then_record)
    monkeypatch.setattr(ask_mod, "deliver", append_then_record)
    caught_within(
        5,
        lambda: run_state_machine_as_test(
            lambda: DeliveryRace(memory_factory), settings=race_settings(200, 40, shrink=False)
        ),
        "R1",
    )
