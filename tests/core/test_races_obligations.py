"""Machines 8 and 9: closing obligations, and receipts against crashes (accounting.md §3.5, §3.6, §2.1).

**Machine 8, the close race.** Requester A delegates to agent B, served by two
servers (B and its sibling B2). Closers on either server run
``complete_work`` / ``block_work`` on the same obligations, interleaved one
store call at a time; A reads (settling, so receipts are written); A may
restart (same session, new process, any read in flight recovered) or stay
dead for a while (closes then answer ``requester-unreachable``); a closer may
crash anywhere (between delivery and claim included) and its server restart;
and A may send a delegation whose ledger write fails. Checked after every step:

- *single winner*: per obligation, at most one close reports success without
  ``already_closed``, and its state is the stored one;
- *never terminal-only*: a closed obligation's completion was appended;
- *once per drain*: no read of A returns a completion id twice;
- *receipt means settled*: a completion has a receipt only if a read of A settled it;
- *fail loud*: a delegation whose ledger write failed left nothing anywhere
  (no inbox line, no ledger line, no outbox, no expectation);
- at the end (everyone restarted, A reads everything): every closed
  obligation's completion reached A.

The global G1/G2 of :class:`RaceMachine` are replaced here by their per-drain
form: the same completion id is legitimately appended more than once (a
retry, a concurrent closer), and the requester's drain collapses the copies.

**Machine 9, receipts vs crashes.** S sends to R; R reads and settles (the
receipt is written at settle); R may be killed between take and settle and
restarted. Besides G1/G2/R1: a receipt exists only for a settled message, and
once no read is in progress every settled message has one (except a reader
killed between its settle and its receipt writes: delivered, ``unknown``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule, run_state_machine_as_test

from oxtail_core import messaging as messaging_mod
from oxtail_core import receipts as receipts_mod
from oxtail_core.effects import run
from oxtail_core.errors import ObligationNotRecorded, StoreError
from oxtail_core.messaging import read_messages, send_message
from oxtail_core.model import Obligation
from oxtail_core.obligations import close, completion_id
from oxtail_core.receipts import message_status, settle_handoff
from oxtail_core.results import Closed, Messages, NotSent, Refused, RequesterUnreachable, Sent
from oxtail_core.routing import publish
from oxtail_core.testing import (
    RaceMachine,
    StoreFactory,
    budget,
    caught_within,
    drive,
    factory_param,
    memory_factory,
    race_settings,
)
from oxtail_core.testing.races import entry, sid
from tests.support.stores import fs_factory

A_SID, B_SID = sid(1), sid(2)
PROBE = Obligation(state="done", at=0, note="")


def accounting_store_params() -> list[Any]:
    """MemoryStore, and FsStore once its accounting methods exist (they are being built elsewhere)."""
    fs = fs_factory()
    if not isinstance(fs, str):
        store, cleanup = fs()
        try:
            store.receipt_get("0" * 16)
        except NotImplementedError:
            fs = "FsStore has no accounting methods yet (receipts, outbox, ledger_close)"
        finally:
            cleanup()
    return [factory_param("memory", memory_factory), factory_param("fs", fs)]


class CloseRace(RaceMachine):
    def __init__(self, factory: StoreFactory) -> None:
        super().__init__(factory)
        self.join("A", 100, A_SID)
        self.join("B", 200, B_SID)
        self.join("B2", 210, B_SID)
        self.next_pid = {"A": 101, "B": 201, "B2": 211}
        self.obligations: list[str] = []
        self.results: dict[str, list[Any]] = {}
        self.completion_appends: Counter[str] = Counter()
        self.settled: set[str] = set()
        self.seen_by_a: set[str] = set()
        self.failed_sends: set[str] = set()
        for n in range(2):
            self.delegate_now(f"task {n}")

    # Set-up and helpers ------------------------------------------------------------------
    def delegate_now(self, body: str) -> None:
        flow = send_message(self.main_ctx, self.me["A"], B_SID, body, action_required=True)
        sent = run(flow, self.inner, self.clock)
        assert isinstance(sent, Sent) and sent.obligation_durable, sent
        self.obligations.append(sent.message_id)
        self.results[sent.message_id] = []

    def alive(self, name: str) -> bool:
        me = self.me[name]
        return self.host.is_alive(me.server_pid, me.process_start)

    def _observe(self, actor: str, method: str, args: tuple[Any, ...], result: Any) -> None:
        super()._observe(actor, method, args, result)
        if method == "append" and result is not False:
            for env in args[1]:
                self.completion_appends[env.id] += 1
        elif method == "settle" and actor.startswith("read:"):
            self.settled.update(e.id for e in args[0].envelopes)
        elif method == "ledger_record!":
            self.failed_sends.add(args[1].id)

    def stored(self, oid: str) -> str | None:
        """The stored outcome of ``oid`` (None: open). Actors are parked, so the probe races nothing:
        ``ledger_close`` on a closed obligation changes nothing and reports the stored state."""
        if any(e.id == oid for e in self.inner.ledger_open(B_SID)):
            return None
        outcome = self.inner.ledger_close(B_SID, oid, PROBE)
        assert outcome.kind == "already-closed" and outcome.record is not None, outcome
        assert outcome.record.obligation is not None
        return outcome.record.obligation.state

    # Rules ---------------------------------------------------------------------------------
    @precondition(lambda self: any(self.free(f"close:{c}") and self.alive(c) for c in ("B", "B2")))
    @rule(closer=st.sampled_from(["B", "B2"]), verb=st.sampled_from(["done", "blocked"]), data=st.data())
    def close_one(self, closer: str, verb: str, data: st.DataObject) -> None:
        slot = f"close:{closer}"
        if not self.free(slot) or not self.alive(closer):
            return
        oid = data.draw(st.sampled_from(self.obligations), label="obligation")
        ctx, me = self.ctxs[closer], self.me[closer]

        def op() -> Any:
            flow = close(ctx, me, oid, f"{verb} by {closer}", state=verb, wake=None)  # type: ignore[arg-type]
            try:
                return drive(flow, ctx, self.sched.current())  # type: ignore[arg-type]
            except StoreError as exc:  # a store failure mid-close: it stays open, a retry is safe
                return exc

        def done(result: Any) -> None:
            assert isinstance(result, (Closed, RequesterUnreachable, StoreError)), result
            if isinstance(result, RequesterUnreachable):
                assert result.requester_error == "target-not-found", result
            self.results[oid].append(result)

        self.launch(slot, op, done)

    @precondition(lambda self: self.free("read:A") and self.alive("A"))
    @rule()
    def read(self) -> None:
        ctx, me = self.ctxs["A"], self.me["A"]

        def op() -> Messages:
            got = read_messages(ctx, me)
            if got.handoff is not None:
                settle_handoff(ctx, got.handoff)
            return got

        self.launch("read:A", op, self.saw)

    def saw(self, got: Messages) -> None:
        twice = [m for m, n in Counter(m.id for m in got.messages).items() if n > 1]
        assert not twice, f"a drain returned {twice} more than once"
        self.seen_by_a.update(m.id for m in got.messages)

    @precondition(lambda self: self.free("send:A") and self.alive("A") and len(self.failed_sends) < 3)
    @rule()
    def delegate_with_failing_ledger(self) -> None:
        ctx, me = self.ctxs["A"], self.me["A"]

        def op() -> Any:
            flow = send_message(ctx, me, B_SID, "doomed task", action_required=True)
            try:
                return drive(flow, ctx, self.sched.current())  # type: ignore[arg-type]
            except ObligationNotRecorded as exc:
                return exc

        def done(result: Any) -> None:
            self.store.faults.pop("send:A", None)  # unused if B had no live server to resolve
            if isinstance(result, NotSent):
                assert result.unresolved.error == "target-not-found", result
            else:
                assert isinstance(result, ObligationNotRecorded), result

        self.launch("send:A", op, done)
        self.store.inject("send:A", frozenset({"ledger_record"}), StoreError("disk full"))

    @precondition(lambda self: any(s.split(":")[1] in ("B", "B2") for s in self.parked()))
    @rule(data=st.data())
    def crash_closer(self, data: st.DataObject) -> None:
        slots = [s for s in self.parked() if s.split(":")[1] in ("B", "B2")]
        slot = data.draw(st.sampled_from(slots), label="victim")
        self.crash_slot(slot, self.me[slot.split(":")[1]].server_pid)

    @precondition(lambda self: self.alive("A"))
    @rule()
    def kill_requester(self) -> None:
        pid = self.me["A"].server_pid
        for slot in [s for s in self.slots if s.endswith(":A")]:
            self.crash_slot(slot, pid)
        self.host.kill(pid)

    @precondition(lambda self: any(not self.alive(n) for n in ("A", "B", "B2")))
    @rule(data=st.data())
    def restart(self, data: st.DataObject) -> None:
        dead = [n for n in ("A", "B", "B2") if not self.alive(n)]
        self.restart_peer(data.draw(st.sampled_from(dead), label="peer"))

    def restart_peer(self, name: str) -> None:
        pid = self.next_pid[name]
        self.next_pid[name] += 1
        me = entry(pid, A_SID if name == "A" else B_SID, started_at=1_800_000_000 + pid)
        publish(self.main_ctx, me)
        self.former.append(self.me[name])
        self.me[name] = me
        self.ctxs[name] = self.context()

    # Invariants ----------------------------------------------------------------------------------
    def all_checks(self) -> None:
        for oid in self.obligations:
            state, cid = self.stored(oid), completion_id(oid)
            winners = [r for r in self.results[oid] if isinstance(r, Closed) and not r.already_closed]
            assert len(winners) <= 1, f"two winners for {oid}: {winners}"
            if winners:
                assert state == winners[0].state, f"{oid}: stored {state}, winner said {winners[0]}"
            if state is not None:
                assert self.completion_appends[cid] >= 1, f"{oid} closed, its completion never appended"
            if self.inner.receipt_get(cid) is not None:
                assert cid in self.settled, f"receipt for {cid} that no read settled"
        for mid in self.failed_sends:
            assert mid not in self.completion_appends, f"fail-loud {mid} was appended"
            assert self.inner.ledger_lookup(B_SID, mid) is None, f"fail-loud {mid} has a ledger line"
            assert self.inner.outbox_get(mid) is None, f"fail-loud {mid} has an outbox record"
            assert all(p.message_id != mid for p in self.inner.pending_list()), f"{mid} left an expectation"
            assert message_status(self.main_ctx, mid).status == "unknown"

    def final_checks(self) -> None:
        self.quiesce()
        for name in ("A", "B", "B2"):
            if not self.alive(name):
                self.restart_peer(name)
        self.all_checks()
        for _ in range(50):
            got = read_messages(self.main_ctx, self.me["A"])
            if got.handoff is None:
                break
            settle_handoff(self.main_ctx, got.handoff)
            self.saw(got)
        for oid in self.obligations:
            if self.stored(oid) is not None:
                # handed to A: returned by a read, or settled by one killed before it returned
                delivered = self.seen_by_a | self.settled
                assert completion_id(oid) in delivered, f"{oid} closed, A never saw its completion"
            else:  # still open: listed, and closable now that everyone is back
                closed = run(
                    close(self.main_ctx, self.me["B"], oid, "late", state="done", wake="off"),
                    self.inner,
                    self.clock,
                )
                assert isinstance(closed, Closed) and not isinstance(closed, Refused), closed


@pytest.mark.parametrize("factory", accounting_store_params())
def test_concurrent_closes_have_one_winner_and_the_requester_sees_each_completion_once_per_drain(
    factory: StoreFactory,
) -> None:
    run_state_machine_as_test(lambda: CloseRace(factory), settings=budget(factory, 80, 40))


class ReceiptRace(RaceMachine):
    def __init__(self, factory: StoreFactory) -> None:
        super().__init__(factory)
        self.join("R", 300, sid(3))
        self.join("S", 400, sid(4))
        self.next_pid = 301
        self.body = 0
        self.settled: set[str] = set()
        self.unreceipted: set[str] = set()  # settled by a reader killed before its receipts

    def alive(self) -> bool:
        me = self.me["R"]
        return self.host.is_alive(me.server_pid, me.process_start)

    def _observe(self, actor: str, method: str, args: tuple[Any, ...], result: Any) -> None:
        super()._observe(actor, method, args, result)
        if method == "settle":
            self.settled.update(e.id for e in args[0].envelopes)

    @precondition(lambda self: self.free("send:S"))
    @rule()
    def send(self) -> None:
        self.body += 1
        ctx, me, body = self.ctxs["S"], self.me["S"], f"m{self.body}"

        def op() -> Any:
            return drive(send_message(ctx, me, sid(3), body), ctx, self.sched.current())  # type: ignore[arg-type]

        self.launch("send:S", op, lambda result: None)

    @precondition(lambda self: self.free("read:R") and self.alive())
    @rule()
    def read(self) -> None:
        ctx, me = self.ctxs["R"], self.me["R"]

        def op() -> Messages:
            got = read_messages(ctx, me)
            if got.handoff is not None:
                settle_handoff(ctx, got.handoff)
            return got

        self.launch("read:R", op, lambda got: None)

    @precondition(lambda self: self.free("status:S") and bool(self.appended))
    @rule(data=st.data())
    def status(self, data: st.DataObject) -> None:
        mid = data.draw(st.sampled_from(sorted(self.appended)), label="message")
        ctx = self.ctxs["S"]

        def done(result: Any) -> None:
            if result.status == "delivered":
                assert mid in self.settled, f"{mid} reported delivered before it was settled"

        self.launch("status:S", lambda: message_status(ctx, mid), done)

    @precondition(lambda self: "read:R" in self.parked())
    @rule()
    def kill_reader(self) -> None:
        """SIGKILL wherever the read stands: before its settle (the batch comes back), or after it."""
        actor, _ = self.slots["read:R"]
        if actor.next_call == "receipt_put":
            self.unreceipted |= {m for m in self.settled if self.inner.receipt_get(m) is None}
        self.crash_slot("read:R", self.me["R"].server_pid)
        me = entry(self.next_pid, sid(3), started_at=1_800_000_000 + self.next_pid)
        self.next_pid += 1
        publish(self.main_ctx, me)
        self.former.append(self.me["R"])
        self.me["R"] = me
        self.ctxs["R"] = self.context()

    def extra_checks(self) -> None:
        for mid in self.appended:
            if self.inner.receipt_get(mid) is not None:
                assert mid in self.settled, f"G-receipt: {mid} has a receipt but was never settled"
        if "read:R" not in self.slots:
            missing = self.settled - self.unreceipted
            missing = {m for m in missing if self.inner.receipt_get(m) is None}
            assert not missing, f"settled without a receipt: {missing}"


@pytest.mark.parametrize("factory", accounting_store_params())
def test_a_receipt_exists_iff_its_batch_was_settled_even_when_the_reader_dies(factory: StoreFactory) -> None:
    run_state_machine_as_test(lambda: ReceiptRace(factory), settings=budget(factory, 80, 40))


def test_planted_drain_without_id_collapse_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Returning every copy of a re-delivered completion makes machine 8 fail on the per-drain rule."""
    monkeypatch.setattr(messaging_mod, "distinct", tuple)
    caught_within(
        5,
        lambda: run_state_machine_as_test(
            lambda: CloseRace(memory_factory), settings=race_settings(200, 40, shrink=False)
        ),
        "more than once",
    )


def receipts_then_settle(ctx: Any, batch: Any, via: Any, recipient: Any) -> None:
    """The planted bug: the reference's order, receipts before the batch is settled (A5)."""
    receipts_mod.write_receipts(ctx, batch.envelopes, via, recipient)
    ctx.store.settle(batch)


def test_planted_receipt_before_settle_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Writing receipts before settling makes machine 9 fail: a killed reader leaves a receipt behind."""
    monkeypatch.setattr(receipts_mod, "settle_delivered", receipts_then_settle)
    caught_within(
        5,
        lambda: run_state_machine_as_test(
            lambda: ReceiptRace(memory_factory), settings=race_settings(200, 40, shrink=False)
        ),
        "G-receipt",
    )
