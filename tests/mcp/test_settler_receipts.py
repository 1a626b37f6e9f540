"""The server's Settler writes receipts when it settles a flushed response, and none for one it puts back."""

from __future__ import annotations

from types import SimpleNamespace

from oxtail_mcp.server.app import Settler
from tests.support.world import A, B, make_world


def test_a_flushed_read_is_receipted_and_a_read_put_back_is_not() -> None:
    w = make_world()
    a, b = w.join(1, A), w.join(2, B)
    first, second = a.send(B, "one"), a.send(B, "two")
    settler = Settler(SimpleNamespace(ctx=w.ctx))  # type: ignore[arg-type]
    got = b.read_messages(settle=False)
    assert got.handoff is not None and len(got.messages) == 2
    settler.hold(7, got.handoff)
    settler.restore(7)  # the response never reached the pipe (A6)
    assert w.store.receipt_get(first.message_id) is None  # type: ignore[union-attr]
    again = b.read_messages(settle=False)
    assert again.handoff is not None and [m.id for m in again.messages] == [m.id for m in got.messages]
    settler.hold(8, again.handoff)
    settler.settle(8)  # flushed
    for sent in (first, second):
        receipt = w.store.receipt_get(sent.message_id)  # type: ignore[union-attr]
        assert receipt is not None and (receipt.via, receipt.recipient_session_id) == ("read_my_messages", B)
