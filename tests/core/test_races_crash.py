"""Machine 7: a process dies mid-operation, its batch in flight (our improvement 8; R3, R19, R22).

Session R is served by one process at a time. Senders S1 and S2 deliver to
R; R's current process reads (``read_messages`` then ``settle``, separate
steps). ``crash`` kills any running operation where it stands (its thread is
never resumed, its pid is dead in the MemoryHost): a reader between take and
settle leaves a batch in flight, a sender between ledger record and append
leaves a ledger line without a message (R3, allowed). ``restart`` starts a
new process for a dead peer (new pid, same session, ``publish``), and its
reads ``recover`` the dead holder's batch first. Checked after every step,
besides G1/G2/R1 (nothing lost, nothing delivered twice -- a batch that was
never settled was never delivered):

- every id that was ever in a crashed reader's batch is delivered again with the
  same id (or is still waiting / in flight) -- never a new id for the same message;
- at the end (dead peers restarted), every appended message reaches its owner's
  reads exactly once.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule, run_state_machine_as_test

from oxtail_core.messaging import send_message
from oxtail_core.results import NotSent, Sent
from oxtail_core.routing import publish
from oxtail_core.testing import RaceMachine, StoreFactory, budget, drive
from oxtail_core.testing.races import entry, sid
from tests.support.stores import store_params

R_SID = sid(1)
PEERS = {"R": R_SID, "S1": sid(2), "S2": sid(3)}


class CrashRace(RaceMachine):
    def __init__(self, factory: StoreFactory) -> None:
        super().__init__(factory)
        self.join("R", 100, R_SID)
        self.join("S1", 200, sid(2))
        self.join("S2", 300, sid(3))
        self.next_pid = {"R": 101, "S1": 201, "S2": 301}
        self.lost_in_crash: set[str] = set()
        self.body = 0

    def alive(self, name: str) -> bool:
        me = self.me[name]
        return self.host.is_alive(me.server_pid, me.process_start)

    @precondition(lambda self: any(self.free(f"send:{s}") and self.alive(s) for s in ("S1", "S2")))
    @rule(sender=st.sampled_from(["S1", "S2"]))
    def send(self, sender: str) -> None:
        slot = f"send:{sender}"
        if not self.free(slot) or not self.alive(sender):
            return
        self.body += 1
        ctx, me, body = self.ctxs[sender], self.me[sender], f"m{self.body}"

        def op() -> Any:
            return drive(send_message(ctx, me, R_SID, body), ctx, self.sched.current())  # type: ignore[arg-type]

        def done(result: Any) -> None:
            if isinstance(result, NotSent):
                assert result.unresolved.error == "target-not-found", result
                assert self.next_pid["R"] > 101 or not self.alive("R"), "R was never dead"
            else:
                assert isinstance(result, Sent), result

        self.launch(slot, op, done)

    @precondition(lambda self: self.free("read:R") and self.alive("R"))
    @rule()
    def read(self) -> None:
        self.launch("read:R", self.reader("R"), lambda got: None)

    @precondition(lambda self: bool(self.parked()))
    @rule(data=st.data())
    def crash(self, data: st.DataObject) -> None:
        slot = data.draw(st.sampled_from(self.parked()), label="victim")
        name = slot.split(":")[1]
        for batch in self.flight.values():
            if batch.holder.pid == self.me[name].server_pid:
                self.lost_in_crash.update(e.id for e in batch.envelopes)
        self.crash_slot(slot, self.me[name].server_pid)
        # Every other operation of that process dies with it.
        for other in [s for s in self.slots if s.endswith(f":{name}")]:
            self.crash_slot(other, self.me[name].server_pid)

    def reader_holds_batch(self) -> bool:
        slot = self.slots.get("read:R")
        return slot is not None and slot[0].parked and slot[0].next_call == "settle"

    @precondition(reader_holds_batch)
    @rule()
    def crash_reader_holding_batch(self) -> None:
        """The window of improvement 8: taken, response not yet handed on, then SIGKILL."""
        pid = self.me["R"].server_pid
        for batch in self.flight.values():
            if batch.holder.pid == pid:
                self.lost_in_crash.update(e.id for e in batch.envelopes)
        for slot in [s for s in self.slots if s.endswith(":R")]:
            self.crash_slot(slot, pid)

    @precondition(lambda self: any(not self.alive(n) for n in PEERS))
    @rule(data=st.data())
    def restart(self, data: st.DataObject) -> None:
        dead = [n for n in PEERS if not self.alive(n)]
        self.restart_peer(data.draw(st.sampled_from(dead), label="peer"))

    def restart_peer(self, name: str) -> None:
        pid = self.next_pid[name]
        self.next_pid[name] += 1
        me = entry(pid, PEERS[name], started_at=1_800_000_000 + pid)
        publish(self.main_ctx, me)
        self.former.append(self.me[name])
        self.me[name] = me
        self.ctxs[name] = self.context()

    def extra_checks(self) -> None:
        delivered = set(self.delivered)
        flight = self.flight_ids()
        where = self.visible()
        for mid in self.lost_in_crash:
            assert mid in delivered or mid in flight or mid in where, (
                f"a crashed reader's message {mid} was not put back under its own id"
            )

    def final_checks(self) -> None:
        self.quiesce()
        for name in PEERS:
            if not self.alive(name):
                self.restart_peer(name)
        super().final_checks()


@pytest.mark.parametrize("factory", store_params())
def test_crashed_reader_batch_is_redelivered(factory: StoreFactory) -> None:
    run_state_machine_as_test(lambda: CrashRace(factory), settings=budget(factory, 80, 50))
