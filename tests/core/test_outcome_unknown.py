"""A networked store's write whose reply was lost (OutcomeUnknown): never taken for "nothing changed".

A MemoryStore stands in for Redis here: it does the write, then loses the answer, as a store whose
connection dropped after the server ran the command (tests/redis/test_redis_faults.py does it for
real, with a proxy that goes dark).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from oxtail_core import Context, FakeClock, MemoryHost, MemoryStore, Peer, RecordingWaker
from oxtail_core.errors import OutcomeUnknown
from oxtail_core.model import Envelope
from oxtail_core.protocols import Holder, InboxId
from oxtail_core.routing import session_inbox
from oxtail_core.testing.contract import take_all

ALICE = "aaaaaaaa-0000-4000-8000-00000000000a"
BOB = "bbbbbbbb-0000-4000-8000-00000000000b"


class LosesAnswers(MemoryStore):
    """Does every write, and loses the answer of the ones named in ``lose``."""

    def __init__(self) -> None:
        super().__init__()
        self.lose: set[str] = set()

    def append(self, inbox: InboxId, envelopes: Sequence[Envelope], **kw: Any) -> bool:
        done = super().append(inbox, envelopes, **kw)
        if "append" in self.lose:
            raise OutcomeUnknown("append: outcome unknown, redis://r:6379/0 did not answer: timed out")
        return done

    def recover(self, inbox: InboxId, is_alive: Any) -> int:
        if "recover" in self.lose:
            raise OutcomeUnknown("recover: outcome unknown, redis://r:6379/0 did not answer: timed out")
        return super().recover(inbox, is_alive)


def pair() -> tuple[LosesAnswers, Peer, Peer]:
    store = LosesAnswers()
    ctx = Context(store, RecordingWaker(), FakeClock(), MemoryHost())
    return store, Peer.join(ctx, 10, session_id=ALICE, cwd="/p"), Peer.join(ctx, 11, session_id=BOB, cwd="/p")


def test_a_send_whose_append_answer_was_lost_names_the_message_the_caller_can_look_up() -> None:
    store, alice, _ = pair()
    store.lose.add("append")
    with pytest.raises(OutcomeUnknown) as caught:
        alice.send(BOB, "did this arrive?", wake="off")
    taken = take_all(store, session_inbox(BOB), Holder(1))
    assert taken is not None
    (arrived,) = taken.envelopes  # it was delivered: only its answer was lost
    assert caught.value.message_id == arrived.id
    assert caught.value.code == "store-outcome-unknown"
    assert str(caught.value).endswith(
        f"; message {arrived.id} may have been delivered: message_status tells, and sending again would"
        " make a second message"
    )


def test_a_read_whose_recovery_answer_was_lost_is_a_skipped_look_and_the_mail_waits() -> None:
    store, alice, bob = pair()
    alice.send(BOB, "hello", wake="off")
    store.lose.add("recover")
    got = bob.read_messages()
    assert (got.messages, got.skipped) == ((), 1)
    store.lose.clear()
    assert [m.body for m in bob.read_messages().messages] == ["hello"]
