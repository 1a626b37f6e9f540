"""Durable obligations on a MemoryStore (accounting.md §3; A13–A38).

Wake statuses are asserted as "typed" (``fired`` or ``fired_unconfirmed``)
where 0.32.1's honest-wake rule decides between the two (another part of
issue 9), and exactly where the obligation flow decides (late reply, none).
"""

from __future__ import annotations

import pytest

from oxtail_core import texts
from oxtail_core.errors import ObligationNotRecorded, StoreError
from oxtail_core.model import Capabilities, ClientInfo, Envelope, RegistryEntry
from oxtail_core.obligations import BLOCKED_PREFIX, completion_id
from oxtail_core.peer import Peer
from oxtail_core.results import Closed, OpenWork, RequesterUnreachable, Sent
from oxtail_core.routing import publish
from oxtail_core.settings import Settings
from oxtail_mcp.server.responses import render
from tests.support.faults import FaultyStore
from tests.support.world import A, B, C, World, make_world

TYPED = {"fired", "fired_unconfirmed"}


def _sent(result: object) -> Sent:
    assert isinstance(result, Sent), result
    return result


def _closed(result: object) -> Closed:
    assert isinstance(result, Closed), result
    return result


def delegate(w: World, body: str = "please do X", **kw: object) -> tuple[Peer, Peer, Sent]:
    a, b = w.join(1, A, pane="%1"), w.join(2, B, pane="%2")
    return a, b, _sent(a.send(B, body, action_required=True, **kw))  # type: ignore[arg-type]


def inbound(w: World, message_id: str) -> Envelope:
    env = w.store.ledger_lookup(B, message_id)
    assert env is not None
    return env


def test_a_durable_delegation_is_recorded_open_carries_a_request_id_and_leaves_an_expectation() -> None:
    w = make_world()
    a, _b, sent = delegate(w)
    out = render(sent)
    assert list(out)[:7] == [
        "schema_version",
        "ok",
        "message_id",
        "target_session_id",
        "target_server_pid",
        "action_required",
        "obligation_durable",
    ]
    assert out["obligation_durable"] is True and "note" not in out and "bootstrap" not in out
    assert out["wake_status"] in TYPED and "delivery_outlook" not in out  # effective wake "auto"
    env = inbound(w, sent.message_id)
    assert env.action_required and env.request_id and env.from_session_id == A
    [expectation] = w.store.pending_list()
    assert (expectation.requester, expectation.request_id, expectation.peer) == (A, env.request_id, B)
    assert (expectation.message_id, expectation.owner_epoch) == (sent.message_id, a.me.started_at)
    assert [e.id for e in w.store.ledger_open(B)] == [sent.message_id]


def test_a13_the_obligation_is_listed_before_its_message_becomes_visible() -> None:
    w = make_world()
    a, _b = w.join(1, A), w.join(2, B)
    w.ctx.store = faulty = FaultyStore(w.store)
    seen: list[list[str]] = []
    faulty.before("append", lambda: seen.append([e.id for e in w.store.ledger_open(B)]))
    sent = _sent(a.send(B, "task", action_required=True))
    assert seen == [[sent.message_id]]


def test_a14_a_failed_ledger_write_refuses_the_delegation_loudly_and_records_nothing() -> None:
    w = make_world()
    a, _b = w.join(1, A, pane="%1"), w.join(2, B, pane="%2")
    w.ctx.store = faulty = FaultyStore(w.store)
    faulty.fail("ledger_record")
    with pytest.raises(ObligationNotRecorded) as caught:
        a.send(B, "task", action_required=True)
    assert str(caught.value).startswith(
        "durable obligation not recorded — ledger write failed, delivery aborted: "
    )
    assert "ENOSPC" in str(caught.value)
    assert w.depth(B) == 0 and w.store.ledger_open(B) == [] and w.waker.keys == []
    assert w.store.pending_list() == []  # A15, ours: no orphan expectation to re-poke
    assert w.store._outbox == {}
    faulty.fail("ledger_record")
    plain = _sent(a.send(B, "fyi"))  # a plain message under the same failure still goes
    assert w.depth(B) == 1 and w.store.ledger_lookup(B, plain.message_id) is None


def test_a16_an_append_failing_after_the_ledger_write_leaves_an_open_obligation_the_count_reveals() -> None:
    w = make_world()
    a, b = w.join(1, A), w.join(2, B)
    w.ctx.store = faulty = FaultyStore(w.store)
    faulty.fail("append")
    with pytest.raises(StoreError):
        a.send(B, "task", action_required=True)
    assert w.depth(B) == 0
    got = b.read_messages()
    assert got.messages == () and got.open_work == 1
    assert render(got)["open_work_hint"] == texts.open_work_hint(1)


def test_a17_a_delegation_to_an_unclaimed_peer_is_plain_mail_with_note_s2_and_still_wakes() -> None:
    w = make_world()
    a = w.join(1, A)
    u = w.join(4, None, pane="%3", tmux_session="solo")
    sent = _sent(a.send("solo", "task", action_required=True))
    out = render(sent)
    assert (out["action_required"], out["obligation_durable"], out["bootstrap"]) == (True, False, True)
    assert out["note"] == texts.DELEGATION_TO_UNCLAIMED and out["wake_status"] in TYPED
    [env] = u.read_messages().messages
    assert not env.action_required and env.request_id is None
    assert w.store.pending_list() == []


def test_a17_a_delegation_to_a_peer_without_the_capability_gets_note_s3() -> None:
    w = make_world()
    a = w.join(1, A)
    old = RegistryEntry(
        server_pid=2,
        started_at=1,
        client=ClientInfo(type="claude-code", session_id=B, cwd="/p"),
        tmux_pane="%2",
        capabilities=Capabilities(obligations=False),
    )
    publish(w.ctx, old)
    out = render(a.send(B, "task", action_required=True))
    assert (out["obligation_durable"], out["note"]) == (False, texts.DELEGATION_TO_INCAPABLE)
    assert "bootstrap" not in out and out["wake_status"] in TYPED
    assert w.store.ledger_open(B) == [] and w.store.pending_list() == []


def test_a18_action_required_false_is_the_same_as_absent() -> None:
    w = make_world()
    a, _ = w.join(1, A), w.join(2, B)
    with_false = render(a.send(B, "x", action_required=False))
    absent = render(a.send(B, "y"))
    assert set(with_false) == set(absent) and "action_required" not in with_false


def test_a19_a_delegation_with_reply_to_keeps_the_strict_default_and_carries_both_ids() -> None:
    w = make_world()
    a, b, sent = delegate(w, reply_to="caller-thread")
    out = render(sent)
    assert out["obligation_durable"] is True and out["wake_reason"] == "reply_to_default"
    env = inbound(w, sent.message_id)
    assert env.reply_to == "caller-thread" and env.request_id and env.request_id != "caller-thread"
    done = _closed(b.complete_work(sent.message_id, "ok"))
    assert done.correlated is True
    [completion] = a.read_messages().messages
    assert completion.reply_to == env.request_id


def test_a20_a_delegation_to_an_unknown_target_reports_skipped_no_target() -> None:
    w = make_world()
    a = w.join(1, A)
    assert render(a.send(C, "task", action_required=True)) == {
        "schema_version": 1,
        "ok": False,
        "error": "target-not-found",
        "wake_status": "skipped_no_target",
    }


def test_a21_a_wake_off_delegation_has_no_request_id_no_expectation_and_closes_uncorrelated() -> None:
    w = make_world()
    _a, b, sent = delegate(w, wake="off")
    out = render(sent)
    assert out["obligation_durable"] is True and "wake_status" not in out
    assert inbound(w, sent.message_id).request_id is None and w.store.pending_list() == []
    done = render(b.block_work(sent.message_id, "no access"))
    assert done["correlation"] == "uncorrelated" and done["obligation_state"] == "blocked"
    assert done["wake_status"] in TYPED and "wake_reason" not in done


def test_a22_an_unclaimed_senders_delegation_closes_locally_and_sends_nothing() -> None:
    w = make_world()
    u = w.join(4, None)
    b = w.join(2, B)
    sent = _sent(u.send(B, "task", action_required=True))
    assert w.store.pending_list() == [] and inbound(w, sent.message_id).from_session_id is None
    assert render(b.complete_work(sent.message_id, "done")) == {
        "schema_version": 1,
        "ok": True,
        "message_id": sent.message_id,
        "obligation_state": "done",
        "note": texts.CLOSED_LOCALLY,
    }
    assert w.store.ledger_open(B) == [] and u.read_messages().messages == ()


def test_completing_delivers_the_deterministic_completion_and_consumes_the_expectation() -> None:
    w = make_world()
    a, b, sent = delegate(w)
    env = inbound(w, sent.message_id)
    w.clock.advance(2000)
    out = render(b.complete_work(sent.message_id, "X done"))
    cid = completion_id(sent.message_id)
    assert out == {
        "schema_version": 1,
        "ok": True,
        "message_id": sent.message_id,
        "obligation_state": "done",
        "completion_message_id": cid,
        "requester_session_id": A,
        "correlation": "correlated",
        "wake_status": out["wake_status"],
        "wake_reason": "late_reply_to_pending",
    }
    assert out["wake_status"] in TYPED and w.store.pending_list() == []
    [completion] = a.read_messages().messages
    assert (completion.id, completion.body, completion.reply_to) == (cid, "X done", env.request_id)
    assert (completion.source_message_id, completion.from_session_id) == (sent.message_id, B)
    assert not completion.action_required
    assert w.store.outbox_get(cid) is not None and b.message_status(cid).status == "delivered"
    assert w.store.ledger_open(B) == []


def test_the_completion_id_is_the_sha256_prefix_of_the_reference() -> None:
    import hashlib

    assert (
        completion_id("aa6dc0d1a72b6551")
        == hashlib.sha256(b"oxtail-complete:aa6dc0d1a72b6551").hexdigest()[:16]
    )


def test_a23_a_concurrent_close_has_one_winner_and_the_requester_sees_the_completion_once() -> None:
    w = make_world()
    a, b, sent = delegate(w)
    b2 = w.join(3, B)  # a sibling server of the same agent closes at the same time
    w.ctx.store = faulty = FaultyStore(w.store)
    rival: list[object] = []
    faulty.before("append", lambda: rival.append(b2.block_work(sent.message_id, "cannot")))
    loser = _closed(b.complete_work(sent.message_id, "done"))
    winner = _closed(rival[0])
    assert winner.state == "blocked" and not winner.already_closed
    assert loser.already_closed and loser.state == "done"  # Appendix B.3: the caller's requested state
    assert loser.completion_message_id == winner.completion_message_id == completion_id(sent.message_id)
    got = a.read_messages()
    assert [m.id for m in got.messages] == [completion_id(sent.message_id)]  # once per drain
    assert a.read_messages().messages == ()
    assert render(b.complete_work(sent.message_id, "again")) == {  # a sequential retry: N3, stored state
        "schema_version": 1,
        "ok": True,
        "message_id": sent.message_id,
        "obligation_state": "blocked",
        "already_closed": True,
        "note": texts.ALREADY_CLOSED,
    }


def test_a24_a_crash_between_delivery_and_claim_redelivers_the_same_completion_once() -> None:
    w = make_world()
    a, b, sent = delegate(w)
    w.ctx.store = faulty = FaultyStore(w.store)
    faulty.fail("ledger_close")  # the closer dies after delivering, before claiming
    with pytest.raises(StoreError):
        b.complete_work(sent.message_id, "done")
    assert [e.id for e in w.store.ledger_open(B)] == [sent.message_id]
    retry = _closed(b.complete_work(sent.message_id, "done"))
    cid = completion_id(sent.message_id)
    assert retry.completion_message_id == cid and not retry.already_closed
    assert [m.id for m in a.read_messages().messages] == [cid]
    assert w.store.ledger_lookup(A, cid) is not None
    assert sum(1 for r in w.store._ledgers[A] if r.envelope.id == cid) == 1


def test_a25_the_receipt_guard_closes_even_after_the_requester_read_it_and_died() -> None:
    w = make_world()
    a, b, sent = delegate(w)
    w.ctx.store = faulty = FaultyStore(w.store)
    faulty.fail("ledger_close")
    with pytest.raises(StoreError):
        b.complete_work(sent.message_id, "done")
    a.read_messages()  # the requester took the completion in (receipt) ...
    w.host.kill(1)  # ... and exited
    assert render(b.complete_work(sent.message_id, "done")) == {
        "schema_version": 1,
        "ok": True,
        "message_id": sent.message_id,
        "obligation_state": "done",
        "completion_message_id": completion_id(sent.message_id),
        "requester_session_id": A,
        "already_delivered": True,
        "note": texts.ALREADY_DELIVERED,
    }
    assert w.store.ledger_open(B) == []


def test_a26_an_unreachable_requester_leaves_the_obligation_open_until_it_returns() -> None:
    w = make_world()
    _a, b, sent = delegate(w)
    w.host.kill(1)
    out = b.complete_work(sent.message_id, "done")
    assert isinstance(out, RequesterUnreachable)
    assert render(out) == {
        "schema_version": 1,
        "ok": False,
        "error": "requester-unreachable",
        "requester_error": "target-not-found",
        "message": texts.requester_unreachable(A),
    }
    assert [e.id for e in w.store.ledger_open(B)] == [sent.message_id]
    a2 = w.join(5, A)  # A37: the requester restarts under the same id
    assert _closed(b.complete_work(sent.message_id, "done")).wake.reason is not None  # expectation adopted
    assert [m.body for m in a2.read_messages().messages] == ["done"]


def test_a27_a_close_with_wake_off_consumes_the_expectation_quietly_and_never_has_an_outlook() -> None:
    w = make_world()
    _, b, sent = delegate(w)
    out = render(b.complete_work(sent.message_id, "done", wake="off"))
    assert out["wake_reason"] == "late_reply_to_pending_suppressed" and "wake_status" not in out
    assert w.store.pending_list() == [] and "delivery_outlook" not in out
    w2 = make_world()
    _, b2, sent2 = delegate(w2, wake="off")
    out2 = render(b2.complete_work(sent2.message_id, "done", wake="off"))
    assert not {"wake_status", "wake_reason", "delivery_outlook"} & set(out2)


def test_a28_a_block_reason_of_exactly_8192_bytes_is_delivered_as_8202() -> None:
    w = make_world()
    a, b, sent = delegate(w)
    with pytest.raises(ValueError, match="reason exceeds 8192 UTF-8 bytes"):
        b.block_work(sent.message_id, "r" * 8193)
    reason = "é" * 4096
    done = _closed(b.block_work(sent.message_id, reason))
    assert done.state == "blocked"
    [completion] = a.read_messages().messages
    assert completion.body == BLOCKED_PREFIX + reason and completion.body_bytes == 8202
    with pytest.raises(ValueError, match="body exceeds 8192 UTF-8 bytes"):
        b.complete_work(sent.message_id, "b" * 8193)


def test_a29_a_reply_to_a_delegation_consumes_the_expectation_but_leaves_it_open() -> None:
    w = make_world()
    _a, b, sent = delegate(w)
    replied = render(b.reply(sent.message_id, "working on it"))
    assert replied["correlation"] == "correlated" and replied["wake_reason"] == "late_reply_to_pending"
    assert [e.id for e in w.store.ledger_open(B)] == [sent.message_id] and w.store.pending_list() == []
    done = render(b.complete_work(sent.message_id, "done"))
    assert done["correlation"] == "correlated" and "wake_reason" not in done


def test_a30_close_checks_run_in_order() -> None:
    w = make_world()
    a, b = w.join(1, A), w.join(2, B)
    u = w.join(4, None)
    assert render(u.complete_work("0123456789abcdef", "x"))["error"] == "no-session-id"
    assert render(u.block_work("0123456789abcdef", "x"))["message"] == (
        "This session has not claimed a session_id, so it has no received-ledger to close an obligation "
        "from. Call claim_session first."
    )
    assert render(b.complete_work("0123456789abcdef", "x")) == {
        "schema_version": 1,
        "ok": False,
        "error": "message-not-found",
        "message": "No received message 0123456789abcdef in this session's ledger (it may have aged out, or "
        "predates this version). If you already handled it, no action is needed.",
    }
    plain = _sent(a.send(B, "fyi"))
    assert render(b.complete_work(plain.message_id, "x"))["error"] == "not-an-obligation"


def test_a31_open_obligations_are_never_pruned_and_become_prunable_once_closed() -> None:
    w = make_world(Settings(received_max=3))
    a, b = w.join(1, A), w.join(2, B)
    tasks = [_sent(a.send(B, f"task {i}", action_required=True, wake="off")).message_id for i in range(5)]
    plain = [_sent(a.send(B, f"fyi {i}")).message_id for i in range(3)]
    assert sorted(e.id for e in w.store.ledger_open(B)) == sorted(tasks)
    assert all(w.store.ledger_lookup(B, p) is None for p in plain[:-1])
    for t in tasks:
        _closed(b.complete_work(t, "done"))
    _sent(a.send(B, "one more"))
    assert len(w.store._ledgers[B]) == 3


def test_a32_re_recording_a_closed_obligation_never_reopens_it() -> None:
    w = make_world()
    _, b, sent = delegate(w)
    env = inbound(w, sent.message_id)
    _closed(b.complete_work(sent.message_id, "done"))
    w.store.ledger_record(B, env, 10)
    assert w.store.ledger_open(B) == []


def test_a33_open_work_is_oldest_first_and_budgeted_best_fit() -> None:
    w = make_world(Settings(read_max_messages=3, read_max_body_bytes=100))
    a, b = w.join(1, A), w.join(2, B)
    first = _sent(a.send(B, "x" * 10, action_required=True, wake="off"))
    w.clock.advance(1000)
    big = _sent(a.send(B, "y" * 95, action_required=True, wake="off"))
    same_second = [_sent(a.send(B, f"s{i}", action_required=True, wake="off")) for i in range(3)]
    out = b.open_work()
    assert isinstance(out, OpenWork)
    # the 95-byte item does not fit after the first, later small ones do (not a prefix);
    # same-second items come newest first
    shown = [first.message_id, same_second[2].message_id, same_second[1].message_id]
    assert [m.id for m in out.items] == shown
    assert out.deferred == 2 and big.message_id not in {m.id for m in out.items}
    wire = render(out)
    assert wire["count"] == 3 and wire["deferred_count"] == 2 and wire["budget_truncated"] is True
    assert list(wire["open"][0]) == [
        "message_id",
        "from_session_id",
        "request_id",
        "body",
        "enqueued_at",
        "age_seconds",
        "state",
        "required_action",
    ]
    assert wire["open"][0]["age_seconds"] == 1
    assert wire["open"][0]["required_action"] == texts.required_action(first.message_id)
    assert w.depth(B) == 5  # open work is not the mailbox: nothing was drained


def test_a33_a_first_obligation_over_the_byte_budget_is_still_shown() -> None:
    w = make_world(Settings(read_max_body_bytes=100))
    a, b = w.join(1, A), w.join(2, B)
    huge = _sent(a.send(B, "z" * 500, action_required=True, wake="off"))
    w.clock.advance(1000)
    _sent(a.send(B, "small", action_required=True, wake="off"))
    out = b.open_work()
    assert isinstance(out, OpenWork) and [m.id for m in out.items] == [huge.message_id] and out.deferred == 1


def test_a33_sixty_open_obligations_show_fifty() -> None:
    w = make_world()
    a, b = w.join(1, A), w.join(2, B)
    for i in range(60):
        a.send(B, f"t{i}", action_required=True, wake="off")
    wire = render(b.open_work())
    assert (wire["count"], wire["deferred_count"]) == (50, 10)


def test_a34_the_open_count_is_the_ledgers_and_absent_when_zero_or_unclaimed() -> None:
    w = make_world()
    _a, b, sent = delegate(w)
    assert render(b.read_messages())["open_work_count"] == 1
    wire = render(b.read_messages())
    assert wire["count"] == 0 and wire["open_work_count"] == 1  # persists across reads
    assert list(wire)[-2:] == ["open_work_count", "open_work_hint"]
    _closed(b.complete_work(sent.message_id, "done"))
    assert "open_work_count" not in render(b.read_messages())
    u = w.join(4, None)
    assert "open_work_count" not in render(u.read_messages())
    assert render(u.open_work()) == {
        "schema_version": 1,
        "ok": False,
        "error": "no-session-id",
        "message": "This session has not claimed a session_id, so it has no received-ledger and owns no "
        "obligations. Call claim_session first.",
    }


def test_a35_an_unreadable_ledger_never_loses_the_batch_it_only_omits_the_count() -> None:
    w = make_world()
    _a, b, sent = delegate(w)
    w.ctx.store = faulty = FaultyStore(w.store)
    faulty.fail("ledger_open")
    got = b.read_messages()
    assert [m.id for m in got.messages] == [sent.message_id] and "open_work_count" not in render(got)
    assert w.store.receipt_get(sent.message_id) is not None and w.tracer.named("open_work_count_failed")


def test_a36_obligations_survive_the_receivers_death_and_reappear_under_the_same_id_only() -> None:
    w = make_world()
    _a, _b, sent = delegate(w)
    w.host.kill(2)
    b_again = w.join(6, B)
    assert [m.id for m in b_again.open_work().items] == [sent.message_id]  # type: ignore[union-attr]
    other = w.join(7, C)
    assert other.open_work().items == ()  # type: ignore[union-attr]
    assert _closed(b_again.complete_work(sent.message_id, "done")).completion_message_id


def test_a38_a_completion_is_plain_mail_for_the_requester() -> None:
    w = make_world()
    a, b, sent = delegate(w)
    done = _closed(b.complete_work(sent.message_id, "done"))
    assert done.completion_message_id is not None
    a.read_messages()
    assert render(a.complete_work(done.completion_message_id, "x"))["error"] == "not-an-obligation"
    assert render(a.reply(done.completion_message_id, "thanks"))["ok"] is True
