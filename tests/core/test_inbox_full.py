"""Issue 15 item 12: a send to a full inbox is refused with ``inbox-full`` before anything is recorded.

A delegation above all: no ledger line (no phantom open work for the receiver), no waiter
expectation for the sender, no outbox record, no wake. If the inbox fills between the look and the
append, what was recorded is withdrawn.
"""

from __future__ import annotations

import pytest

from oxtail_core import Context, FakeClock, MemoryHost, MemoryStore, RecordingWaker, Settings
from oxtail_core.convert import line_size
from oxtail_core.errors import InboxFull
from oxtail_core.results import Sent
from oxtail_core.routing import session_inbox
from oxtail_core.testing.contract import mint
from oxtail_core.trace import ListTracer
from tests.support.faults import FaultyStore
from tests.support.world import A, B, World

CAP = 4096


def small_world() -> World:
    store = MemoryStore(inbox_max_bytes=CAP)
    clock, waker, host, tracer = FakeClock(), RecordingWaker({"%1", "%2"}), MemoryHost(), ListTracer()
    ctx = Context(store, waker, clock, host, settings=Settings(), tracer=tracer)
    return World(ctx, clock, store, waker, host, tracer)


def fill(w: World, sid: str) -> None:
    filler = mint(1, "f" * 100)
    count = CAP // line_size(filler)
    w.store.append(session_inbox(sid), [mint(i, "f" * 100) for i in range(count)])


@pytest.mark.parametrize("action_required", [True, False])
def test_a_send_to_a_full_inbox_is_refused_before_anything_is_recorded(action_required: bool) -> None:
    w = small_world()
    a, _b = w.join(1, A, pane="%1"), w.join(2, B, pane="%2")
    fill(w, B)
    depth = w.depth(B)
    with pytest.raises(InboxFull, match=r"^inbox-full: the peer has \d+ bytes of unread mail"):
        a.send(B, "x" * 1000, action_required=action_required)
    assert w.depth(B) == depth
    assert w.store.ledger_open(B) == [] and w.store._ledgers.get(B, []) == []
    assert w.store.pending_list() == [] and w.store._outbox == {} and w.waker.keys == []


def test_a_delegation_that_finds_the_inbox_filled_after_the_look_is_withdrawn() -> None:
    w = small_world()
    a, _b = w.join(1, A, pane="%1"), w.join(2, B, pane="%2")
    w.ctx.store = faulty = FaultyStore(w.store)
    faulty.before("append", lambda: fill(w, B))  # another sender fills it between admit and append
    with pytest.raises(InboxFull):
        a.send(B, "x" * 1000, action_required=True)
    assert w.store.ledger_open(B) == []  # the recorded line is closed: no phantom open work
    assert w.store.pending_list() == []  # and the sender is owed nothing
    assert w.store._outbox == {} and w.waker.keys == []


def test_a_read_makes_room_again() -> None:
    w = small_world()
    a, b = w.join(1, A, pane="%1"), w.join(2, B, pane="%2")
    fill(w, B)
    with pytest.raises(InboxFull):
        a.send(B, "x" * 1000, wake="off")
    b.read_messages()
    assert isinstance(a.send(B, "x" * 1000, wake="off"), Sent)
