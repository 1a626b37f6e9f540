"""Receipts, the outbox and message_status on a MemoryStore (accounting.md §1.2, §1.3, §2; A1–A12).

Receipts are ours in one respect (spec README row 10): they are written when
a read is settled, never before, so a batch a crash lost never reads
``delivered`` (A5).
"""

from __future__ import annotations

import asyncio

import pytest

from oxtail_core import AsyncPeer, texts
from oxtail_core.model import Envelope, Receipt
from oxtail_core.protocols import InboxId
from oxtail_core.receipts import RETENTION_MS, message_status, settle_handoff
from oxtail_core.results import Asked, Sent
from oxtail_core.routing import process_inbox, session_inbox
from oxtail_core.settings import Settings
from oxtail_mcp.server.responses import render
from tests.support.faults import FaultyStore
from tests.support.world import A, B, C, make_world


def _sent(result: object) -> Sent:
    assert isinstance(result, Sent), result
    return result


def test_a_read_writes_one_receipt_per_returned_message_with_the_reader_and_via() -> None:
    w = make_world()
    a, b = w.join(1, A), w.join(2, B)
    first, second = _sent(a.send(B, "one")), _sent(a.send(B, "two"))
    assert message_status(w.ctx, first.message_id).status == "pending"
    w.clock.advance(3000)
    b.read_messages()
    for sent in (first, second):
        receipt = w.store.receipt_get(sent.message_id)
        assert receipt == Receipt(sent.message_id, w.clock.now_ms() // 1000, "read_my_messages", B)
    assert render(a.message_status(first.message_id)) == {
        "schema_version": 1,
        "ok": True,
        "message_id": first.message_id,
        "status": "delivered",
        "delivered_at": w.clock.now_ms() // 1000,
        "via": "read_my_messages",
        "recipient_session_id": B,
    }


def test_a1_the_first_hand_off_wins_and_a_later_one_changes_nothing() -> None:
    w = make_world()
    a, b = w.join(1, A), w.join(2, B)
    sent = _sent(a.send(B, "x"))
    hooked = Receipt(sent.message_id, 5, "hook", None)
    assert w.store.receipt_put(hooked)
    b.read_messages()
    assert w.store.receipt_get(sent.message_id) == hooked


def test_a2_deferred_overflow_has_no_receipt_and_stays_pending_until_returned() -> None:
    w = make_world(Settings(read_max_messages=3))
    a, b = w.join(1, A), w.join(2, B)
    ids = [_sent(a.send(B, f"m{i}")).message_id for i in range(5)]
    got = b.read_messages()
    assert [m.id for m in got.messages] == ids[:3] and got.deferred == 2
    assert [message_status(w.ctx, i).status for i in ids] == ["delivered"] * 3 + ["pending"] * 2
    assert all(w.store.receipt_get(i) is None for i in ids[3:])
    b.read_messages()
    assert all(message_status(w.ctx, i).status == "delivered" for i in ids)


def test_a3_a_batch_in_flight_reads_pending_and_delivered_only_once_settled() -> None:
    w = make_world()
    a, b = w.join(1, A), w.join(2, B)
    sent = _sent(a.send(B, "x"))
    got = b.read_messages(settle=False)
    assert got.handoff is not None and got.handoff.via == "read_my_messages" and got.handoff.recipient == B
    assert message_status(w.ctx, sent.message_id).status == "pending"  # ours: in flight is pending
    settle_handoff(w.ctx, got.handoff)
    assert message_status(w.ctx, sent.message_id).status == "delivered"


def test_a5_a_reader_killed_before_settling_leaves_no_receipt_and_the_batch_comes_back() -> None:
    w = make_world()
    a, b = w.join(1, A), w.join(2, B)
    sent = _sent(a.send(B, "x"))
    assert b.read_messages(settle=False).messages  # taken, response never handed on
    w.host.kill(2)
    assert w.store.receipt_get(sent.message_id) is None
    assert message_status(w.ctx, sent.message_id).status == "pending"
    again = w.join(3, B).read_messages()  # the restarted server recovers the dead reader's batch
    assert [m.id for m in again.messages] == [sent.message_id]
    receipt = w.store.receipt_get(sent.message_id)
    assert receipt is not None and receipt.recipient_session_id == B


def test_a6_a_batch_put_back_gets_no_receipt_and_keeps_its_id() -> None:
    w = make_world()
    a, b = w.join(1, A), w.join(2, B)
    sent = _sent(a.send(B, "x"))
    got = b.read_messages(settle=False)
    assert got.batch is not None
    w.store.restore(got.batch)
    assert w.store.receipt_get(sent.message_id) is None
    assert message_status(w.ctx, sent.message_id).status == "pending"
    assert [m.id for m in b.read_messages().messages] == [sent.message_id]
    assert message_status(w.ctx, sent.message_id).status == "delivered"


def test_an_ask_reply_is_receipted_as_ask_peer_reply_for_the_asker_when_settled() -> None:
    w = make_world()
    a, b = w.join(1, A), w.join(2, B)
    w.clock.after(10, lambda: b.reply(b.read_messages().messages[0].id, "answer"))
    asked = a.ask(B, "question?", timeout_ms=5_000, settle=False)
    assert isinstance(asked, Asked) and asked.reply is not None and asked.handoff is not None
    assert w.store.receipt_get(asked.reply.id) is None  # in hand, not yet handed on
    settle_handoff(w.ctx, asked.handoff)
    receipt = w.store.receipt_get(asked.reply.id)
    assert receipt is not None and (receipt.via, receipt.recipient_session_id) == ("ask_peer_reply", A)


def test_a7_an_unclaimed_reader_is_recorded_as_null() -> None:
    w = make_world()
    a, u = w.join(1, A), w.join(4, None, tmux_session="solo")
    sent = _sent(a.send("solo", "hello"))
    u.read_messages()
    receipt = w.store.receipt_get(sent.message_id)
    assert receipt is not None and receipt.recipient_session_id is None


def test_a8_without_an_outbox_record_a_pending_message_reads_unknown_n2() -> None:
    w = make_world()
    a, _ = w.join(1, A), w.join(2, B)
    w.ctx.store = faulty = FaultyStore(w.store)
    faulty.fail("outbox_put")
    sent = _sent(a.send(B, "x"))  # the outbox write failed: delivery went on
    assert w.depth(B) == 1
    assert render(a.message_status(sent.message_id)) == {
        "schema_version": 1,
        "ok": True,
        "message_id": sent.message_id,
        "status": "unknown",
        "note": texts.STATUS_UNKNOWN,
    }
    assert w.tracer.named("outbox_write_failed")


def test_a10_anyone_gets_the_same_answer_for_the_same_id() -> None:
    w = make_world()
    a, b, c = w.join(1, A), w.join(2, B), w.join(3, C)
    u = w.join(4, None)
    sent = _sent(a.send(B, "x"))
    for status in ("pending", "delivered"):
        answers = [render(p.message_status(sent.message_id)) for p in (a, b, c, u)]
        assert all(x == answers[0] for x in answers) and answers[0]["status"] == status
        b.read_messages()


def test_a12_an_inbox_that_cannot_be_peeked_reads_unknown_n1_never_an_error() -> None:
    w = make_world()
    a, _ = w.join(1, A), w.join(2, B)
    sent = _sent(a.send(B, "x"))
    w.ctx.store = faulty = FaultyStore(w.store)
    faulty.fail("peek")
    assert render(a.message_status(sent.message_id)) == {
        "schema_version": 1,
        "ok": True,
        "message_id": sent.message_id,
        "status": "unknown",
        "enqueued_at": sent_enqueued(w, sent),
        "target_session_id": B,
        "note": texts.STATUS_UNKNOWN_WITH_OUTBOX,
    }
    assert message_status(w.ctx, sent.message_id).status == "pending"


def sent_enqueued(w: object, sent: Sent) -> int | None:
    record = w.store.outbox_get(sent.message_id)  # type: ignore[attr-defined]
    assert record is not None
    return record.enqueued_at  # type: ignore[no-any-return]


def test_an_unknown_id_reads_unknown_n2_and_pending_lists_the_target() -> None:
    w = make_world()
    a, _ = w.join(1, A), w.join(2, B)
    assert render(a.message_status("0123456789abcdef")) == {
        "schema_version": 1,
        "ok": True,
        "message_id": "0123456789abcdef",
        "status": "unknown",
        "note": texts.STATUS_UNKNOWN,
    }
    sent = _sent(a.send(B, "x"))
    assert render(a.message_status(sent.message_id)) == {
        "schema_version": 1,
        "ok": True,
        "message_id": sent.message_id,
        "status": "pending",
        "enqueued_at": sent_enqueued(w, sent),
        "target_session_id": B,
        "target_server_pid": 2,
    }


def test_every_fresh_delivery_writes_one_outbox_record_naming_sender_and_target() -> None:
    w = make_world()
    a, b = w.join(1, A), w.join(2, B)
    sent = _sent(a.send(B, "x"))
    record = w.store.outbox_get(sent.message_id)
    assert record is not None
    assert (record.target_session_id, record.target_server_pid, record.from_session_id) == (B, 2, A)
    assert record.target_started_at is None
    reply = b.reply(b.read_messages().messages[0].id, "re")
    assert w.store.outbox_get(reply.message_id) is not None  # type: ignore[union-attr]


def test_a_bootstrap_message_to_an_unclaimed_peer_is_pending_in_its_process_inbox_across_its_claim() -> None:
    w = make_world()
    a, u = w.join(1, A), w.join(4, None, tmux_session="solo")
    sent = _sent(a.send("solo", "please claim_session"))
    out = render(sent)
    assert (
        out["target_session_id"] is None
        and out["bootstrap"] is True
        and out["note"] == texts.UNCLAIMED_TARGET
    )
    record = w.store.outbox_get(sent.message_id)
    assert record is not None and record.target_started_at == u.me.started_at
    assert w.store.ledger_open(A) == [] and w.store.depth(process_inbox(u.me)) == 1  # no ledger line
    assert message_status(w.ctx, sent.message_id).status == "pending"
    u.claim(C)  # the claim moves the process inbox into the session inbox: still pending
    assert w.store.depth(process_inbox(u.me)) == 0
    assert message_status(w.ctx, sent.message_id).status == "pending"
    u.read_messages()
    delivered = message_status(w.ctx, sent.message_id)
    assert delivered.status == "delivered" and delivered.receipt is not None
    assert delivered.receipt.recipient_session_id == C


def test_a_reference_outbox_record_without_start_time_finds_the_process_inbox_by_pid() -> None:
    w = make_world()
    a, u = w.join(1, A), w.join(4, None, tmux_session="solo")
    sent = _sent(a.send("solo", "x"))
    record = w.store.outbox_get(sent.message_id)
    assert record is not None
    w.store._outbox[sent.message_id] = type(record)(  # as 0.32.1 writes it: no target_started_at
        record.message_id, record.enqueued_at, None, 4, A
    )
    assert message_status(w.ctx, sent.message_id).status == "pending"
    assert InboxId.for_process(4, u.me.started_at) == process_inbox(u.me)


@pytest.mark.parametrize("method", ["receipt_put", "outbox_put"])
def test_a_receipt_or_outbox_failure_never_affects_the_delivery(method: str) -> None:
    w = make_world()
    a, b = w.join(1, A), w.join(2, B)
    w.ctx.store = faulty = FaultyStore(w.store)
    faulty.fail(method, times=10)
    sent = _sent(a.send(B, "x"))
    got = b.read_messages()
    assert [m.id for m in got.messages] == [sent.message_id]
    assert w.store.in_flight(got.batch.inbox) == []  # type: ignore[union-attr]


def test_receipts_and_outbox_records_older_than_seven_days_go_at_the_next_registry_write() -> None:
    w = make_world()
    a, b = w.join(1, A), w.join(2, B)
    old = _sent(a.send(B, "old"))
    b.read_messages()
    w.clock.advance(RETENTION_MS + 1000)
    fresh = _sent(a.send(B, "fresh"))
    b.read_messages()
    a.set_state("working")
    assert w.store.receipt_get(old.message_id) is None and w.store.outbox_get(old.message_id) is None
    assert w.store.receipt_get(fresh.message_id) is not None and w.store.outbox_get(fresh.message_id)


def test_operator_messages_and_delegation_tags_pass_through_a_read_with_the_operator_hint() -> None:
    w = make_world()
    b = w.join(2, B)
    operator = Envelope(
        id="1111111111111111",
        body="stop and summarize",
        enqueued_at=1,
        body_bytes=18,
        origin="operator",
        operator_source="oxpit",
    )
    w.store.append(session_inbox(B), [operator])
    wire = render(b.read_messages())
    assert wire["messages"][0]["origin"] == "operator" and wire["messages"][0]["operator_source"] == "oxpit"
    assert list(wire)[:6] == ["schema_version", "ok", "drained", "count", "messages", "operator_message_hint"]
    assert wire["operator_message_hint"] == texts.OPERATOR_MESSAGE_HINT


def test_an_async_peer_writes_receipts_when_its_read_is_settled() -> None:
    w = make_world()
    a = AsyncPeer.join(w.ctx, 1, session_id=A, cwd="/p")
    b = w.join(2, B)
    sent = _sent(b.send(A, "x"))
    got = asyncio.run(a.read_messages())
    assert [m.id for m in got.messages] == [sent.message_id]
    receipt = w.store.receipt_get(sent.message_id)
    assert receipt is not None and (receipt.via, receipt.recipient_session_id) == ("read_my_messages", A)
