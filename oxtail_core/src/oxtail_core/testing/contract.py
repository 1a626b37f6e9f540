"""The Store contract: what every backend promises, as tests any backend can run unchanged.

:class:`StoreContract` is a pytest test class with no fixtures of its own but one it needs:
``store_factory``, a :class:`~oxtail_core.testing.stores.StoreFactory`. Subclass it in a test
module (the subclass name must start with ``Test`` to be collected) and supply the fixture::

    class TestMyStoreContract(StoreContract):
        @pytest.fixture
        def store_factory(self, tmp_path: Path) -> StoreFactory:
            return lambda: (MyStore(tmp_path / "home"), lambda: None)

Each test gets a fresh store from the factory and the factory's cleanup runs after it. Besides
the :class:`~oxtail_core.protocols.Store` protocol, the contract reads ``store.in_flight(inbox)``
(the unsettled batches of an inbox, oldest first), an inspection method every backend offers
for tests and diagnostics. Backend-specific promises (files, keys, crash points) stay in the
backend's own suite; the helpers below (``mint``, ``take_all``...) are shared with it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

from oxtail_core.errors import InboxFull
from oxtail_core.limits import INBOX_MAX_BYTES
from oxtail_core.model import (
    ActivityMarker,
    Ancestor,
    ClaimRecord,
    ClientInfo,
    CloseOutcome,
    Envelope,
    LedgerRecord,
    Obligation,
    OutboxRecord,
    PendingAsk,
    PendingWake,
    Receipt,
    RegistryEntry,
    StateCard,
)
from oxtail_core.protocols import Holder, InboxId, waiting_after
from oxtail_core.testing.stores import StoreFactory

ME = InboxId.for_session("session-me")
OTHER = InboxId.for_session("session-other")
PROC = InboxId.for_process(4242, 1_700_000_000)
ALIVE = Holder(pid=1)
DEAD = Holder(pid=2)


def mint(n: int, body: str | None = None, **extra: Any) -> Envelope:
    """An envelope as a sender mints it (body_bytes and origin set, so it round-trips unchanged)."""
    text = body if body is not None else f"message {n}"
    return Envelope(id=f"{n:016x}", body=text, enqueued_at=1000 + n, body_bytes=len(text.encode()), **extra)


def duty(n: int, body: str | None = None) -> Envelope:
    """A durable delegation (``action_required``) from a claimed requester."""
    return mint(n, body, action_required=True, from_session_id="requester")


DONE = Obligation(state="done", at=1_796_150_478, note="X done")
BLOCKED = Obligation(state="blocked", at=1_796_150_479, note="[blocked] no access")


def take_all(store: Any, inbox: InboxId = ME, holder: Holder = ALIVE) -> Any:
    return store.take(inbox, lambda es: range(len(es)), holder)


def ids(envelopes: Any) -> list[str]:
    return [e.id for e in envelopes]


def entry(pid: int, sid: str | None = "sid", **kw: Any) -> RegistryEntry:
    return RegistryEntry(
        server_pid=pid,
        started_at=1_700_000_000_000,
        client=ClientInfo(type="claude-code", session_id=sid, cwd="/w"),
        state=StateCard(purpose="testing", updated_at=5),
        process_start=1_700_000_000.25,
        **kw,
    )


def claim(session_id: str, **kw: Any) -> ClaimRecord:
    """A sticky claim in ``/w`` by a Codex agent, with a live-looking transcript unless told otherwise."""
    fields: dict[str, Any] = {
        "client_type": "codex",
        "cwd": "/w",
        "ancestors": (Ancestor(100, "Wed Nov 25 10:00:00 2026"), Ancestor(1, "")),
        "session_id": session_id,
        "transcript_path": f"/t/{session_id}.jsonl",
        "claimed_at": 2_000,
        "server_pid": 4242,
    }
    return ClaimRecord(**(fields | kw))


class StoreContract:
    """The contract tests; a subclass supplies the ``store_factory`` fixture."""

    @pytest.fixture
    def store(self, store_factory: StoreFactory) -> Iterator[Any]:
        made, cleanup = store_factory()
        try:
            yield made
        finally:
            cleanup()

    # inboxes ---------------------------------------------------------------------------------
    def test_append_take_settle_round_trip(self, store: Any) -> None:
        store.append(ME, [mint(1), mint(2)])
        store.append(ME, [mint(3)])
        assert store.depth(ME) == 3
        batch = take_all(store)
        assert ids(batch.envelopes) == ids([mint(1), mint(2), mint(3)])
        assert batch.envelopes == (mint(1), mint(2), mint(3))
        assert batch.holder == ALIVE and batch.inbox == ME
        assert store.depth(ME) == 0
        assert [b.batch_id for b in store.in_flight(ME)] == [batch.batch_id]
        store.settle(batch)
        assert store.in_flight(ME) == []
        assert store.recover(ME, lambda h: False) == 0

    def test_a_prepared_settle_settles_only_when_committed(self, store: Any) -> None:
        store.append(ME, [mint(1), mint(2)])
        batch = take_all(store)
        commit = store.prepare_settle(batch)
        assert [b.batch_id for b in store.in_flight(ME)] == [batch.batch_id]  # nothing settled yet
        assert store.recover(ME, lambda h: False) == 2  # a crash before the commit brings it back
        commit()  # a late commit of a batch recovered meanwhile takes nothing
        assert store.depth(ME) == 2
        again = take_all(store)
        assert ids(again.envelopes) == ids([mint(1), mint(2)])
        store.prepare_settle(again)()
        assert store.in_flight(ME) == [] and store.depth(ME) == 0

    # the inbox cap and what a read costs (issue 15 item 12) ------------------------------------
    def test_an_inbox_at_its_cap_refuses_appends_with_inbox_full_and_keeps_what_it_holds(
        self, store: Any
    ) -> None:
        big = "x" * 8000
        held, n = 0, 0
        with pytest.raises(InboxFull, match=r"^inbox-full: ") as refused:
            while True:  # 64 lines of ~8 KiB an append: the 16 MiB cap is reached in ~33 appends
                chunk = [mint(n + i, big) for i in range(64)]
                store.admit(ME, chunk)
                store.append(ME, chunk)
                held, n = held + len(chunk), n + len(chunk)
        assert refused.value.code == "inbox-full"
        assert held * 8000 <= INBOX_MAX_BYTES < (held + 64) * 8100
        assert store.depth(ME) == held
        with pytest.raises(InboxFull):
            store.append(ME, [mint(n, big) for _ in range(64)])
        assert store.depth(ME) == held  # all or none: nothing of the refused append landed
        store.append(OTHER, [mint(n)])  # the cap is per inbox
        batch = store.take(ME, lambda es: [0], ALIVE)
        store.append(ME, [mint(n + 1, big)])  # a read made room
        store.restore(batch)  # a restore is never refused, even past the cap
        assert store.depth(ME) == held + 1
        assert ids(take_all(store).envelopes)[:2] == [mint(0).id, mint(1).id]

    def test_admit_only_looks(self, store: Any) -> None:
        store.admit(ME, [mint(1)])
        store.admit(ME, [])
        assert store.depth(ME) == 0 and store.in_flight(ME) == []

    def test_a_windowed_selector_is_offered_its_prefix_and_told_how_many_wait_beyond(
        self, store: Any
    ) -> None:
        store.append(ME, [mint(i) for i in range(10)])
        seen: list[tuple[list[str], int]] = []

        class FirstTwo:
            window = 3

            def __call__(self, messages: Any) -> list[int]:
                seen.append((ids(messages), waiting_after(messages)))
                return [0, 1]

        batch = store.take(ME, FirstTwo(), ALIVE)
        assert seen == [([mint(i).id for i in range(3)], 7)]
        assert ids(batch.envelopes) == [mint(0).id, mint(1).id]
        assert store.depth(ME) == 8
        assert ids(take_all(store).envelopes) == [mint(i).id for i in range(2, 10)]

    def test_a_long_inbox_drains_in_windowed_reads_in_order_exactly_once(self, store: Any) -> None:
        total = 2000
        for start in range(0, total, 500):
            store.append(ME, [mint(i) for i in range(start, start + 500)])
        got: list[str] = []
        waiting: list[int] = []

        class Fifty:
            window = 60

            def __call__(self, messages: Any) -> range:
                waiting.append(len(messages) + waiting_after(messages))
                return range(min(50, len(messages)))

        while (batch := store.take(ME, Fifty(), ALIVE)) is not None:
            got += ids(batch.envelopes)
            store.settle(batch)
        assert got == [mint(i).id for i in range(total)]
        assert waiting == [total - 50 * k for k in range(total // 50)] + [0]
        assert store.depth(ME) == 0 and store.in_flight(ME) == []

    def test_empty_append_and_empty_take(self, store: Any) -> None:
        store.append(ME, [])
        assert store.depth(ME) == 0
        assert take_all(store) is None
        store.append(ME, [mint(1)])
        assert store.take(ME, lambda es: [], ALIVE) is None
        assert store.depth(ME) == 1

    def test_selective_take_keeps_the_rest_in_order(self, store: Any) -> None:
        store.append(ME, [mint(i) for i in range(6)])
        batch = store.take(ME, lambda es: [i for i, e in enumerate(es) if int(e.id, 16) % 2], ALIVE)
        assert ids(batch.envelopes) == ids([mint(1), mint(3), mint(5)])
        assert ids(take_all(store).envelopes) == ids([mint(0), mint(2), mint(4)])

    def test_selector_sees_messages_in_order(self, store: Any) -> None:
        seen: list[list[str]] = []
        store.append(ME, [mint(i) for i in range(3)])
        store.take(ME, lambda es: seen.append(ids(es)) or [], ALIVE)  # type: ignore[func-returns-value]
        assert seen == [ids([mint(0), mint(1), mint(2)])]

    def test_restore_puts_back_in_front_in_original_order(self, store: Any) -> None:
        store.append(ME, [mint(1), mint(2)])
        batch = take_all(store)
        store.append(ME, [mint(3)])
        store.restore(batch)
        assert store.in_flight(ME) == []
        assert take_all(store).envelopes == (mint(1), mint(2), mint(3))

    def test_partial_restore_keeps_the_rest_in_flight(self, store: Any) -> None:
        store.append(ME, [mint(1), mint(2), mint(3)])
        batch = take_all(store)
        store.restore(batch, [mint(3).id, mint(1).id])
        assert ids(take_all(store).envelopes) == ids([mint(1), mint(3)])
        flying = [b for b in store.in_flight(ME) if b.batch_id == batch.batch_id]
        assert [ids(b.envelopes) for b in flying] == [[mint(2).id]]
        store.restore(batch, ["no-such-id"])
        assert [ids(b.envelopes) for b in store.in_flight(ME) if b.batch_id == batch.batch_id] == [
            [mint(2).id]
        ]
        store.restore(batch)
        assert ids(take_all(store).envelopes) == [mint(2).id]

    def test_restore_after_settle_is_a_no_op(self, store: Any) -> None:
        store.append(ME, [mint(1)])
        batch = take_all(store)
        store.settle(batch)
        store.restore(batch)
        assert store.depth(ME) == 0

    def test_recover_restores_only_dead_holders(self, store: Any) -> None:
        store.append(ME, [mint(1)])
        mine = store.take(ME, lambda es: [0], ALIVE)
        store.append(ME, [mint(2)])
        store.take(ME, lambda es: [0], DEAD)
        store.append(ME, [mint(3)])
        store.take(ME, lambda es: [0], DEAD)
        store.append(ME, [mint(4)])
        assert store.recover(ME, lambda h: h == ALIVE) == 2
        # the dead holders' batches come back in the order they were taken, ahead of newer mail
        assert ids(take_all(store, holder=Holder(9)).envelopes) == ids([mint(2), mint(3), mint(4)])
        assert [b.batch_id for b in store.in_flight(ME) if b.holder == ALIVE] == [mine.batch_id]
        assert store.recover(OTHER, lambda h: False) == 0

    def test_merge_moves_everything_once(self, store: Any) -> None:
        store.append(PROC, [mint(1), mint(2)])
        store.append(ME, [mint(0)])
        assert store.merge(PROC, ME) == 2
        assert store.depth(PROC) == 0
        assert store.merge(PROC, ME) == 0
        assert store.merge(ME, ME) == 0
        assert take_all(store).envelopes == (mint(0), mint(1), mint(2))

    def test_merge_into_a_new_inbox(self, store: Any) -> None:
        store.append(PROC, [mint(1)])
        assert store.merge(PROC, OTHER) == 1
        assert ids(take_all(store, OTHER).envelopes) == [mint(1).id]

    def test_change_token_moves_on_append_restore_and_merge(self, store: Any) -> None:
        t0 = store.change_token([ME])
        store.append(ME, [mint(1)])
        t1 = store.change_token([ME])
        assert t1 != t0
        assert store.change_token([ME]) == t1
        batch = take_all(store)
        t2 = store.change_token([ME])
        store.restore(batch)
        assert store.change_token([ME]) != t2
        t3 = store.change_token([ME, OTHER])
        store.append(PROC, [mint(2)])
        store.merge(PROC, OTHER)
        assert store.change_token([ME, OTHER]) != t3

    def test_wait_for_change(self, store: Any) -> None:
        token = store.change_token([ME])
        started = time.monotonic()
        assert store.wait_for_change([ME], token, 0.1) is False
        assert time.monotonic() - started >= 0.09
        store.append(ME, [mint(1)])
        assert store.wait_for_change([ME], token, 5.0) is True
        assert store.wait_for_change([ME], store.change_token([ME]), 0) is False

    def test_wait_wakes_on_append_from_another_thread(self, store: Any) -> None:
        token = store.change_token([ME, OTHER])
        timer = threading.Timer(0.05, lambda: store.append(OTHER, [mint(1)]))
        timer.start()
        started = time.monotonic()
        assert store.wait_for_change([ME, OTHER], token, 5.0) is True
        assert time.monotonic() - started < 1.0
        timer.join()

    # ledger, pending asks, wake bookkeeping, activity, registry ---------------------------------
    def test_ledger_keeps_newest(self, store: Any) -> None:
        assert store.ledger_lookup("me", mint(1).id) is None
        assert store.ledger_record("me", mint(1), 3) == 0
        assert store.ledger_record("me", mint(2), 3) == 0
        assert store.ledger_record("me", mint(1, "newer"), 3) == 0  # replaces its line, now last: 2, 1
        assert store.ledger_lookup("me", mint(1).id) == mint(1, "newer")
        assert store.ledger_record("me", mint(3), 3) == 0  # 2, 1, 3
        assert store.ledger_record("me", mint(4), 2) == 2  # 3, 4
        assert store.ledger_lookup("me", mint(2).id) is None
        assert store.ledger_lookup("me", mint(1).id) is None
        assert store.ledger_lookup("me", mint(4).id) == mint(4)
        assert store.ledger_lookup("someone-else", mint(4).id) is None
        assert store.ledger_record("me", mint(5), 0) == 3
        assert store.ledger_lookup("me", mint(5).id) is None

    # accounting: obligations in the ledger, receipts, outbox, re-pokes, peek ---------------------
    def test_re_recording_an_id_moves_its_line_last_and_never_reopens_a_closed_obligation_a32(
        self, store: Any
    ) -> None:
        store.ledger_record("me", duty(1), 10)
        store.ledger_record("me", mint(2), 10)
        assert store.ledger_close("me", duty(1).id, DONE).kind == "claimed"
        assert store.ledger_record("me", duty(1, "delivered again"), 10) == 0
        assert store.ledger_open("me") == []
        assert store.ledger_lookup("me", duty(1).id) == duty(1, "delivered again")
        assert store.ledger_close("me", duty(1).id, BLOCKED) == CloseOutcome(
            "already-closed", LedgerRecord(duty(1, "delivered again"), DONE)
        )
        assert store.ledger_record("me", mint(3), 2) == 1  # 2, 1, 3: the oldest is now 2
        assert store.ledger_lookup("me", mint(2).id) is None
        assert store.ledger_lookup("me", duty(1).id) is not None
        store.ledger_record("me", duty(4), 10)
        store.ledger_record("me", duty(4), 10)
        assert store.ledger_open("me") == [duty(4)]  # an open one re-recorded is open once

    def test_a_ledger_entry_is_the_newest_line_with_its_outcome(self, store: Any) -> None:
        assert store.ledger_entry("me", duty(1).id) is None
        store.ledger_record("me", duty(1), 10)
        store.ledger_record("me", mint(2), 10)
        assert store.ledger_entry("me", duty(1).id) == LedgerRecord(duty(1))
        assert store.ledger_entry("me", mint(2).id) == LedgerRecord(mint(2))
        assert store.ledger_close("me", duty(1).id, DONE).kind == "claimed"
        assert store.ledger_entry("me", duty(1).id) == LedgerRecord(duty(1), DONE)
        store.ledger_record("me", duty(1, "again"), 10)
        assert store.ledger_entry("me", duty(1).id) == LedgerRecord(duty(1, "again"), DONE)
        assert store.ledger_entry("someone-else", duty(1).id) is None

    def test_ledger_records_are_one_per_message_by_newest_line_with_outcomes(self, store: Any) -> None:
        assert store.ledger_records("me") == []
        store.ledger_record("me", duty(1), 10)
        store.ledger_record("me", mint(2), 10)
        assert store.ledger_close("me", duty(1).id, DONE).kind == "claimed"
        store.ledger_record("me", mint(3), 10)
        store.ledger_record("me", duty(1, "again"), 10)  # re-recorded: it moves last, keeps its outcome
        assert store.ledger_records("me") == [
            LedgerRecord(mint(2)),
            LedgerRecord(mint(3)),
            LedgerRecord(duty(1, "again"), DONE),
        ]
        assert store.ledger_records("someone-else") == []

    def test_open_obligations_are_never_pruned_and_closing_makes_them_prunable_a31(self, store: Any) -> None:
        for n in range(1, 6):
            assert store.ledger_record("me", duty(n), 3) == 0
        assert store.ledger_record("me", mint(6), 3) == 1  # only the plain line could go: itself
        assert store.ledger_lookup("me", mint(6).id) is None
        assert store.ledger_open("me") == [duty(n) for n in (5, 4, 3, 2, 1)]
        for n in (1, 2):
            assert store.ledger_close("me", duty(n).id, DONE).kind == "claimed"
        assert store.ledger_record("me", mint(7), 3) == 3  # 1 and 2 (closed), and 7 itself
        assert store.ledger_lookup("me", duty(1).id) is None
        assert store.ledger_open("me") == [duty(n) for n in (5, 4, 3)]
        for n in (3, 4, 5):
            store.ledger_close("me", duty(n).id, BLOCKED)
        assert store.ledger_record("me", mint(8), 3) == 1
        assert store.ledger_lookup("me", mint(8).id) == mint(8)
        assert store.ledger_lookup("me", duty(3).id) is None
        assert store.ledger_lookup("me", duty(4).id) == duty(4)
        assert store.ledger_open("me") == []

    def test_closing_is_a_compare_and_set_that_keeps_the_first_outcome(self, store: Any) -> None:
        assert store.ledger_close("me", duty(1).id, DONE) == CloseOutcome("not-found")
        store.ledger_record("me", duty(1), 10)
        store.ledger_record("me", mint(2), 10)
        assert store.ledger_close("me", duty(1).id, DONE) == CloseOutcome(
            "claimed", LedgerRecord(duty(1), DONE)
        )
        assert store.ledger_close("me", duty(1).id, BLOCKED) == CloseOutcome(
            "already-closed", LedgerRecord(duty(1), DONE)
        )
        assert store.ledger_close("me", mint(2).id, DONE) == CloseOutcome(
            "not-an-obligation", LedgerRecord(mint(2))
        )
        assert store.ledger_close("me", mint(9).id, DONE) == CloseOutcome("not-found")
        assert store.ledger_close("someone-else", duty(1).id, DONE) == CloseOutcome("not-found")
        assert store.ledger_lookup("me", duty(1).id) == duty(1)  # a closed line still answers replies

    def test_of_concurrent_closers_of_one_obligation_exactly_one_claims_it_a23(self, store: Any) -> None:
        store.ledger_record("me", duty(1), 10)
        outcomes = [Obligation(state="done", at=i, note=f"closer {i}") for i in range(8)]
        start = threading.Barrier(len(outcomes))
        results: list[CloseOutcome] = [CloseOutcome("not-found")] * len(outcomes)

        def close(i: int) -> None:
            start.wait()
            results[i] = store.ledger_close("me", duty(1).id, outcomes[i])

        threads = [threading.Thread(target=close, args=(i,)) for i in range(len(outcomes))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners = [i for i, r in enumerate(results) if r.kind == "claimed"]
        assert len(winners) == 1
        stored = LedgerRecord(duty(1), outcomes[winners[0]])
        assert all(
            r == CloseOutcome("already-closed", stored) for i, r in enumerate(results) if i != winners[0]
        )
        assert store.ledger_close("me", duty(1).id, DONE) == CloseOutcome("already-closed", stored)

    def test_open_obligations_are_listed_newest_first_and_a_missing_ledger_has_none(self, store: Any) -> None:
        assert store.ledger_open("nobody") == []
        for env in (duty(1), mint(2), duty(3), duty(4)):
            store.ledger_record("me", env, 10)
        store.ledger_close("me", duty(3).id, DONE)
        assert store.ledger_open("me") == [duty(4), duty(1)]
        assert store.ledger_open("someone-else") == []

    def test_a_receipt_is_written_once_and_the_first_hand_off_wins_a1(self, store: Any) -> None:
        mid = mint(1).id
        first = Receipt(message_id=mid, delivered_at=1_796_150_456, via="hook", recipient_session_id="B")
        assert store.receipt_get(mid) is None
        assert store.receipt_put(first) is True
        assert (
            store.receipt_put(Receipt(message_id=mid, delivered_at=1_796_150_999, via="read_my_messages"))
            is False
        )
        assert store.receipt_get(mid) == first
        assert store.receipt_get(mint(2).id) is None
        for bad in ("XYZ", mid.upper().replace("0", "A"), mid[:15], mid + "0", "", "../" + mid[3:]):
            assert store.receipt_put(Receipt(message_id=bad, delivered_at=1, via="hook")) is False
            assert store.receipt_get(bad) is None

    def test_an_outbox_record_is_written_once_like_a_receipt(self, store: Any) -> None:
        mid = mint(1).id
        first = OutboxRecord(
            message_id=mid, enqueued_at=100, target_session_id="B", target_server_pid=42, from_session_id="A"
        )
        assert store.outbox_get(mid) is None
        assert store.outbox_put(first) is True
        again = OutboxRecord(message_id=mid, enqueued_at=200, target_session_id=None, target_server_pid=7)
        assert store.outbox_put(again) is False
        assert store.outbox_get(mid) == first
        unclaimed = OutboxRecord(
            message_id=mint(2).id,
            enqueued_at=None,
            target_session_id=None,
            target_server_pid=9,
            target_started_at=5,
        )
        assert store.outbox_put(unclaimed) is True
        assert store.outbox_get(mint(2).id) == unclaimed
        assert store.outbox_put(attrs.evolve(first, message_id="not-hex")) is False
        assert store.outbox_get("not-hex") is None

    def test_receipts_gc_removes_receipts_and_outbox_records_written_before_the_cutoff(
        self, store: Any
    ) -> None:
        now_s = int(time.time())
        store.receipt_put(Receipt(message_id=mint(1).id, delivered_at=now_s, via="hook"))
        store.outbox_put(
            OutboxRecord(
                message_id=mint(2).id, enqueued_at=now_s, target_session_id=None, target_server_pid=1
            )
        )
        assert store.receipts_gc((now_s - 86_400) * 1000) == 0
        assert store.receipt_get(mint(1).id) is not None and store.outbox_get(mint(2).id) is not None
        assert store.receipts_gc((now_s + 86_400) * 1000) == 2
        assert store.receipt_get(mint(1).id) is None and store.outbox_get(mint(2).id) is None
        assert store.receipts_gc((now_s + 86_400) * 1000) == 0

    def test_a_bump_counts_a_re_poke_and_never_extends_the_ask_s_life(self, store: Any) -> None:
        ask = PendingAsk(
            requester="req", request_id="r1", at_ms=100, peer="bob", message_id=mint(1).id, owner_epoch=5
        )
        store.pending_put(ask)
        assert store.pending_bump("req", "r1", 500) is True
        assert store.pending_bump("req", "r1", 600) is True
        assert store.pending_list() == [attrs.evolve(ask, attempts=2, last_repoke_at=600)]
        assert store.pending_gc(99) == 0
        assert store.pending_gc(100) == 1  # the age still counts from the ask, not from the bump
        assert store.pending_bump("req", "r1", 700) is False
        assert store.pending_bump("req", "never", 700) is False

    def test_a_wake_intent_is_created_once_and_a_second_put_keeps_its_age_and_attempts(
        self, store: Any
    ) -> None:
        """selfheal S2: the TTL and the attempt count keep counting from the first send."""
        first = PendingWake(recipient="bob", message_id=mint(1).id, sender="amy", sent_at_ms=100)
        assert store.wake_intent_put(first) is True
        assert store.wake_intent_bump("bob", mint(1).id, 400) is True
        assert store.wake_intent_put(attrs.evolve(first, sent_at_ms=900, sender=None)) is False
        assert store.wake_intent_list("bob") == [attrs.evolve(first, attempts=1, last_attempt_at=400)]
        assert store.wake_intent_list("Bob") == [] and store.wake_intent_list("amy") == []

    def test_wake_intents_list_per_recipient_gc_by_send_time_and_have_one_taker(self, store: Any) -> None:
        store.wake_intent_put(PendingWake(recipient="bob", message_id=mint(1).id, sent_at_ms=100))
        store.wake_intent_put(PendingWake(recipient="bob", message_id=mint(2).id, sent_at_ms=200))
        store.wake_intent_put(PendingWake(recipient="cat", message_id=mint(1).id, sent_at_ms=300))
        assert sorted(w.message_id for w in store.wake_intent_list("bob")) == [mint(1).id, mint(2).id]
        assert store.wake_intent_bump("bob", mint(1).id, 5_000) is True
        assert store.wake_intent_gc(99) == 0
        assert store.wake_intent_gc(100) == 1  # a bump never extends the life of a record
        assert [w.message_id for w in store.wake_intent_list("bob")] == [mint(2).id]
        assert store.wake_intent_take("bob", mint(2).id) is True
        assert store.wake_intent_take("bob", mint(2).id) is False
        assert store.wake_intent_bump("bob", mint(2).id, 6_000) is False
        assert [w.recipient for w in store.wake_intent_list("cat")] == ["cat"]

    def test_racing_takers_of_one_wake_intent_have_exactly_one_winner(self, store: Any) -> None:
        store.wake_intent_put(PendingWake(recipient="bob", message_id=mint(1).id, sent_at_ms=1))
        wins: list[bool] = []
        threads = [
            threading.Thread(target=lambda: wins.append(store.wake_intent_take("bob", mint(1).id)))
            for _ in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert wins.count(True) == 1

    def test_the_self_wake_stamp_is_per_session_and_the_latest_wins(self, store: Any) -> None:
        assert store.self_wake_get("bob") is None
        store.self_wake_put("bob", 1_000)
        store.self_wake_put("bob", 2_000)
        assert store.self_wake_get("bob") == 2_000 and store.self_wake_get("cat") is None
        assert store.wake_gc(1_999) == 0 and store.wake_gc(2_000) == 1
        assert store.self_wake_get("bob") is None

    def test_a_waiter_claim_has_one_winner_until_it_is_stale(self, store: Any) -> None:
        """selfheal S16: one claim per target per throttle window, whoever the waiter is."""
        wins: list[bool] = []
        threads = [
            threading.Thread(target=lambda: wins.append(store.waiter_claim("bob", 1_000, 0)))
            for _ in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert wins.count(True) == 1
        takeover: list[bool] = []
        threads = [
            threading.Thread(target=lambda: takeover.append(store.waiter_claim("dan", 2_000, 1_000)))
            for _ in range(8)
        ]
        store.waiter_claim("dan", 1_000, 0)
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert takeover.count(True) == 1  # a stale claim taken over by racers: still one winner
        assert store.waiter_claim("bob", 1_500, 999) is False  # the claim at 1000 is newer
        assert store.waiter_claim("cat", 1_500, 999) is True  # per target
        assert store.waiter_claim("bob", 2_000, 1_000) is True  # stale: taken over
        assert store.waiter_claim("bob", 2_001, 1_000) is False

    def test_ledger_reply_tos_are_the_answers_received(self, store: Any) -> None:
        assert store.ledger_reply_tos("me") == set()
        store.ledger_record("me", mint(1, reply_to="r1"), 1000)
        store.ledger_record("me", mint(2), 1000)
        store.ledger_record("me", mint(3, reply_to="r3"), 1000)
        store.ledger_record("other", mint(4, reply_to="r4"), 1000)
        assert store.ledger_reply_tos("me") == {"r1", "r3"}

    def test_peek_sees_waiting_and_in_flight_messages_and_nothing_settled(self, store: Any) -> None:
        assert store.peek(ME, mint(1).id) is False
        store.append(ME, [mint(1), mint(2)])
        assert store.peek(ME, mint(1).id) is True
        assert store.peek(OTHER, mint(1).id) is False
        first = store.take(ME, lambda es: [0], ALIVE)
        assert store.peek(ME, mint(1).id) is True  # in flight
        store.settle(first)
        assert store.peek(ME, mint(1).id) is False
        second = take_all(store)
        store.restore(second)
        assert store.peek(ME, mint(2).id) is True
        for odd in ("", "\ud800", "x" * 10_000, '"'):
            assert store.peek(ME, odd) is False

    def test_pending_list_shows_every_open_ask_and_none_taken_or_collected(self, store: Any) -> None:
        assert store.pending_list() == []
        first = PendingAsk(requester="req", request_id="r1", at_ms=100, peer="bob")
        second = PendingAsk(requester="other", request_id="r2", at_ms=200)
        store.pending_put(first)
        store.pending_put(second)
        store.pending_put(PendingAsk(requester="req", request_id="r1", at_ms=999))  # the first record stays
        assert sorted(store.pending_list(), key=lambda a: a.at_ms) == [first, second]
        store.pending_take("req", "r1", "bob")
        assert store.pending_list() == [second]
        store.pending_gc(200)
        assert store.pending_list() == []

    def test_pending_asks(self, store: Any) -> None:
        ask = PendingAsk(requester="req", request_id="r1", at_ms=100, peer="bob")
        assert store.pending_put(ask) is True
        assert store.pending_put(PendingAsk(requester="req", request_id="r1", at_ms=999)) is True
        assert store.pending_take("req", "r1", "mallory") is None
        assert store.pending_take("req", "r1", "bob") == ask
        assert store.pending_take("req", "r1", "bob") is None
        store.pending_put(PendingAsk(requester="req", request_id="r2", at_ms=200, peer="bob"))
        assert store.pending_take("req", "r2", None) is not None
        store.pending_put(PendingAsk(requester="req", request_id="r3", at_ms=300))
        assert store.pending_take("req", "r3", "anyone") is not None
        store.pending_put(PendingAsk(requester="a", request_id="x", at_ms=10))
        store.pending_put(PendingAsk(requester="b", request_id="x", at_ms=20))
        store.pending_put(PendingAsk(requester="c", request_id="x", at_ms=30))
        assert store.pending_gc(20) == 2
        assert store.pending_take("c", "x", None) == PendingAsk(requester="c", request_id="x", at_ms=30)

    def test_dedupe_and_rate(self, store: Any) -> None:
        assert store.dedupe_get("t", "q") is None
        assert store.dedupe_claim("t", "q", 100, 0) is True
        assert store.dedupe_get("t", "q") == 100
        assert store.dedupe_claim("t", "q", 150, 50) is False
        assert store.dedupe_claim("t", "q", 200, 100) is True  # 100 <= stale_before: reclaimed
        store.dedupe_release("t", "q", 100)
        assert store.dedupe_get("t", "q") == 200
        store.dedupe_release("t", "q", 200)
        assert store.dedupe_get("t", "q") is None
        assert store.rate_get("t") is None
        store.rate_put("t", 300)
        store.rate_put("t", 400)
        assert store.rate_get("t") == 400
        store.dedupe_claim("u", "q", 50, 0)
        store.dedupe_claim("v", "q", 500, 0)
        assert store.wake_gc(400) == 2
        assert store.rate_get("t") is None and store.dedupe_get("u", "q") is None
        assert store.dedupe_get("v", "q") == 500

    def test_activity(self, store: Any) -> None:
        assert store.activity_get("s") is None
        store.activity_put("s", ActivityMarker(status="busy", at_ms=5))
        store.activity_put("s", ActivityMarker(status="idle", at_ms=6))
        assert store.activity_get("s") == ActivityMarker(status="idle", at_ms=6)

    def test_a_sweep_far_in_the_future_never_removes_mail_a_batch_in_flight_or_an_obligation(
        self, store: Any
    ) -> None:
        store.registry_put(entry(12, sid="session-me"))
        store.append(ME, [mint(1), mint(2)])
        store.append(OTHER, [mint(3)])
        flying = store.take(ME, lambda es: [0], ALIVE)
        store.ledger_record("session-me", duty(4), 100)
        far = (int(time.time()) + 400 * 86_400) * 1000
        report = store.sweep(far)
        assert report.inboxes == 0 and report.kept_in_doubt >= 0
        assert ids(take_all(store).envelopes) == [mint(2).id]
        assert ids(take_all(store, OTHER).envelopes) == [mint(3).id]
        assert ids(store.in_flight(ME)[0].envelopes) == [mint(1).id]
        store.restore(flying)
        assert ids(take_all(store).envelopes) == [mint(1).id]
        assert ids(store.ledger_open("session-me")) == [duty(4).id]
        assert store.registry_entries() == [entry(12, sid="session-me")]

    def test_registry(self, store: Any) -> None:
        assert store.registry_entries() == []
        store.registry_put(entry(12))
        store.registry_put(entry(3, sid=None, capabilities=None, tmux_pane="%1"))
        store.registry_put(entry(12, sid="renamed"))
        assert sorted(store.registry_entries(), key=lambda e: e.server_pid) == [
            entry(3, sid=None, capabilities=None, tmux_pane="%1"),
            entry(12, sid="renamed"),
        ]
        store.registry_remove(3)
        store.registry_remove(3)
        store.registry_remove(77)
        assert store.registry_entries() == [entry(12, sid="renamed")]

    # sticky claims ------------------------------------------------------------------------------
    def test_a_claim_round_trips_and_a_reclaim_by_the_same_agent_in_the_same_cwd_replaces_it(
        self, store: Any
    ) -> None:
        assert store.claim_list() == []
        first = claim("sid-a", server_pid=11, claimed_at=1_000)
        store.claim_put(first)
        assert store.claim_list() == [first]
        again = claim("sid-a", server_pid=22, claimed_at=1_500.5, ancestors=(Ancestor(7, "Tue 1"),))
        store.claim_put(again)
        assert store.claim_list() == [again]
        other_session = claim("sid-b")
        other_cwd = claim("sid-a", cwd="/w/prøj 漢", transcript_path=None)
        store.claim_put(other_session)
        store.claim_put(other_cwd)
        assert sorted(store.claim_list(), key=lambda c: (c.session_id, c.cwd)) == [
            again,
            other_cwd,
            other_session,
        ]

    def test_claim_gc_removes_the_expired_and_the_transcriptless_and_keeps_the_rest(self, store: Any) -> None:
        cutoff_ms = 1_000_000
        exactly_at_cutoff = claim("at-cutoff", claimed_at=1_000)
        store.claim_put(exactly_at_cutoff)
        store.claim_put(claim("expired", claimed_at=999.5))
        store.claim_put(claim("no-transcript", transcript_path=None))
        store.claim_put(claim("empty-transcript", transcript_path=""))
        store.claim_put(claim("gone", transcript_path="/t/gone.jsonl"))
        fresh = claim("fresh", claimed_at=5_000, server_pid=999_999)  # a dead writer is no reason
        store.claim_put(fresh)
        seen: list[str] = []

        def exists(path: str) -> bool:
            seen.append(path)
            return path != "/t/gone.jsonl"

        assert store.claim_gc(cutoff_ms, exists) == 4
        assert "/t/gone.jsonl" in seen
        assert sorted(store.claim_list(), key=lambda c: c.session_id) == [exactly_at_cutoff, fresh]
        assert store.claim_gc(cutoff_ms, exists) == 0

    def test_recovered_batches_come_back_in_arrival_order(self, store: Any) -> None:
        inbox = InboxId.for_session("order")
        store.append(inbox, [Envelope(id=f"{i:016x}", body=str(i), enqueued_at=1) for i in range(1, 6)])
        reader = Holder(pid=77)
        store.take(inbox, lambda ms: [0, 1], reader)
        store.take(inbox, lambda ms: [0, 1], reader)
        assert store.recover(inbox, lambda holder: False) == 4
        batch = store.take(inbox, lambda ms: list(range(len(ms))), reader)
        assert [e.body for e in batch.envelopes] == ["1", "2", "3", "4", "5"]
